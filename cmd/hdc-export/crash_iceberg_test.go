//go:build iceberg && linux

package main

// Crash consistency of an Iceberg lake (issue 18): the iceberg binary is
// killed with SIGKILL inside an Iceberg commit (its catalog session), then
// run again. The next run must complete the work, the table must hold
// exactly the reference run's data files and rows, every file the current
// snapshot references must exist, and no data file may be registered
// twice in the current snapshot's manifests.
//
//	go test -tags iceberg -count=1 -run IcebergCrash -v ./cmd/hdc-export/

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	icebergapi "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/hdc-export/hdc-export/devcenter/emulator"
	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/internal/lake/iceberg"
	"github.com/hdc-export/hdc-export/internal/lake/iceberg/icebergtest"
	"github.com/hdc-export/hdc-export/sinks/local"
)

// Where TestIcebergCrashInCommit kills the runner, by the files it has open.
const (
	icePhaseSession  = "catalog-session" // the catalog's local copy is open: a commit (or expire) is in progress
	icePhaseMetadata = "metadata-write"  // a manifest, manifest list or metadata file is being written
	icePhaseCatalog  = "catalog-put"     // the changed catalog is being put back into the lake: the commit point
	icePhaseAfter    = "committed"       // the lake's catalog has moved (a new snapshot), the run's commit records may not be written
)

const iceCrashTrials = 3 // kills per phase

func TestIcebergCrashInCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the iceberg runner binary")
	}
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	now := time.Now().UTC()
	if next := now.Truncate(24 * time.Hour).Add(24 * time.Hour); next.Sub(now) < 10*time.Minute {
		t.Skip("too close to midnight UTC: the retention window would move during the test")
	}
	r := &rig{t: t, work: t.TempDir(), hook: &blobHook{}}
	r.bin = filepath.Join(r.work, "hdc-export")
	if out, err := exec.Command("go", "build", "-tags", icebergTag, "-o", r.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	t0 := now
	r.offset.Store(int64(-3 * 24 * time.Hour))
	em := emulator.New(emulator.Options{RowsPerDay: rigRowsPerDay, CabSizeMin: 1 << 10, CabSizeMax: 6 << 10,
		Now: func() time.Time { return t0.Add(time.Duration(r.offset.Load())) }})
	r.srv = httptest.NewServer(r.hook.wrap(em.Handler()))
	t.Cleanup(r.srv.Close)
	r.config = r.writeConfig("config.yaml", "5m")
	b, err := os.ReadFile(r.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "  url: ./lake\n", "  url: ./lake\n  table_format: iceberg\n", 1)
	if err := os.WriteFile(r.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	// The base lake is three days old; the reference is one clean run on
	// a copy of it, which replaces some of its dates (an overwrite commit).
	// An Iceberg table's metadata holds absolute paths, so every run works
	// on the same folder, lk, filled with a copy of the base lake (hard
	// links: neither the local sink nor iceberg-go writes a file in place).
	lk := filepath.Join(r.work, "lake")
	if p := r.start(lk, r.tempDir("base")); p.wait(t, 2*time.Minute) != exitOK {
		t.Fatalf("base run: exit %d\n%s", p.code, p.stderr.String())
	}
	r.base = filepath.Join(r.work, "base")
	if err := os.Rename(lk, r.base); err != nil {
		t.Fatal(err)
	}
	baseObjects := readLake(t, r.base).objects
	t.Cleanup(func() {
		if !maps.Equal(readLake(t, r.base).objects, baseObjects) {
			t.Error("the base lake changed: a copy of it was written in place")
		}
	})
	r.offset.Store(0)
	r.copyBase("lake")
	refTmp := r.tempDir("ref")
	if p := r.start(lk, refTmp); p.wait(t, 2*time.Minute) != exitOK {
		t.Fatalf("reference run: exit %d\n%s", p.code, p.stderr.String())
	}
	want := readIcebergLake(t, lk, refTmp)
	if p := r.start(lk, refTmp); p.wait(t, time.Minute) != exitNothingNew {
		t.Fatalf("second run on the reference lake: exit %d\n%s", p.code, p.stderr.String())
	}
	if got := readIcebergLake(t, lk, refTmp); !got.equal(want) {
		t.Fatal("a second run changed the reference tables")
	}
	r.copyBase("lake")
	if base := readIcebergLake(t, lk, refTmp); base.equal(want) {
		t.Fatal("the reference run committed nothing: no commit to kill")
	}
	t.Logf("reference: %s", want)

	var order []string
	for range iceCrashTrials {
		order = append(order, icePhaseSession, icePhaseMetadata, icePhaseCatalog, icePhaseAfter)
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	landed := map[string]int{}
	misses := 0
	for i, phase := range order {
		t.Run(fmt.Sprintf("%02d-%s", i, phase), func(t *testing.T) {
			for attempt := 0; ; attempt++ {
				if attempt == 8 {
					t.Fatalf("no kill landed in phase %s in 8 runs", phase)
				}
				name := fmt.Sprintf("%02d-%d", i, attempt)
				r.copyBase("lake")
				tmp := r.tempDir(name)
				p := r.start(lk, tmp)
				what, ok := p.killWhen(rng, icebergPhase(r.base, lk, phase))
				if !ok {
					misses++
					if p.code != exitOK {
						t.Fatalf("run exited %d without being killed\n%s", p.code, p.stderr.String())
					}
					continue
				}
				landed[phase]++
				expireLease(t, lk)
				// The next run completes the work...
				rec := r.start(lk, tmp)
				if code := rec.wait(t, 2*time.Minute); code != exitOK && code != exitNothingNew {
					t.Fatalf("killed in %s (%s); the next run exited %d\n%s", phase, what, code, rec.stderr.String())
				}
				// ...after which there is nothing left to do,
				if fin := r.start(lk, tmp); fin.wait(t, time.Minute) != exitNothingNew {
					t.Fatalf("killed in %s (%s); a run after the recovery exited %d\n%s", phase, what, fin.code, fin.stderr.String())
				}
				// and the tables are the reference's, each file registered once.
				got := readIcebergLake(t, lk, tmp)
				if !got.equal(want) {
					t.Fatalf("killed in %s (%s): tables\n got %s\nwant %s", phase, what, got, want)
				}
				// and purge --check finds the lake clean, nothing left orphaned.
				r.checkIcebergPurge(t, lk, tmp)
				t.Logf("killed in %s (%s); recovery exit %d", phase, what, rec.code)
				return
			}
		})
	}
	t.Logf("iceberg crash summary: seed=%d kills=%v runs-that-slipped-past=%d", seed, landed, misses)
}

// icebergPhase matches a runner on lk, a copy of base, that is in phase.
func icebergPhase(base, lk, phase string) func(fds func() []openFile) (string, bool) {
	catalog := filepath.Join(lake.StateDir, "iceberg", "catalog.db")
	return func(fds func() []openFile) (string, bool) {
		if phase == icePhaseAfter {
			was, err1 := os.Stat(filepath.Join(base, catalog))
			now, err2 := os.Stat(filepath.Join(lk, catalog))
			return "the lake's catalog replaced", err1 == nil && err2 == nil && !os.SameFile(was, now)
		}
		for _, f := range fds() {
			name := filepath.Base(f.path)
			switch {
			case phase == icePhaseSession && name == "catalog.db" && strings.Contains(f.path, "/hdc-export-iceberg-"):
				return "catalog copy open", true
			case phase == icePhaseMetadata && strings.HasPrefix(f.path, lk+"/") && strings.Contains(f.path, "/metadata/"):
				return "writing " + name, true
			case phase == icePhaseCatalog && strings.HasPrefix(f.path, filepath.Join(lk, "_hdc", "iceberg")+"/") && strings.HasPrefix(name, ".tmp-"):
				return "putting the catalog at byte " + strconv.FormatInt(f.pos, 10), true
			}
		}
		return "", false
	}
}

// icebergLake is what an Iceberg lake's current snapshots hold, per
// dataset: the data file keys they reference and rows and events per date.
type icebergLake map[string]icebergTable

type icebergTable struct {
	files []string
	days  map[string][2]int64
}

func (l icebergLake) equal(o icebergLake) bool {
	return maps.EqualFunc(l, o, func(a, b icebergTable) bool {
		return slices.Equal(a.files, b.files) && maps.Equal(a.days, b.days)
	})
}

func (l icebergLake) String() string {
	var s []string
	for _, ds := range slices.Sorted(maps.Keys(l)) {
		var rows int64
		for _, d := range l[ds].days {
			rows += d[0]
		}
		s = append(s, fmt.Sprintf("%s: %d files, %d dates, %d rows", ds, len(l[ds].files), len(l[ds].days), rows))
	}
	return strings.Join(s, "; ")
}

// readIcebergLake reads every dataset's table with iceberg-go: the data
// files in the current snapshot's manifests (failing on a path listed
// twice or a file missing from storage) and its rows through a scan.
func readIcebergLake(t *testing.T, dir, tmp string) icebergLake {
	t.Helper()
	ctx := context.Background()
	sink, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := iceberg.New(iceberg.Config{Warehouse: "file://" + dir, TempDir: tmp}, sink)
	if err != nil {
		t.Fatal(err)
	}
	out := icebergLake{}
	for _, ds := range []string{"ihv_driver", "oem_driver"} {
		tb := icebergTable{days: map[string][2]int64{}}
		err := f.Read(ctx, ds, func(tt *table.Table) error {
			if tt == nil {
				return fmt.Errorf("no table %s", ds)
			}
			fs, err := tt.FS(ctx)
			if err != nil {
				return err
			}
			snap := tt.CurrentSnapshot()
			if snap == nil {
				return fmt.Errorf("%s: no current snapshot", ds)
			}
			mans, err := snap.Manifests(fs)
			if err != nil {
				return err
			}
			for _, m := range mans {
				entries, err := m.FetchEntries(fs, true)
				if err != nil {
					return err
				}
				for _, e := range entries {
					if e.Status() == icebergapi.EntryStatusDELETED {
						continue
					}
					key, ok := strings.CutPrefix(e.DataFile().FilePath(), "file://"+dir+"/")
					if !ok {
						return fmt.Errorf("%s: a data file outside the lake: %s", ds, e.DataFile().FilePath())
					}
					if _, err := os.Stat(filepath.Join(dir, key)); err != nil {
						return fmt.Errorf("%s: the current snapshot references a missing file: %w", ds, err)
					}
					tb.files = append(tb.files, key)
				}
			}
			slices.Sort(tb.files)
			if c := slices.Compact(slices.Clone(tb.files)); len(c) != len(tb.files) {
				return fmt.Errorf("%s: a data file is registered twice in the current snapshot: %v", ds, tb.files)
			}
			days, err := icebergtest.ScanDays(ctx, tt)
			if err != nil {
				return err
			}
			for d, day := range days {
				tb.days[d] = [2]int64{day.Rows, day.Events}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		out[ds] = tb
	}
	return out
}

// checkIcebergPurge runs purge --check on lk: it must exit 0 with a clean
// verdict, two tables, nothing left and no orphan.
func (r *rig) checkIcebergPurge(t *testing.T, lk, tmp string) {
	t.Helper()
	cmd := exec.Command(r.bin, "purge", "--config", r.config, "--check", "--json")
	cmd.Env, cmd.Dir = r.env(lk, tmp), r.work
	out, err := cmd.Output()
	var rep struct {
		Verdict string           `json:"verdict"`
		Table   *lake.TableCheck `json:"table"`
	}
	if jerr := json.Unmarshal(out, &rep); err != nil || jerr != nil || rep.Verdict != "clean" || rep.Table == nil ||
		rep.Table.Tables != 2 || rep.Table.Left != 0 || rep.Table.Orphans != 0 {
		t.Fatalf("purge --check: %v %v: %s", err, jerr, out)
	}
}
