package pipeline_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"github.com/hdc-export/hdc-export/internal/lake"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/devcenter/emulator"
	"github.com/hdc-export/hdc-export/pipeline"
)

// sampleTemplates are the five sample templates of the API reference, as the
// emulator's tests keep them, with the columns (name and Parquet physical
// type) each must land with. Samples 3-5 aggregate without FailureDate, so
// they land under their run's date.
var sampleTemplates = []struct {
	file  string
	dated bool
	cols  map[string]parquet.Kind // a subset: the typed and aggregate ones
}{
	{"sample1-ihv-all-columns.json", true, map[string]parquet.Kind{"failure_date": parquet.Int32, "failure_date_time": parquet.Int64, "event_count": parquet.Int64, "device_id": parquet.ByteArray}},
	{"sample2-oem-all-columns.json", true, map[string]parquet.Kind{"failure_date": parquet.Int32, "cab_expiration_time": parquet.Int64, "model": parquet.ByteArray}},
	{"sample3-ihv-failures-by-driver.json", false, map[string]parquet.Kind{"driver_name": parquet.ByteArray, "sum_event_count": parquet.Int64, "dcount_device_id": parquet.Int64}},
	{"sample4-oem-kernel-crashes.json", false, map[string]parquet.Kind{"failure_hash": parquet.ByteArray, "sum_event_count": parquet.Int64}},
	{"sample5-ihv-top-drivers.json", false, map[string]parquet.Kind{"driver_name": parquet.ByteArray, "dcount_device_id": parquet.Int64}},
}

// TestFiveSampleTemplatesLandTyped: each of the docs' five sample templates,
// projections and aggregates alike, lands as a typed table: the aggregate
// columns are numeric with sanitised names, and every partition holds
// exactly the rows of the run's file. An undated aggregate lands under its
// run's date.
func TestFiveSampleTemplatesLandTyped(t *testing.T) {
	h := newHarness(t, emulator.Options{RowsPerDay: 600}) // enough for sample 4's HAVING
	cfg := h.runner.Config
	cfg.Reports = nil
	for i, s := range sampleTemplates {
		b, err := os.ReadFile(filepath.Join("..", "devcenter", "emulator", "testdata", s.file))
		if err != nil {
			t.Fatal(err)
		}
		var def devcenter.TemplateDef
		if err := json.Unmarshal(b, &def); err != nil {
			t.Fatal(err)
		}
		cfg.Reports = append(cfg.Reports, pipeline.ReportConfig{Name: "sample" + string(rune('1'+i)), Template: def})
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h.runner.Config = cfg
	h.run(t) // creates the templates and schedules; they run from the next midnight
	h.clock.Advance(16 * time.Hour)
	sum := h.run(t)
	if sum.ReportsFailed != 0 || sum.RowsBad != 0 {
		t.Fatalf("summary: %+v", sum)
	}
	runDate := lake.DateOf(h.clock.Now()).String()
	for i, s := range sampleTemplates {
		name := cfg.Reports[i].Name
		files, _ := filepath.Glob(filepath.Join(h.lakeDir, name, "date=*", "*.parquet"))
		if len(files) == 0 {
			t.Errorf("%s: no data", name)
			continue
		}
		if !s.dated && (len(files) != 1 || !strings.Contains(files[0], "date="+runDate)) {
			t.Errorf("%s: undated report landed as %v, want one partition of %s", name, files, runDate)
		}
		lakeDir := map[string]int64{}
		for _, path := range files {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := f.Stat()
			pf, err := parquet.OpenFile(f, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			for col, kind := range s.cols {
				leaf, ok := pf.Schema().Lookup(col)
				if !ok || leaf.Node.Type().Kind() != kind {
					t.Errorf("%s: column %s missing or not %v", name, col, kind)
				}
			}
			lakeDir[strings.TrimPrefix(filepath.Base(filepath.Dir(path)), "date=")] = pf.NumRows()
			f.Close()
		}
		want := h.newestRunRows(t, name, s.dated)
		if len(want) == 0 {
			t.Errorf("%s: the newest run has no rows in the window", name)
		}
		for d, n := range want {
			if lakeDir[d] != n {
				t.Errorf("%s %s: %d rows in the lake, the newest run file holds %d", name, d, lakeDir[d], n)
			}
		}
	}
}

// newestRunRows counts, straight from the newest run file of a dataset's
// report, its rows per partition date inside the window: per failure date
// for a dated report, all under the run's date for an undated one. The
// newest run owns all of those dates.
func (h *harness) newestRunRows(t *testing.T, dataset string, dated bool) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	rc, err := h.sink.Get(ctx, "_hdc/reports/"+dataset+".json")
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		ReportID devcenter.ID `json:"report_id"`
	}
	err = json.NewDecoder(rc).Decode(&b)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	now := h.clock.Now()
	runs, err := h.client.ReportData(ctx, b.ReportID, now.AddDate(0, 0, -1), now)
	if err != nil || len(runs) == 0 {
		t.Fatalf("report %d: %d runs, %v", b.ReportID, len(runs), err)
	}
	newest := slices.MaxFunc(runs, func(a, b devcenter.Run) int { return a.Time.Compare(b.Time) })
	resp, err := http.Get(newest.Location)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cr := csv.NewReader(resp.Body)
	cr.Comma, cr.LazyQuotes = '\t', true
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	if !dated {
		out[lake.DateOf(newest.Time).String()] = int64(len(recs) - 1)
		return out
	}
	window := lake.NewWindow(now, 30)
	di := slices.Index(recs[0], "FailureDate")
	for _, rec := range recs[1:] {
		d, err := lake.ParseDate(rec[di])
		if err != nil {
			t.Fatal(err)
		}
		if window.Contains(d) {
			out[d.String()]++
		}
	}
	return out
}
