package pipeline_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/devcenter/devcentertest"
	"github.com/hdc-export/hdc-export/devcenter/emulator"
	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/pipeline"
	"github.com/hdc-export/hdc-export/sinks/local"
)

// TestQuirkyServiceSecondRunChangesNothing: against a service that echoes
// templates normalised or with limit 0, and pages every list, the first
// run creates the configured template and schedule, and the second run
// makes no create or edit call and lists no template or schedule twice.
func TestQuirkyServiceSecondRunChangesNothing(t *testing.T) {
	zero := 0
	for name, q := range map[string]emulator.Quirks{
		"normalised, limit 0, paged": {NormalizedEcho: true, LimitEcho: emulator.LimitEchoZero, PageSize: 1},
		"limit dropped, paged":       {LimitEcho: emulator.LimitEchoDrop, PageSize: 2},
	} {
		t.Run(name, func(t *testing.T) {
			clock := devcentertest.NewClock(t0)
			emu := emulator.New(emulator.Options{Now: clock.Now, RowsPerDay: 20, Quirks: q})
			var writes atomic.Int32 // POSTs to the API: creates, edits, pauses, resumes
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/analytics/") {
					writes.Add(1)
				}
				emu.Handler().ServeHTTP(w, r)
			}))
			defer srv.Close()
			client := devcentertest.NewClient(t, srv.URL)
			sink, err := local.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			us := demoTemplate([]string{"FailureDate", "DriverName", "Market", "EventCount"}, "IHVDriver")
			us.Limit = &zero
			us.Condition = json.RawMessage(`{"and":[{"attribute":"Market","operator":"eq","value":"US"}],"or":[]}`)
			cfg := pipeline.Config{TempDir: t.TempDir(), Reports: []pipeline.ReportConfig{
				{Name: "ihv_driver", Template: demoTemplate(emulator.IHVColumns, "IHVDriver")},
				{Name: "ihv_us", Template: us},
			}}
			cfg.SetDefaults()
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			runner := &pipeline.Runner{Config: cfg, API: client, Sink: sink, Now: clock.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			ctx := context.Background()
			if _, _, err := runner.Reconcile(ctx, false); err != nil {
				t.Fatal(err)
			}
			if n := writes.Load(); n != 2 {
				t.Fatalf("first reconcile made %d writes, want 2 (create the template, schedule it)", n)
			}
			for run := 1; run <= 2; run++ {
				writes.Store(0)
				if _, err := runner.Run(ctx); err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				if n := writes.Load(); n != 0 {
					t.Errorf("run %d made %d create/edit calls, want 0", run, n)
				}
			}
			tpls, err := client.ListTemplates(ctx)
			if err != nil {
				t.Fatal(err)
			}
			reps, err := client.ListReports(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(tpls) != 3 || len(reps) != 3 {
				t.Errorf("%d templates and %d schedules, want 3 of each (2 demo + 1)", len(tpls), len(reps))
			}
		})
	}
}

// TestExclusiveBoundsFindNewestRun: a service whose reportdata bounds are
// exclusive, and which pages, gives the lake the same runs and rows as
// an inclusive one; in particular the newest run (today's) is ingested.
func TestExclusiveBoundsFindNewestRun(t *testing.T) {
	plain := newHarness(t, emulator.Options{RowsPerDay: 20})
	quirky := newHarness(t, emulator.Options{RowsPerDay: 20, Quirks: emulator.Quirks{ExclusiveBounds: true, PageSize: 3}})
	want, got := plain.run(t), quirky.run(t)
	if want.RunsIngested == 0 || got.RunsSeen != want.RunsSeen || got.RunsIngested != want.RunsIngested || got.Rows != want.Rows {
		t.Fatalf("exclusive bounds: seen %d, ingested %d, %d rows; inclusive: seen %d, ingested %d, %d rows",
			got.RunsSeen, got.RunsIngested, got.Rows, want.RunsSeen, want.RunsIngested, want.Rows)
	}
	today := lake.CommitKey("ihv_driver", emulator.DemoIHVReportID, t0.Truncate(24*time.Hour).Add(2*time.Hour)) // the demo runs at 02:00
	if ok, err := lake.Exists(context.Background(), quirky.sink, today); err != nil || !ok {
		t.Errorf("today's run is not committed (%s): %v", today, err)
	}
	if ws, gs := lakeStats(t, plain.lakeDir, "ihv_driver"), lakeStats(t, quirky.lakeDir, "ihv_driver"); len(ws) == 0 || !equalStats(ws, gs) {
		t.Errorf("lakes differ:\n got %v\nwant %v", gs, ws)
	}
}

func equalStats(a, b map[string]dayStats) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
