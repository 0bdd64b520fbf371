package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/devcenter/emulator"
)

// TestEmulatorFlags: every behaviour switch of the emulator is reachable
// from its command line, and a bad value is a usage error naming the flag.
func TestEmulatorFlags(t *testing.T) {
	addr, o, err := emulatorOptions([]string{"--addr", "127.0.0.1:0",
		"--cab-off-allowlist-rate", "0.1", "--cab-corrupt-rate", "0.2", "--cab-corrupt-attempts", "1",
		"--huge-line", "1000", "--huge-line-quoted", "--random-body", "0", "--extra-columns", "3",
		"--coverage-ends-on-run-day", "--empty-files", "--shift-days", "-2", "--shapes-from", "2026-12-01T02:00:00Z",
		"--limit-echo", "zero", "--normalized-echo", "--page-size", "2", "--exclusive-bounds", "--slow-link-rate", "1500",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := emulator.Options{}
	want.CabFaults.OffAllowlistRate, want.CabFaults.CorruptRate, want.CabFaults.CorruptAttempts = 0.1, 0.2, 1
	want.Shapes = emulator.FileShapes{HugeLine: 1000, HugeLineQuoted: true, ExtraColumns: 3, CoverageEndsOnRunDay: true,
		Empty: true, ShiftDays: -2, From: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)}
	want.Quirks = emulator.Quirks{LimitEcho: emulator.LimitEchoZero, NormalizedEcho: true, PageSize: 2, ExclusiveBounds: true, SlowLinkRate: 1500}
	if addr != "127.0.0.1:0" || o.CabFaults.OffAllowlistRate != want.CabFaults.OffAllowlistRate ||
		o.CabFaults.CorruptRate != want.CabFaults.CorruptRate || o.CabFaults.CorruptAttempts != want.CabFaults.CorruptAttempts ||
		o.Quirks != want.Quirks || !o.Shapes.From.Equal(want.Shapes.From) {
		t.Errorf("addr %s, options %+v %+v %+v", addr, o.CabFaults, o.Quirks, o.Shapes)
	}
	o.Shapes.From, want.Shapes.From = time.Time{}, time.Time{}
	if o.Shapes != want.Shapes {
		t.Errorf("shapes %+v, want %+v", o.Shapes, want.Shapes)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--limit-echo", "maybe"}, "LimitEcho"},
		{[]string{"--page-size", "-1"}, "PageSize"},
		{[]string{"--slow-link-rate", "-5"}, "SlowLinkRate"},
		{[]string{"--shapes-from", "yesterday"}, "--shapes-from"},
		{[]string{"--delimiter", "pipe"}, "--delimiter"},
	} {
		_, _, err := emulatorOptions(tc.args, io.Discard)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a usage error naming %s", tc.args, err, tc.want)
		}
	}
}
