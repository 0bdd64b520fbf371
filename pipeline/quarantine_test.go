package pipeline_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/devcenter/emulator"
)

// corrupting damages some rows of every report file (a reshapingAPI):
// a count that is not a number, a missing field, an unreadable date.
func corrupting(c *devcenter.Client) reshapingAPI {
	return reshapingAPI{c, func(i int, f []string) []string {
		switch {
		case i == 0:
		case i%29 == 7:
			f[len(f)-1] = "SECRET-many" // EventCount is last
		case i%31 == 3:
			f = f[:len(f)-1]
		case i%37 == 5:
			f[1] = "SECRET-notadate" // FailureDate is second
		}
		return f
	}}
}

func TestBadRowsAreQuarantinedNotLost(t *testing.T) {
	h := newHarness(t, emulator.Options{RowsPerDay: 40})
	var logs bytes.Buffer
	h.runner.Log = slog.New(slog.NewTextHandler(&logs, nil))
	h.runner.API = corrupting(h.client)
	h.runner.Config.BadRows.MaxFraction = 1
	sum := h.run(t)
	if sum.RowsBad == 0 {
		t.Fatalf("no bad rows counted: %+v", sum)
	}
	ctx := context.Background()
	quarantined := int64(0)
	for _, key := range listKeys(t, h.sink) {
		if !strings.HasPrefix(key, "_hdc/quarantine/") {
			continue
		}
		rc, err := h.sink.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		cr := csv.NewReader(rc)
		cr.Comma, cr.FieldsPerRecord, cr.LazyQuotes = '\t', -1, true
		recs, err := cr.ReadAll()
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs[1:] {
			quarantined++
			if len(rec) < 4 || rec[0] == "" || rec[2] == "" || strings.Contains(rec[2], "SECRET") {
				t.Errorf("%s: bad quarantine record %q", key, rec[:min(3, len(rec))])
			}
		}
	}
	if quarantined != sum.RowsBad {
		t.Errorf("%d rows quarantined, %d counted bad", quarantined, sum.RowsBad)
	}
	if strings.Contains(logs.String(), "SECRET") {
		t.Error("a bad value reached the logs")
	}
	if !strings.Contains(logs.String(), "column EventCount") && !strings.Contains(logs.String(), "column FailureDate") && !strings.Contains(logs.String(), "wrong number of fields") {
		t.Errorf("the bad-row warning does not name line and column:\n%s", logs.String())
	}
}

func TestTooManyBadRowsFailTheRun(t *testing.T) {
	h := newHarness(t, emulator.Options{RowsPerDay: 40})
	h.runner.API = corrupting(h.client)
	h.runner.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err := h.runner.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "bad_rows.max_fraction") {
		t.Fatalf("err = %v", err)
	}
	for _, key := range listKeys(t, h.sink) {
		if strings.HasSuffix(key, ".parquet") || strings.HasPrefix(key, "_hdc/commits/") {
			t.Errorf("a failed run committed %s", key)
		}
	}
}
