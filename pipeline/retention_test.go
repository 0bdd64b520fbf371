package pipeline_test

import (
	"context"
	"encoding/json"
	"github.com/hdc-export/hdc-export/internal/lake"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/devcenter/emulator"
	"github.com/hdc-export/hdc-export/pipeline"
	"github.com/hdc-export/hdc-export/sinks"
)

func listKeys(t *testing.T, s sinks.Sink) []string {
	t.Helper()
	var keys []string
	if err := s.List(context.Background(), "", func(o sinks.Object) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestPurgeAcceptance: stale partitions and cabs planted in a lake are
// found by a dry run (which deletes nothing), removed exactly by a purge
// that leaves an audit record, and gone for the check afterwards.
func TestPurgeAcceptance(t *testing.T) {
	h := newHarness(t, emulator.Options{RowsPerDay: 10})
	h.run(t)
	ctx := context.Background()
	w := lake.NewWindow(h.clock.Now(), 30)
	var planted []string
	for _, d := range []lake.Date{w.First - 1, w.First - 40} {
		ds := d.String()
		for _, key := range []string{
			lake.DataKey("ihv_driver", d), lake.ManifestKey("ihv_driver", d),
			"cabs/date=" + ds + "/0d3b1c2e-1111-4222-8333-444455556666.cab",
			"cab_index/date=" + ds + "/part-00000.parquet",
			"_hdc/quarantine/ihv_driver/date=" + ds + "/r.tsv",
			"_hdc/commits/ihv_driver/date=" + ds + "/1-x.json",
		} {
			if err := h.sink.Put(ctx, key, strings.NewReader("stale")); err != nil {
				t.Fatal(err)
			}
			planted = append(planted, key)
		}
	}
	slices.Sort(planted)
	inside := listKeys(t, h.sink)
	inside = slices.DeleteFunc(inside, func(k string) bool { return slices.Contains(planted, k) })
	staleTemp := filepath.Join(h.tmp, "hdc-export-crashed")
	if err := os.MkdirAll(staleTemp, 0o700); err != nil {
		t.Fatal(err)
	}
	old := h.clock.Now().Add(-7 * time.Hour)
	_ = os.Chtimes(staleTemp, old, old)

	dry, err := h.runner.Purge(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(slices.Values(dry.Stale())); !slices.Equal(got, planted) {
		t.Fatalf("dry run found\n%v\nwant\n%v", got, planted)
	}
	if dry.Deleted != 0 || dry.TempFolders != 1 || len(listKeys(t, h.sink)) != len(inside)+len(planted) {
		t.Fatalf("dry run deleted something: %+v", dry)
	}
	if _, err := os.Stat(staleTemp); err != nil {
		t.Fatal("dry run removed the temp folder")
	}

	rep, err := h.runner.Purge(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != len(planted) {
		t.Errorf("deleted %d, want %d", rep.Deleted, len(planted))
	}
	after := listKeys(t, h.sink)
	var audit []string
	after = slices.DeleteFunc(after, func(k string) bool {
		if strings.HasPrefix(k, "_hdc/audit/purge/") {
			audit = append(audit, k)
			return true
		}
		return false
	})
	if !slices.Equal(after, inside) {
		t.Errorf("purge did not keep exactly the in-window objects:\n got %d keys\nwant %d", len(after), len(inside))
	}
	if _, err := os.Stat(staleTemp); !os.IsNotExist(err) {
		t.Error("stale temp folder survived the purge")
	}
	if len(audit) != 1 {
		t.Fatalf("audit records: %v", audit)
	}
	rc, _ := h.sink.Get(ctx, audit[0])
	var rec pipeline.PurgeReport
	if err := json.NewDecoder(rc).Decode(&rec); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if rec.Deleted != len(planted) || rec.Prefixes["cabs/date="+(w.First-1).String()] != 1 || rec.WindowStart != w.First.String() {
		t.Errorf("audit record %+v", rec)
	}
	raw, _ := json.Marshal(rec)
	if strings.Contains(string(raw), ".cab") {
		t.Error("audit record names individual cab keys")
	}
	check, err := h.runner.Purge(ctx, true)
	if err != nil || check.Objects != 0 || check.TempFolders != 0 {
		t.Errorf("check after purge: %+v, %v", check, err)
	}
}

// TestRetentionOver120SimulatedDays runs the cycle daily for 120 simulated
// days with the emulator on the same clock. After every day nothing older
// than the window exists in the sink or the temp folder, and every date of
// the window that the reports cover is present.
func TestRetentionOver120SimulatedDays(t *testing.T) {
	if testing.Short() {
		t.Skip("long simulation")
	}
	h := newHarness(t, emulator.Options{RowsPerDay: 3})
	firstData := lake.DateOf(h.clock.Now()) - 35
	for day := 0; day < 120; day++ {
		sum := h.run(t)
		now := h.clock.Now()
		w := lake.NewWindow(now, 30)
		present := map[string]bool{}
		for _, key := range listKeys(t, h.sink) {
			if d, ok := lake.KeyDate(key); ok && !w.Contains(d) {
				t.Fatalf("day %d: %s is older than the window (starts %s)", day, key, w.First)
			}
			present[key] = true
		}
		if entries, _ := os.ReadDir(h.tmp); len(entries) != 0 {
			t.Fatalf("day %d: temp folder holds %d entries", day, len(entries))
		}
		for d := max(w.First, firstData); d < lake.DateOf(now); d++ {
			for _, ds := range []string{"ihv_driver", "oem_driver"} {
				if !present[lake.DataKey(ds, d)] || !present[lake.ManifestKey(ds, d)] {
					t.Fatalf("day %d: %s %s missing (summary %+v)", day, ds, d, sum)
				}
			}
		}
		h.clock.Advance(24 * time.Hour)
	}
}
