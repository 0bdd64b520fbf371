package pipeline_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/devcenter/emulator"
	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/pipeline"
	"github.com/hdc-export/hdc-export/sinks"
)

// newestRun is the newest finished demo run at t0 (daily at 02:00 UTC).
var newestRun = time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)

// logTo makes the runner log into a buffer, returned.
func logTo(h *harness) *bytes.Buffer {
	var logs bytes.Buffer
	h.runner.Log = slog.New(slog.NewTextHandler(&logs, nil))
	return &logs
}

// TestCoverageBothReadings: whether the service reads LastNDays as the N
// days before the run's day (the documented reading) or as the N days
// ending with it, the lake holds, for each date, the rows of the newest
// run that has rows for it, on the first cycle and on the next day's.
// The other reading is learned from the files: warned about with the run
// id, counted, and recorded in the lake.
func TestCoverageBothReadings(t *testing.T) {
	for _, ends := range []bool{false, true} {
		t.Run(map[bool]string{false: "before the run day", true: "ending with the run day"}[ends], func(t *testing.T) {
			h := newHarness(t, emulator.Options{RowsPerDay: 30, Shapes: emulator.FileShapes{CoverageEndsOnRunDay: ends}})
			logs := logTo(h)
			sum := h.run(t)
			if sum.RunsHeldBack != 0 || sum.RowsBad != 0 || sum.RunsIngested == 0 {
				t.Fatalf("summary %+v", sum)
			}
			var rec lake.Coverage
			err := lake.GetJSON(context.Background(), h.sink, lake.CoverageKey("ihv_driver"), &rec)
			if ends {
				if sum.RowsOutsideCoverage == 0 || err != nil || !rec.EndsOnRunDay {
					t.Errorf("rows outside coverage %d, record %+v, %v", sum.RowsOutsideCoverage, rec, err)
				}
				if !strings.Contains(logs.String(), "other reading of LastNDays") || !strings.Contains(logs.String(), "run=2026") {
					t.Errorf("no warning naming the run:\n%s", logs.String())
				}
			} else if sum.RowsOutsideCoverage != 0 || !errors.Is(err, sinks.ErrNotFound) {
				t.Errorf("rows outside coverage %d, record %+v, %v", sum.RowsOutsideCoverage, rec, err)
			}
			checkAgainstTruth(t, h)
			h.clock.Advance(24 * time.Hour)
			sum = h.run(t)
			if sum.RunsHeldBack != 0 || sum.RowsOutsideCoverage != 0 || sum.RunsIngested != 2 {
				t.Errorf("next day: %+v", sum)
			}
			checkAgainstTruth(t, h)
		})
	}
}

// TestRowsOutsideCoverageKept: a newer run whose rows reach two days past
// the days it is taken to cover (neither reading) keeps them, counted and
// warned about with its run id, since no newer run covers those dates; the
// oldest dates it leaves out keep the older run's rows.
func TestRowsOutsideCoverageKept(t *testing.T) {
	next := newestRun.Add(24 * time.Hour)
	h := newHarness(t, emulator.Options{RowsPerDay: 30, Shapes: emulator.FileShapes{From: next, ShiftDays: 2}})
	h.run(t)
	h.clock.Advance(24 * time.Hour)
	logs := logTo(h)
	sum := h.run(t)
	if sum.RowsOutsideCoverage == 0 || sum.RunsHeldBack != 0 || sum.RunsIngested != 2 {
		t.Fatalf("summary %+v", sum)
	}
	if !strings.Contains(logs.String(), "outside the days its run is taken to cover") || !strings.Contains(logs.String(), "run="+lake.RunID(next)) ||
		!strings.Contains(logs.String(), "the N days before the run's day") {
		t.Errorf("no warning naming the run and the reading in force:\n%s", logs.String())
	}
	for _, d := range []lake.Date{lake.DateOf(next), lake.DateOf(next) + 1} { // the rows past its coverage
		if _, err := os.Stat(filepath.Join(h.lakeDir, lake.DataKey("ihv_driver", d))); err != nil {
			t.Errorf("partition %s: %v", d, err)
		}
	}
	checkAgainstTruth(t, h)
}

// zeroBodyAPI serves the files of runs at or after from as zero bytes.
type zeroBodyAPI struct {
	*devcenter.Client
	from time.Time
}

func (c zeroBodyAPI) Download(ctx context.Context, link string) (io.ReadCloser, error) {
	if strings.Contains(link, c.from.Format("20060102150405")) {
		return io.NopCloser(strings.NewReader("")), nil
	}
	return c.Client.Download(ctx, link)
}

// TestShrinkingRunHeldBack: a newer run that is header-only, zero bytes,
// or whose dates all fall out of the window, would empty the partitions
// an older run filled: it is held back (reported, nothing committed, the
// data stays) on every cycle until the operator accepts it.
func TestShrinkingRunHeldBack(t *testing.T) {
	next := newestRun.Add(24 * time.Hour)
	for name, shapes := range map[string]emulator.FileShapes{
		"header only":   {From: next, Empty: true},
		"zero bytes":    {},
		"dates shifted": {From: next, ShiftDays: -60},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, emulator.Options{RowsPerDay: 30, Shapes: shapes})
			if name == "zero bytes" {
				h.runner.API = zeroBodyAPI{h.client, next}
			}
			h.run(t)
			h.clock.Advance(24 * time.Hour)
			before := lakeStats(t, h.lakeDir, "ihv_driver")
			maps.DeleteFunc(before, func(d string, _ dayStats) bool { // purged by this cycle
				return d < lake.NewWindow(h.clock.Now(), 30).First.String()
			})
			logs := logTo(h)
			for cycle := range 2 {
				sum := h.run(t)
				if sum.RunsHeldBack != 2 || sum.PartitionsHeldBack < 2*6 || sum.RunsIngested != 0 {
					t.Fatalf("cycle %d: summary %+v", cycle, sum)
				}
				if got := lakeStats(t, h.lakeDir, "ihv_driver"); !maps.Equal(before, got) {
					t.Fatalf("cycle %d: a held-back run changed the lake", cycle)
				}
				for _, key := range listKeys(t, h.sink) {
					if strings.HasPrefix(key, "_hdc/commits/") && strings.Contains(key, lake.RunID(next)) {
						t.Fatalf("a held-back run was committed: %s", key)
					}
				}
			}
			if !strings.Contains(logs.String(), "run held back") || !strings.Contains(logs.String(), "run="+lake.RunID(next)) {
				t.Errorf("no warning naming the run:\n%s", logs.String())
			}
			h.runner.Config.Limits.AcceptShrink = true
			sum := h.run(t)
			if sum.RunsHeldBack != 0 || sum.RunsIngested != 2 {
				t.Fatalf("accepted: summary %+v", sum)
			}
			got := lakeStats(t, h.lakeDir, "ihv_driver")
			for d := lake.DateOf(next) - 7; d < lake.DateOf(next); d++ {
				if _, ok := got[d.String()]; ok {
					t.Errorf("accepted: partition %s still holds rows", d)
				}
			}
		})
	}
}

// TestHugeLineQuarantinedTooLong: a line past limits.max_record_bytes, an
// unterminated quote opening it, is quarantined as too long by its prefix
// and read past; every other row lands as in a clean run.
func TestHugeLineQuarantinedTooLong(t *testing.T) {
	opts := emulator.Options{RowsPerDay: 30, Delimiter: ','}
	clean := newHarness(t, opts)
	clean.run(t)
	opts.Shapes = emulator.FileShapes{From: newestRun, HugeLine: 8 << 20, HugeLineQuoted: true}
	h := newHarness(t, opts)
	h.runner.Config.Limits.MaxRecordBytes = 1 << 20
	sum := h.run(t)
	if sum.RowsBad != 2 || sum.RowsBadNotQuarantined != 0 {
		t.Fatalf("summary %+v", sum)
	}
	if want, got := lakeStats(t, clean.lakeDir, "ihv_driver"), lakeStats(t, h.lakeDir, "ihv_driver"); !maps.Equal(want, got) {
		t.Error("the rows after the long line differ from a clean run's")
	}
	n := 0
	for _, rec := range quarantined(t, h.sink) {
		n++
		if len(rec) < 3 || !strings.Contains(rec[2], "record too long") || len(strings.Join(rec[3:], ",")) > devcenter.RecordPrefix {
			t.Errorf("quarantine record %.200q", rec)
		}
	}
	if n != 2 {
		t.Errorf("%d quarantine records, want 2", n)
	}
}

// quarantined returns the records of every quarantine object, without
// their header lines.
func quarantined(t *testing.T, s sinks.Sink) [][]string {
	t.Helper()
	var out [][]string
	for _, key := range listKeys(t, s) {
		if !strings.HasPrefix(key, "_hdc/quarantine/") {
			continue
		}
		rc, err := s.Get(context.Background(), key)
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
		out = append(out, recs[1:]...)
	}
	return out
}

// countingSink counts the puts of keys with a prefix.
type countingSink struct {
	sinks.Sink
	prefix string
	puts   int
}

func (c *countingSink) Put(ctx context.Context, key string, r io.Reader) error {
	if strings.HasPrefix(key, c.prefix) {
		c.puts++
	}
	return c.Sink.Put(ctx, key, r)
}

// TestRandomBodyQuarantineCapped: a valid header and then random bytes
// fail the run (too many bad rows); the quarantine of each date stays
// under limits.quarantine_bytes, the rows past it counted, and the next
// cycle, failing again, does not write it again.
func TestRandomBodyQuarantineCapped(t *testing.T) {
	for _, delim := range []rune{'\t', ','} {
		t.Run(map[rune]string{'\t': "tsv", ',': "csv"}[delim], func(t *testing.T) { testRandomBody(t, delim) })
	}
}

func testRandomBody(t *testing.T, delim rune) {
	const capBytes = 64 << 10
	h := newHarness(t, emulator.Options{RowsPerDay: 30, Delimiter: delim, Shapes: emulator.FileShapes{From: newestRun, RandomBody: 4 << 20}})
	h.runner.Config.Limits.QuarantineBytes = capBytes
	h.runner.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	sum, err := h.runner.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "bad_rows.max_fraction") || sum.ReportsFailed != 2 {
		t.Fatalf("err %v, summary %+v", err, sum)
	}
	objects := 0
	for _, key := range listKeys(t, h.sink) {
		if !strings.HasPrefix(key, "_hdc/quarantine/") {
			continue
		}
		objects++
		st, err := os.Stat(filepath.Join(h.lakeDir, key))
		if err != nil || st.Size() > capBytes {
			t.Errorf("%s: %v bytes, cap %d (%v)", key, st.Size(), capBytes, err)
		}
	}
	if recs := quarantined(t, h.sink); objects == 0 || !strings.Contains(recs[len(recs)-1][2], "not kept here") {
		t.Errorf("%d quarantine objects; no note of the rows past the cap", objects)
	}
	counting := &countingSink{Sink: h.sink, prefix: "_hdc/quarantine/"}
	h.runner.Sink = counting
	if _, err := h.runner.Run(context.Background()); err == nil {
		t.Fatal("the second cycle did not fail")
	}
	if counting.puts != 0 {
		t.Errorf("the second cycle wrote the unchanged quarantine again (%d puts)", counting.puts)
	}
}

// TestUnknownColumnsCapped: a file with more undocumented columns than
// limits.max_unknown_columns fails with a clear error, commits nothing and
// leaves the schema record alone; a few extra columns are kept.
func TestUnknownColumnsCapped(t *testing.T) {
	h := newHarness(t, emulator.Options{RowsPerDay: 10, Shapes: emulator.FileShapes{ExtraColumns: pipeline.DefaultMaxUnknownColumns + 1}})
	h.runner.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err := h.runner.Run(context.Background())
	if !errors.Is(err, pipeline.ErrUnknownColumns) || !strings.Contains(err.Error(), "limits.max_unknown_columns") {
		t.Fatalf("err = %v", err)
	}
	for _, key := range listKeys(t, h.sink) {
		if strings.HasPrefix(key, "_hdc/schemas/") || strings.HasPrefix(key, "_hdc/commits/") || strings.HasSuffix(key, ".parquet") {
			t.Errorf("a refused run wrote %s", key)
		}
	}

	h = newHarness(t, emulator.Options{RowsPerDay: 10, Shapes: emulator.FileShapes{ExtraColumns: 3}})
	h.run(t)
	var rec lake.DatasetSchema
	readJSON(t, h, lake.SchemaKey("ihv_driver"), &rec)
	if rec.Columns["extra3"] != "VARCHAR" {
		t.Errorf("schema record %v", rec.Columns)
	}
}
