package pipeline_test

import (
	"regexp"
	"sync"
	"testing"

	"github.com/hdc-export/hdc-export/devcenter/emulator"
)

// TestProgressNamesReportRowsAndBytes: the progress lines of a run name
// the report and run, and give rows and bytes read so far, never a stale
// "0 rows".
func TestProgressNamesReportRowsAndBytes(t *testing.T) {
	h := newHarness(t, emulator.Options{RowsPerDay: 50})
	var mu sync.Mutex
	var lines []string
	h.runner.Progress = func(line string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, line)
	}
	h.runner.Config.Cabs.Enabled = new(bool) // cabs off: report lines only
	h.run(t)
	want := regexp.MustCompile(`^(ihv|oem)_driver run \d{8}T\d{6}Z: \d+(\.\d)?[kM]? rows, [1-9]\d* (kB|MB) read$`)
	if len(lines) == 0 {
		t.Fatal("no progress")
	}
	for _, l := range lines {
		if !want.MatchString(l) {
			t.Errorf("progress line %q", l)
		}
	}
}
