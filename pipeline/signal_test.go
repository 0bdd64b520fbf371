package pipeline_test

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/devcenter/emulator"
	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/pipeline"
)

// dataPartitions lists the data partitions in a lake folder.
func dataPartitions(t *testing.T, dir string) []pipeline.Partition {
	t.Helper()
	var out []pipeline.Partition
	for _, ds := range []string{"ihv_driver", "oem_driver"} {
		matches, _ := filepath.Glob(filepath.Join(dir, ds, "date=*", "part-00000.parquet"))
		for _, m := range matches {
			out = append(out, pipeline.Partition{Dataset: ds, Date: strings.TrimPrefix(filepath.Base(filepath.Dir(m)), "date=")})
		}
	}
	return out
}

// TestSummaryListsChangedAndPurgedPartitions: the downstream signal names
// exactly the partitions a cycle wrote and those its purge destroyed.
func TestSummaryListsChangedAndPurgedPartitions(t *testing.T) {
	h := newHarness(t, emulator.Options{RowsPerDay: 5})
	h.runner.Config.Cabs.Enabled = new(bool) // cabs off: report partitions only
	sum := h.run(t)
	if want := dataPartitions(t, h.lakeDir); len(want) == 0 || !slices.Equal(sum.Changed, want) {
		t.Fatalf("first cycle changed %v, the lake holds %v", sum.Changed, want)
	}
	if len(sum.Purged) != 0 {
		t.Errorf("first cycle purged %v", sum.Purged)
	}

	// Nothing new: both lists empty, and [] in JSON (not null).
	sum = h.run(t)
	b, _ := json.Marshal(sum)
	if len(sum.Changed)+len(sum.Purged) != 0 || !strings.Contains(string(b), `"partitions_changed":[]`) || !strings.Contains(string(b), `"partitions_purged":[]`) {
		t.Errorf("second cycle: %s", b)
	}

	// A day later: the newest dates are rewritten, the oldest is purged;
	// the changed list is exactly the partitions whose file is new.
	oldest := lake.NewWindow(h.clock.Now(), 30).First
	before := modTimes(t, h.lakeDir)
	h.clock.Advance(24 * time.Hour)
	sum = h.run(t)
	wantPurged := []pipeline.Partition{{Dataset: "ihv_driver", Date: oldest.String()}, {Dataset: "oem_driver", Date: oldest.String()}}
	if !slices.Equal(sum.Purged, wantPurged) {
		t.Errorf("purged %v, want %v", sum.Purged, wantPurged)
	}
	var rewritten []pipeline.Partition
	for p, mt := range modTimes(t, h.lakeDir) {
		if old, ok := before[p]; !ok || !old.Equal(mt) {
			rewritten = append(rewritten, p)
		}
	}
	slices.SortFunc(rewritten, func(a, b pipeline.Partition) int { return strings.Compare(a.Dataset+a.Date, b.Dataset+b.Date) })
	if len(rewritten) == 0 || !slices.Equal(sum.Changed, rewritten) {
		t.Errorf("changed %v, rewritten %v", sum.Changed, rewritten)
	}
}

// modTimes maps the lake's data partitions to their file's time.
func modTimes(t *testing.T, dir string) map[pipeline.Partition]time.Time {
	t.Helper()
	out := map[pipeline.Partition]time.Time{}
	for _, p := range dataPartitions(t, dir) {
		d, err := lake.ParseDate(p.Date)
		if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(filepath.Join(dir, lake.DataKey(p.Dataset, d)))
		if err != nil {
			t.Fatal(err)
		}
		out[p] = info.ModTime()
	}
	return out
}

// gatedAPI holds the first cycle in its reconcile until gate closes.
type gatedAPI struct {
	pipeline.API
	once    sync.Once
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedAPI) ListTemplates(ctx context.Context) ([]devcenter.Template, error) {
	g.once.Do(func() {
		close(g.entered)
		<-g.gate
	})
	return g.API.ListTemplates(ctx)
}

// TestRequestsDuringACycleAreQueued: requests that arrive while a cycle
// runs are not dropped: they run, coalesced into one cycle, when it ends.
func TestRequestsDuringACycleAreQueued(t *testing.T) {
	h := newHarness(t, emulator.Options{RowsPerDay: 5})
	h.runner.Config.Cabs.Enabled = new(bool) // cabs off: faster
	api := &gatedAPI{API: h.client, entered: make(chan struct{}), gate: make(chan struct{})}
	var mu sync.Mutex
	var cycles []*pipeline.Summary
	c := &pipeline.Cycler{Runner: *h.runner, LeaseTTL: time.Minute, OnCycle: func(s *pipeline.Summary, err error) {
		if err != nil {
			t.Errorf("cycle: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		cycles = append(cycles, s)
	}}
	c.Runner.API = api
	ctx := t.Context()
	if queued := c.Request(ctx, "ihv_driver"); queued {
		t.Fatal("the first request was queued on an idle cycler")
	}
	<-api.entered // the first cycle runs
	for _, name := range []string{"oem_driver", "oem_driver", "ihv_driver"} {
		if queued := c.Request(ctx, name); !queued {
			t.Fatalf("request for %s during a cycle not queued", name)
		}
	}
	close(api.gate)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(cycles) }
	for deadline := time.Now().Add(time.Minute); count() < 2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a third cycle would show now
	mu.Lock()
	defer mu.Unlock()
	if len(cycles) != 2 {
		t.Fatalf("%d cycles ran, want 2: the first and one for the three queued requests", len(cycles))
	}
	// The queued cycle covered both reports: the second had oem_driver's runs to ingest.
	if cycles[0].RunsIngested == 0 || cycles[1].RunsIngested == 0 || !slices.ContainsFunc(cycles[1].Changed, func(p pipeline.Partition) bool { return p.Dataset == "oem_driver" }) {
		t.Errorf("cycles %+v\n%+v", cycles[0], cycles[1])
	}
}

// TestSummaryListsChangedCabIndexes: the downstream signal names the
// cab_index partitions a cycle wrote, exactly those whose file is new or
// rewritten, and none on a cycle that changed none.
func TestSummaryListsChangedCabIndexes(t *testing.T) {
	h := newCabHarness(t, cabOptions(), nil)
	sum := h.run(t)
	indexes := func() map[string]time.Time {
		out := map[string]time.Time{}
		matches, _ := filepath.Glob(filepath.Join(h.lakeDir, lake.CabIndexDir, "date=*", "*.parquet"))
		for _, m := range matches {
			info, err := os.Stat(m)
			if err != nil {
				t.Fatal(err)
			}
			out[strings.TrimPrefix(filepath.Base(filepath.Dir(m)), "date=")] = info.ModTime()
		}
		return out
	}
	cabDates := func(s *pipeline.Summary) []string {
		var out []string
		for _, p := range s.Changed {
			if p.Dataset == lake.CabIndexDir {
				out = append(out, p.Date)
			}
		}
		return out
	}
	first := indexes()
	if got, want := cabDates(sum), slices.Sorted(maps.Keys(first)); len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("first cycle: cab_index changed %v, the lake holds %v", got, want)
	}
	if sum = h.run(t); len(cabDates(sum)) != 0 {
		t.Errorf("a cycle with nothing new changed cab_index %v", cabDates(sum))
	}
	h.clock.Advance(24 * time.Hour)
	sum = h.run(t)
	var rewritten []string
	for d, mt := range indexes() {
		if old, ok := first[d]; !ok || !old.Equal(mt) {
			rewritten = append(rewritten, d)
		}
	}
	slices.Sort(rewritten)
	if len(rewritten) == 0 || !slices.Equal(cabDates(sum), rewritten) {
		t.Errorf("next day: cab_index changed %v, rewritten %v", cabDates(sum), rewritten)
	}
}
