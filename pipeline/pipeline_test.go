package pipeline_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"github.com/hdc-export/hdc-export/internal/lake"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/devcenter/devcentertest"
	"github.com/hdc-export/hdc-export/devcenter/emulator"
	"github.com/hdc-export/hdc-export/pipeline"
	"github.com/hdc-export/hdc-export/schema"
	"github.com/hdc-export/hdc-export/sinks"
	"github.com/hdc-export/hdc-export/sinks/local"
)

var t0 = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)

// harness is an emulator, a client, a local lake and a runner sharing one clock.
type harness struct {
	clock   *devcentertest.Clock
	client  *devcenter.Client
	lakeDir string
	tmp     string
	sink    sinks.Sink
	runner  *pipeline.Runner
}

func newHarness(t *testing.T, opts emulator.Options) *harness {
	h := &harness{clock: devcentertest.NewClock(t0), lakeDir: t.TempDir(), tmp: t.TempDir()}
	opts.Now = h.clock.Now
	_, h.client = devcentertest.Start(t, opts)
	var err error
	if h.sink, err = local.New(h.lakeDir); err != nil {
		t.Fatal(err)
	}
	cfg := pipeline.Config{TempDir: h.tmp, Reports: []pipeline.ReportConfig{
		{Name: "ihv_driver", Template: demoTemplate(emulator.IHVColumns, "IHVDriver")},
		{Name: "oem_driver", Template: demoTemplate(emulator.OEMColumns, "OEMDriver")},
	}}
	// The emulator's address is not on the default cab allowlist, so every
	// cab would be refused (one link call each): the cab tests use
	// newCabHarness.
	cfg.Cabs.Enabled = ptr(false)
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h.runner = &pipeline.Runner{Config: cfg, API: h.client, Sink: h.sink, Now: h.clock.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return h
}

func demoTemplate(cols []string, view string) devcenter.TemplateDef {
	return devcenter.TemplateDef{View: view, Projection: cols, DateRange: devcenter.DateRange{ReportPeriod: "Last7Days"}}
}

func (h *harness) run(t *testing.T) *pipeline.Summary {
	t.Helper()
	sum, err := h.runner.Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return sum
}

// dayStats is one date's row count and EventCount sum.
type dayStats struct{ rows, events int64 }

// truth pulls every run of a demo report through the client and applies the
// rule "the newest finished run that has rows for a date owns the date",
// restricted to the retention window.
func (h *harness) truth(t *testing.T, reportID devcenter.ID, window lake.Window) map[string]dayStats {
	t.Helper()
	ctx := context.Background()
	now := h.clock.Now()
	runs, err := h.client.ReportData(ctx, reportID, now.AddDate(0, 0, -90), now)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]dayStats{}
	owner := map[string]time.Time{}
	for _, run := range runs {
		if run.Status != devcenter.StatusCompleted {
			continue
		}
		body, err := h.client.Download(ctx, run.Location)
		if err != nil {
			t.Fatal(err)
		}
		cr, _ := devcenter.NewReportReader(body)
		header, _ := cr.Read()
		di, ei := slices.Index(header, "FailureDate"), slices.Index(header, "EventCount")
		perDate := map[string]dayStats{}
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := schema.ParseDate(rec[di])
			if err != nil {
				t.Fatal(err)
			}
			date := lake.Date(d)
			if !window.Contains(date) {
				continue
			}
			n, _ := strconv.ParseInt(rec[ei], 10, 64)
			s := perDate[date.String()]
			perDate[date.String()] = dayStats{s.rows + 1, s.events + n}
		}
		body.Close()
		for d, s := range perDate {
			if run.Time.After(owner[d]) {
				owner[d], out[d] = run.Time, s
			}
		}
	}
	return out
}

// lakeStats reads a dataset's partitions back with parquet-go and checks
// that every row sits in the partition of its own failure date.
func lakeStats(t *testing.T, lakeDir, dataset string) map[string]dayStats {
	t.Helper()
	out := map[string]dayStats{}
	files, _ := filepath.Glob(filepath.Join(lakeDir, dataset, "date=*", "*.parquet"))
	for _, path := range files {
		date := strings.TrimPrefix(filepath.Base(filepath.Dir(path)), "date=")
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		pf, err := parquet.OpenFile(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		dc, _ := pf.Schema().Lookup("failure_date")
		ec, _ := pf.Schema().Lookup("event_count")
		var s dayStats
		for _, rg := range pf.RowGroups() {
			rows := rg.Rows()
			buf := make([]parquet.Row, 256)
			for {
				n, err := rows.ReadRows(buf)
				for _, row := range buf[:n] {
					s.rows++
					for _, v := range row {
						switch v.Column() {
						case dc.ColumnIndex:
							if got := lake.Date(v.Int32()).String(); got != date {
								t.Fatalf("%s holds a row of %s", path, got)
							}
						case ec.ColumnIndex:
							s.events += v.Int64()
						}
					}
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			rows.Close()
		}
		f.Close()
		out[date] = s
	}
	return out
}

func checkAgainstTruth(t *testing.T, h *harness) {
	t.Helper()
	w := lake.NewWindow(h.clock.Now(), 30)
	for _, ds := range []struct {
		name string
		id   devcenter.ID
	}{{"ihv_driver", emulator.DemoIHVReportID}, {"oem_driver", emulator.DemoOEMReportID}} {
		want, got := h.truth(t, ds.id, w), lakeStats(t, h.lakeDir, ds.name)
		if len(want) == 0 {
			t.Fatalf("%s: empty ground truth", ds.name)
		}
		for d, s := range want {
			if got[d] != s {
				t.Errorf("%s %s: lake %+v, truth %+v", ds.name, d, got[d], s)
			}
		}
		for d := range got {
			if _, ok := want[d]; !ok {
				t.Errorf("%s %s: in the lake but not in the truth", ds.name, d)
			}
		}
	}
}

// treeHash hashes every file under dir, by relative path.
func treeHash(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, path)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRunMatchesNewestRunPerDate(t *testing.T) {
	h := newHarness(t, emulator.Options{RowsPerDay: 60})
	sum := h.run(t)
	if sum.RunsIngested == 0 || sum.Rows == 0 || sum.RunsSuperseded == 0 {
		t.Fatalf("summary %+v", sum)
	}
	checkAgainstTruth(t, h)
	if entries, _ := os.ReadDir(h.tmp); len(entries) != 0 {
		t.Errorf("temp folder not cleaned: %v", entries)
	}
}

func TestSecondRunChangesNothing(t *testing.T) {
	h := newHarness(t, emulator.Options{RowsPerDay: 30, Gzip: true, Delimiter: ','})
	h.run(t)
	before := treeHash(t, h.lakeDir)
	sum := h.run(t)
	if sum.RunsIngested != 0 || sum.Partitions != 0 || !sum.NothingToDo() {
		t.Errorf("second run did work: %+v", sum)
	}
	if after := treeHash(t, h.lakeDir); !maps.Equal(before, after) {
		t.Error("second run changed the lake")
	}
}

// TestDailyCycleReplacesAndPurges: a day later the new run replaces the
// partitions it owns, and the date that left the window is purged.
func TestDailyCycleReplacesAndPurges(t *testing.T) {
	h := newHarness(t, emulator.Options{RowsPerDay: 30, StatusSuccess: true, DateFormat: "mmddyy"})
	h.run(t)
	oldest := lake.NewWindow(h.clock.Now(), 30).First
	if _, err := os.Stat(filepath.Join(h.lakeDir, lake.DataKey("ihv_driver", oldest))); err != nil {
		t.Fatalf("oldest partition missing: %v", err)
	}
	h.clock.Advance(24 * time.Hour)
	sum := h.run(t)
	if sum.RunsIngested != 2 || sum.ObjectsPurged == 0 {
		t.Errorf("summary %+v", sum)
	}
	// The oldest date seen is the one the purge destroyed, whichever of
	// the cycle's two purges destroyed it.
	if sum.OldestDate != oldest.String() {
		t.Errorf("summary oldest date %q, want %s", sum.OldestDate, oldest)
	}
	for _, key := range []string{lake.DataKey("ihv_driver", oldest), lake.ManifestKey("ihv_driver", oldest)} {
		if _, err := os.Stat(filepath.Join(h.lakeDir, key)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s not purged: %v", key, err)
		}
	}
	checkAgainstTruth(t, h)
}

// failingSink fails the first Put whose key contains match.
type failingSink struct {
	sinks.Sink
	match  string
	failed bool
}

func (f *failingSink) Put(ctx context.Context, key string, r io.Reader) error {
	if !f.failed && strings.Contains(key, f.match) {
		f.failed = true
		return errors.New("injected put failure")
	}
	return f.Sink.Put(ctx, key, r)
}

// TestInterruptedRunIsCompletedByTheNext: a failure between a partition's
// data and its manifest, or before a commit record, is finished by the
// next run with the same lake as a clean run.
func TestInterruptedRunIsCompletedByTheNext(t *testing.T) {
	clean := newHarness(t, emulator.Options{RowsPerDay: 20})
	clean.run(t)
	want := treeHash(t, clean.lakeDir)
	for _, match := range []string{"_hdc/manifests/", "_hdc/commits/", ".parquet"} {
		t.Run(match, func(t *testing.T) {
			h := newHarness(t, emulator.Options{RowsPerDay: 20})
			real := h.runner.Sink
			h.runner.Sink = &failingSink{Sink: real, match: match}
			if _, err := h.runner.Run(context.Background()); err == nil {
				t.Fatal("run with an injected failure succeeded")
			}
			h.runner.Sink = real
			h.run(t)
			if got := treeHash(t, h.lakeDir); !maps.Equal(want, got) {
				t.Errorf("lake differs from a clean run's: %d vs %d files", len(got), len(want))
			}
		})
	}
}

// TestOlderRunNeverReplaces: a partition whose manifest names a newer run
// is left alone.
func TestOlderRunNeverReplaces(t *testing.T) {
	h := newHarness(t, emulator.Options{RowsPerDay: 20})
	d := lake.DateOf(t0) - 3
	key := lake.ManifestKey("ihv_driver", d)
	manifest := `{"dataset":"ihv_driver","date":"` + d.String() + `","run":"29991231T000000Z","rows":1}`
	if err := h.sink.Put(context.Background(), key, strings.NewReader(manifest)); err != nil {
		t.Fatal(err)
	}
	h.run(t)
	if _, err := os.Stat(filepath.Join(h.lakeDir, lake.DataKey("ihv_driver", d))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an older run wrote over a newer run's partition")
	}
	if _, err := os.Stat(filepath.Join(h.lakeDir, lake.DataKey("ihv_driver", d-1))); err != nil {
		t.Errorf("other partitions not written: %v", err)
	}
}

// TestPurgeRunsWhenAPIIsDown: retention is enforced even without Dev Center.
func TestPurgeRunsWhenAPIIsDown(t *testing.T) {
	h := newHarness(t, emulator.Options{RowsPerDay: 5})
	ctx := context.Background()
	old := lake.NewWindow(t0, 30).First - 1
	for _, key := range []string{lake.DataKey("ihv_driver", old), "cabs/date=" + old.String() + "/x.cab", "_hdc/keep.json"} {
		if err := h.sink.Put(ctx, key, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	h.runner.API = downAPI{}
	sum, err := h.runner.Run(ctx)
	if err == nil || sum.ObjectsPurged != 2 {
		t.Fatalf("err %v, purged %d (want an error and 2 purged)", err, sum.ObjectsPurged)
	}
	if _, err := os.Stat(filepath.Join(h.lakeDir, "_hdc/keep.json")); err != nil {
		t.Errorf("undated state purged: %v", err)
	}
}

type downAPI struct{ pipeline.API }

func (downAPI) ListTemplates(context.Context) ([]devcenter.Template, error) {
	return nil, errors.New("connection refused")
}
