//go:build linux

package main

// Overlapping runners (issue 8, item 4): several hdc-export processes on one
// lake coordinate through the lease in the lake; a holder that dies, or
// stalls past lease.ttl, is taken over after the TTL and fenced out. Every
// scenario must end with the reference lake, no partial writes, no spill
// folders, and a reader that never saw a mixed partition.
//
//	go test -count=1 -run Overlap -v ./cmd/hdc-export/

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// overlapTTL is the shortest lease.ttl the config accepts.
const overlapTTL = 30 * time.Second

// overlapTally counts the scenarios' trials for the summary line.
type overlapTally struct {
	mu     sync.Mutex
	trials map[string]int
	kills  int
	passes int64
	reads  int64
}

func (o *overlapTally) add(scenario string, kills int, passes, reads int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.trials[scenario]++
	o.kills += kills
	o.passes += passes
	o.reads += reads
}

// TestOverlapRunners runs two to four runners on one lake at a time:
// three at once (the losers exit 4), three that all wait (--wait: one
// works, the others then find nothing new), a holder killed with SIGKILL
// (a runner started at once exits 4, two waiting ones take over after the
// TTL, exactly one working), and a holder stopped past its TTL (taken over,
// then fenced out when it resumes).
func TestOverlapRunners(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the runner binary on shared lakes and waits out lease TTLs (about a minute)")
	}
	t.Parallel() // with TestCrashRecovery
	seed := testSeed(t)
	start := time.Now()
	r := newRig(t)
	short := r.writeConfig("short-lease.yaml", overlapTTL.String())
	tally := &overlapTally{trials: map[string]int{}}
	// The scenarios run at once, each on its own lake: the holder ones
	// mostly wait for a TTL. (Not t.Parallel, which -parallel would cap at
	// GOMAXPROCS.)
	scenarios := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"killed-holder", func(t *testing.T) { r.overlapKilledHolder(t, tally, rand.New(rand.NewPCG(seed, 1)), short) }},
		{"stalled-holder", func(t *testing.T) { r.overlapStalledHolder(t, tally, rand.New(rand.NewPCG(seed, 2)), short) }},
		{"three-at-once", func(t *testing.T) {
			for i := range 4 {
				r.overlapAtOnce(t, tally, fmt.Sprintf("once-%d", i), false)
			}
		}},
		{"three-waiting", func(t *testing.T) { r.overlapAtOnce(t, tally, "waiting", true) }},
	}
	var wg sync.WaitGroup
	for _, sc := range scenarios {
		wg.Go(func() { t.Run(sc.name, sc.run) })
	}
	wg.Wait()
	var parts []string
	for _, s := range []string{"three-at-once", "three-waiting", "killed-holder", "stalled-holder"} {
		parts = append(parts, fmt.Sprintf("%s=%d", s, tally.trials[s]))
	}
	t.Logf("overlap summary: seed=%d trials: %s; kills=%d reader-passes=%d reader-file-versions=%d time=%s",
		seed, strings.Join(parts, " "), tally.kills, tally.passes, tally.reads, time.Since(start).Round(time.Second))
}

// overlapLake is one scenario's lake, temp folder (shared by its runners,
// as on one machine) and reader.
type overlapLake struct {
	lake, tmp string
	reader    *lakeReader
}

func (r *rig) newOverlapLake(name string) *overlapLake {
	o := &overlapLake{lake: r.copyBase("lake-" + name), tmp: r.tempDir(name)}
	o.reader = startReader(o.lake)
	go o.reader.run()
	return o
}

// check stops the reader and compares the lake with the reference. It
// returns the reader's passes and file versions read.
func (r *rig) checkOverlapLake(t *testing.T, o *overlapLake) (int64, int64) {
	t.Helper()
	files, _, errs := o.reader.finish()
	for _, e := range errs {
		t.Errorf("reader: %s", e)
	}
	st := readLake(t, o.lake)
	if missing, extra, differ := diffObjects(st.objects, r.ref); len(missing)+len(extra)+len(differ) > 0 {
		t.Errorf("lake differs from the reference: missing %s; extra %s; changed %s", head(missing), head(extra), head(differ))
	}
	if len(st.temp) > 0 {
		t.Errorf("partial writes left in the lake: %v", st.temp)
	}
	if left := dirNames(o.tmp); len(left) > 0 {
		t.Errorf("left in the temp folder: %v", left)
	}
	if gap := r.unaudited(t, o.lake, st.audit); len(gap) > 0 {
		t.Errorf("stale prefixes deleted but in no purge audit record: %v", gap)
	}
	if lease := dirNames(filepath.Join(o.lake, "_hdc", "lease")); len(lease) > 0 {
		t.Errorf("lease objects left after every runner ended: %v", lease)
	}
	os.RemoveAll(o.lake)
	os.RemoveAll(o.tmp)
	return o.reader.passes.Load(), files
}

// overlapAtOnce starts three runners on one lake at the same moment.
// Without wait exactly one works and the others exit 4 (or 5, had one
// started after the first finished); with wait, one works and the others
// wait for the lease and then find nothing new.
func (r *rig) overlapAtOnce(t *testing.T, tally *overlapTally, name string, wait bool) {
	o := r.newOverlapLake(name)
	var extra []string
	if wait {
		extra = []string{"--wait"}
	}
	procs := make([]*proc, 3)
	for i := range procs {
		procs[i] = r.start(o.lake, o.tmp, extra...)
	}
	var codes []int
	ingested := 0
	for _, p := range procs {
		code := p.wait(t, 2*time.Minute)
		codes = append(codes, code)
		if code == exitOK || code == exitNothingNew {
			ingested += runsIngested(t, p)
		}
	}
	slices.Sort(codes)
	want := []int{exitOK, exitLeaseHeld, exitLeaseHeld}
	if wait {
		want = []int{exitOK, exitNothingNew, exitNothingNew}
	}
	switch {
	case slices.Equal(codes, want):
	case !wait && codes[0] == exitOK && codes[1] != exitOK && !slices.ContainsFunc(codes, func(c int) bool {
		return c != exitOK && c != exitLeaseHeld && c != exitNothingNew
	}):
		t.Logf("exit codes %v: a runner started after the first had finished", codes)
	default:
		t.Errorf("exit codes %v, want %v", codes, want)
		for _, p := range procs {
			t.Logf("runner exit %d:\n%s", p.code, p.stderr.String())
		}
	}
	if ingested != r.refIngested {
		t.Errorf("the runners ingested %d runs in all, a clean run %d", ingested, r.refIngested)
	}
	scenario := "three-at-once"
	if wait {
		scenario = "three-waiting"
	}
	passes, reads := r.checkOverlapLake(t, o)
	tally.add(scenario, 0, passes, reads)
	t.Logf("%s: exit codes %v", name, codes)
}

// leaseExpiry reads the expiry of the lake's newest lease.
func leaseExpiry(t *testing.T, lake string) time.Time {
	t.Helper()
	dir := filepath.Join(lake, "_hdc", "lease")
	var newest string
	for _, name := range dirNames(dir) {
		if strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, ".") && name > newest {
			newest = name
		}
	}
	if newest == "" {
		t.Fatal("no lease in the lake")
	}
	b, err := os.ReadFile(filepath.Join(dir, newest))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Expires time.Time `json:"expires"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	return rec.Expires
}

// summaryStart reads the start time from a runner's JSON summary.
func summaryStart(t *testing.T, p *proc) time.Time {
	t.Helper()
	var sum struct {
		Started time.Time `json:"started"`
	}
	if err := json.Unmarshal([]byte(p.stdout.String()), &sum); err != nil {
		t.Fatalf("summary: %v\n%s", err, p.stdout.String())
	}
	return sum.Started
}

// overlapKilledHolder: the holder is killed with SIGKILL while it puts a
// data object. A runner started at once exits 4; two started with --wait
// wait for the dead holder's lease to expire, then one takes over (not
// before the expiry) and completes the lake, and the other finds nothing
// new.
func (r *rig) overlapKilledHolder(t *testing.T, tally *overlapTally, rng *rand.Rand, config string) {
	var o *overlapLake
	var what string
	// A fast run can finish before one of its puts is caught; try again on
	// a fresh lake, waiting less before aiming.
	for attempt := 0; ; attempt++ {
		o = r.newOverlapLake(fmt.Sprintf("killed-%d", attempt))
		holder := r.startWith(config, o.lake, o.tmp)
		time.Sleep(time.Duration(rng.Int64N(int64(r.refIngest)/2)) >> attempt)
		var ok bool
		what, ok = holder.killWhen(rng, func(fds func() []openFile) (string, bool) {
			return writing(fds(), o.lake, "ihv_driver/date=", "oem_driver/date=")
		})
		if ok {
			break
		}
		o.reader.finish()
		if attempt == 5 {
			t.Fatalf("the holder finished before it could be killed, 6 times (exit %d)", holder.code)
		}
	}
	killed := time.Now()
	expires := leaseExpiry(t, o.lake)
	if p := r.startWith(config, o.lake, o.tmp); p.wait(t, time.Minute) != exitLeaseHeld {
		t.Errorf("a runner started after the kill: exit %d, want %d (lease held)\n%s", p.code, exitLeaseHeld, p.stderr.String())
	}
	waiters := []*proc{r.startWith(config, o.lake, o.tmp, "--wait"), r.startWith(config, o.lake, o.tmp, "--wait")}
	var codes []int
	var took time.Time
	for _, p := range waiters {
		code := p.wait(t, 2*time.Minute)
		codes = append(codes, code)
		if code == exitOK {
			took = summaryStart(t, p)
		}
	}
	slices.Sort(codes)
	if !slices.Equal(codes, []int{exitOK, exitNothingNew}) {
		t.Errorf("waiting runners: exit codes %v, want [0 5]", codes)
		for _, p := range waiters {
			t.Logf("runner exit %d:\n%s", p.code, p.stderr.String())
		}
	}
	if !took.IsZero() && took.Before(expires) {
		t.Errorf("the lease was taken over at %s, before the dead holder's lease expired at %s", took, expires)
	}
	passes, reads := r.checkOverlapLake(t, o)
	tally.add("killed-holder", 1, passes, reads)
	t.Logf("holder killed (%s); a runner started then exited 4; taken over %s after the kill (lease expired %s after it); waiting runners exited %v",
		what, took.Sub(killed).Round(time.Millisecond), expires.Sub(killed).Round(time.Millisecond), codes)
}

// overlapStalledHolder: the holder is stopped (SIGSTOP) mid-run for longer
// than its lease. Another runner takes the lake over and completes it; the
// holder, continued, finds its lease lost at its next fence check and
// must not change the lake.
func (r *rig) overlapStalledHolder(t *testing.T, tally *overlapTally, rng *rand.Rand, config string) {
	var o *overlapLake
	var holder *proc
	for attempt := 0; ; attempt++ {
		o = r.newOverlapLake(fmt.Sprintf("stalled-%d", attempt))
		holder = r.startWith(config, o.lake, o.tmp)
		for !slices.ContainsFunc(dirNames(filepath.Join(o.lake, "_hdc", "lease")), func(n string) bool {
			return strings.HasSuffix(n, ".json") && !strings.HasPrefix(n, ".")
		}) && !holder.exited() {
			time.Sleep(time.Millisecond) // until it holds the lease
		}
		time.Sleep(time.Duration(rng.Int64N(int64(r.refIngest))))
		if holder.pause() {
			break
		}
		o.reader.finish()
		if attempt == 2 {
			t.Fatalf("the holder finished before it could be stopped, 3 times (exit %d)", holder.code)
		}
	}
	stopped := time.Now()
	what := describeState(openFiles(holder.cmd.Process.Pid), o.lake, o.tmp)
	expires := leaseExpiry(t, o.lake)
	time.Sleep(time.Until(expires) + 100*time.Millisecond)
	taker := r.startWith(config, o.lake, o.tmp)
	if code := taker.wait(t, 2*time.Minute); code != exitOK {
		t.Errorf("the runner taking over: exit %d, want 0\n%s", code, taker.stderr.String())
	}
	if took := summaryStart(t, taker); took.Before(expires) {
		t.Errorf("taken over at %s, before the stalled holder's lease expired at %s", took, expires)
	}
	before := readLake(t, o.lake).objects
	_ = holder.cmd.Process.Signal(syscall.SIGCONT)
	code := holder.wait(t, 2*time.Minute)
	if code == exitOK || code == exitNothingNew {
		t.Logf("the stalled holder exited %d: it was stopped after its last write", code)
	} else if !strings.Contains(holder.stderr.String(), "lease lost") {
		t.Errorf("the stalled holder exited %d without naming the lost lease:\n%s", code, holder.stderr.String())
	}
	if !maps.Equal(readLake(t, o.lake).objects, before) {
		t.Error("the stalled holder changed the lake after it was taken over")
	}
	passes, reads := r.checkOverlapLake(t, o)
	tally.add("stalled-holder", 0, passes, reads)
	t.Logf("holder stopped %s for %s (%s); taken over; continued, it exited %d",
		stopped.Sub(holder.started).Round(time.Millisecond), time.Since(stopped).Round(time.Second), what, code)
}
