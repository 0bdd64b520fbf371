//go:build linux

package main

// Crash consistency (issue 8, item 3): the hdc-export binary is killed with
// SIGKILL in every phase of a run, then run again, and the lake must equal
// a clean run's lake, with no partial writes or spill folders left and no
// reader ever seeing a partition mixed from two runs.
//
// The kills are aimed, not blind: a runner is paused (SIGSTOP) at random
// moments and its open files read from /proc/<pid>/fd; it is killed while
// paused only if it is in the target phase, so every kill is known to have
// landed where it is counted. Downloads and cab mirroring are caught from
// the emulator's side instead: the chosen request is held half-sent.
//
//	go test -count=1 -run 'Crash|Overlap' -v ./cmd/hdc-export/
//	go test -count=1 -run Crash -v ./cmd/hdc-export/ -args -crash.seed=42 -crash.trials=20

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/hdc-export/hdc-export/devcenter/emulator"
)

var (
	crashSeed   = flag.Uint64("crash.seed", 0, "seed of the crash and overlap tests (0: from the clock)")
	crashTrials = flag.Int("crash.trials", 9, "kills per phase in TestCrashRecovery")
)

// The phases TestCrashRecovery kills a runner in.
const (
	phaseDownload = "download" // a report file half received
	phaseEncode   = "encode"   // a partition's Parquet file being written or checked in the spill folder
	phaseUpload   = "upload"   // a data object being put (its temporary file open)
	phaseManifest = "manifest" // a partition manifest or a run's commit record being put
	phaseCabs     = "cabs"     // a cab half received and streaming into the lake
	phasePurge    = "purge"    // stale objects being deleted, or the audit record being put
)

var crashPhases = []string{phaseDownload, phaseEncode, phaseUpload, phaseManifest, phaseCabs, phasePurge}

// Sizes of the emulated account: small, so that a run takes about a second,
// but with every stage doing real work.
const (
	rigRowsPerDay = 40
	rigStaleCabs  = 800 // planted cabs outside the window: the purge's work
)

// testSeed returns the seed of a randomized test and logs how to repeat it.
func testSeed(t *testing.T) uint64 {
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (repeat with -args -crash.seed=%d)", seed, seed)
	return seed
}

// rig is the harness of the crash and overlap tests: the hdc-export binary,
// an emulator in this process whose clock the test sets, a config pointing
// at it, a base lake (yesterday's export plus stale objects for the purge)
// and the reference lake: what one clean run makes of the base lake.
type rig struct {
	t      *testing.T
	bin    string
	work   string
	config string
	srv    *httptest.Server
	hook   *blobHook
	offset atomic.Int64 // emulator clock: t0 + offset

	base        string            // base lake
	firstStale  string            // the purge's first deletion (a key)
	lastStale   string            // its last
	ref         map[string]string // reference lake: key → SHA-256 (no lease, no audit)
	refRows     int64             // data rows in the reference lake
	refIngested int               // runs the reference run ingested
	refParts    int               // data objects it put
	refReports  int               // report downloads of the reference run
	refCabs     int               // cab downloads of the reference run
	refRun      time.Duration     // the reference run's wall time
	refIngest   time.Duration     // from its start to its first cab download
}

// newRig builds everything.
func newRig(t *testing.T) *rig {
	t.Helper()
	now := time.Now().UTC()
	if next := now.Truncate(24 * time.Hour).Add(24 * time.Hour); next.Sub(now) < 10*time.Minute {
		// The runner's retention window follows the real clock.
		t.Skip("too close to midnight UTC: the retention window would move during the test")
	}
	r := &rig{t: t, work: t.TempDir(), hook: &blobHook{}}
	r.bin = buildBinary(t, r.work)
	// The emulator's clock stands still at t0 (three days earlier while
	// the base lake is made), so that every run of the test sees the same
	// runs.
	t0 := now
	r.offset.Store(int64(-3 * 24 * time.Hour))
	em := emulator.New(emulator.Options{RowsPerDay: rigRowsPerDay, CabSizeMin: 1 << 10, CabSizeMax: 6 << 10,
		Now: func() time.Time { return t0.Add(time.Duration(r.offset.Load())) }})
	r.srv = httptest.NewServer(r.hook.wrap(em.Handler()))
	t.Cleanup(r.srv.Close)
	r.config = r.writeConfig("config.yaml", "5m")

	// The base lake: the export of three days ago, then objects a few days
	// outside the window, as a lake that was not purged would hold them.
	r.base = filepath.Join(r.work, "base")
	built := time.Now()
	if p := r.start(r.base, r.tempDir("base")); p.wait(t, 2*time.Minute) != exitOK {
		t.Fatalf("base run: exit %d\n%s", p.code, p.stderr.String())
	}
	t.Logf("build %s, base run %s", built.Sub(now).Round(time.Millisecond), time.Since(built).Round(time.Millisecond))
	r.offset.Store(0)
	r.plantStale()
	baseObjects := readLake(t, r.base).objects
	t.Cleanup(func() {
		// The copies are hard links: they must not have changed the base.
		if !maps.Equal(readLake(t, r.base).objects, baseObjects) {
			t.Error("the base lake changed: a copy of it was written in place")
		}
	})

	// The reference: one clean run on a copy of the base lake.
	ref := r.copyBase("ref")
	tmp := r.tempDir("ref")
	r.hook.reset()
	start := time.Now()
	p := r.start(ref, tmp)
	if p.wait(t, 2*time.Minute) != exitOK {
		t.Fatalf("reference run: exit %d\n%s", p.code, p.stderr.String())
	}
	r.refRun = time.Since(start)
	r.refIngested = runsIngested(t, p)
	r.refParts = countReplaced(r.base, ref)
	r.refReports, r.refCabs = r.hook.count("report"), r.hook.count("cab")
	r.refIngest = r.hook.firstCab().Sub(start)
	if r.refReports == 0 || r.refCabs == 0 || r.refIngest <= 0 || r.refIngested == 0 || r.refParts == 0 {
		t.Fatalf("the reference run ingested %d runs, downloaded %d reports and %d cabs: no work to kill",
			r.refIngested, r.refReports, r.refCabs)
	}
	st := readLake(t, ref)
	if len(st.temp) > 0 || len(st.audit) != 1 || st.objects[r.firstStale] != "" || st.objects[r.lastStale] != "" {
		t.Fatalf("reference lake: partial writes %v, audit records %v, stale objects left: %v", st.temp, st.audit, st.objects[r.firstStale] != "")
	}
	if left := dirNames(tmp); len(left) > 0 {
		t.Fatalf("reference run left %v in its temp folder", left)
	}
	r.ref = st.objects
	rd := startReader(ref)
	rd.pass()
	files, rows, errs := rd.finish()
	if len(errs) > 0 || files == 0 {
		t.Fatalf("reference lake: %d files, errors %v", files, errs)
	}
	r.refRows = rows
	// Running again changes nothing.
	if p := r.start(ref, tmp); p.wait(t, time.Minute) != exitNothingNew {
		t.Fatalf("second run on the reference lake: exit %d\n%s", p.code, p.stderr.String())
	}
	if got := readLake(t, ref); !maps.Equal(got.objects, r.ref) {
		t.Fatal("a second run changed the reference lake")
	}
	t.Logf("reference run: %s, %d runs ingested, %d data objects put, %d report downloads, %d cab downloads (first after %s), %d objects, %d rows",
		r.refRun.Round(time.Millisecond), r.refIngested, r.refParts, r.refReports, r.refCabs, r.refIngest.Round(time.Millisecond), len(r.ref), r.refRows)
	return r
}

// writeConfig writes a config for the emulator with lease.ttl ttl.
func (r *rig) writeConfig(name, ttl string) string {
	templates, err := filepath.Abs("../../configs/templates")
	if err != nil {
		r.t.Fatal(err)
	}
	cfg := fmt.Sprintf(`devcenter:
  tenant_id: demo-tenant
  client_id: demo-client
sink:
  url: ./lake
lease:
  ttl: %s
cabs:
  concurrency: 4
  rate_per_second: 100000
  allow_hosts: [%q]
reports:
  - name: ihv_driver
    template_file: %s/ihv_all_last7days.json
    schedule: {interval_hours: 24}
  - name: oem_driver
    template_file: %s/oem_all_last7days.json
    schedule: {interval_hours: 24}
`, ttl, r.srv.URL, templates, templates)
	path := filepath.Join(r.work, name)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		r.t.Fatal(err)
	}
	return path
}

// countReplaced counts the data objects of the datasets in lake that are
// not the base lake's (lake being a hard-linked copy of it): the data puts
// of the runs on lake so far.
func countReplaced(base, lake string) int {
	n := 0
	for _, ds := range []string{"ihv_driver", "oem_driver"} {
		for _, part := range dirNames(filepath.Join(lake, ds)) {
			rel := filepath.Join(ds, part, "part-00000.parquet")
			got, err := os.Stat(filepath.Join(lake, rel))
			if err != nil {
				continue
			}
			if was, err := os.Stat(filepath.Join(base, rel)); err != nil || !os.SameFile(got, was) {
				n++
			}
		}
	}
	return n
}

// runsIngested reads runs_ingested from a finished runner's JSON summary.
func runsIngested(t *testing.T, p *proc) int {
	t.Helper()
	var sum struct {
		Runs int `json:"runs_ingested"`
	}
	if err := json.Unmarshal([]byte(p.stdout.String()), &sum); err != nil {
		t.Fatalf("summary: %v\n%s", err, p.stdout.String())
	}
	return sum.Runs
}

// plantStale adds objects dated a few days before the window to the base
// lake: cabs, their index, data, manifests, commit records, quarantine and
// cab state. Valid Parquet files are copies of real ones.
func (r *rig) plantStale() {
	t := r.t
	old := time.Now().UTC().AddDate(0, 0, -35).Format(time.DateOnly)
	realPart := func(table string) []byte {
		files, _ := filepath.Glob(filepath.Join(r.base, table, "date=*", "part-00000.parquet"))
		if len(files) == 0 {
			t.Fatalf("base lake has no %s partition", table)
		}
		b, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	objects := map[string][]byte{
		"cab_index/date=" + old + "/part-00000.parquet":     realPart("cab_index"),
		"ihv_driver/date=" + old + "/part-00000.parquet":    realPart("ihv_driver"),
		"oem_driver/date=" + old + "/part-00000.parquet":    realPart("oem_driver"),
		"_hdc/manifests/ihv_driver/date=" + old + ".json":   []byte("{}\n"),
		"_hdc/cabstate/ihv_driver/date=" + old + ".json":    []byte("{}\n"),
		"_hdc/commits/ihv_driver/date=" + old + "/1-x.json": []byte("{}\n"),
		"_hdc/quarantine/ihv_driver/date=" + old + "/1.tsv": []byte("line\tcolumn\treason\n"),
	}
	for i := range rigStaleCabs {
		objects[fmt.Sprintf("cabs/date=%s/%08x-0000-4000-8000-%012x.cab", old, i, i)] = []byte("MSCF stale cab\n")
	}
	keys := make([]string, 0, len(objects))
	for key, body := range objects {
		p := filepath.Join(r.base, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o640); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	// The purge deletes data before state, each in key order.
	slices.SortFunc(keys, func(a, b string) int {
		if sa, sb := strings.HasPrefix(a, "_hdc/"), strings.HasPrefix(b, "_hdc/"); sa != sb {
			if sa {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	r.firstStale, r.lastStale = keys[0], keys[len(keys)-1]
}

// tempDir returns a new, empty folder for a runner's TMPDIR.
func (r *rig) tempDir(name string) string {
	dir := filepath.Join(r.work, "tmp-"+name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		r.t.Fatal(err)
	}
	return dir
}

// copyBase copies the base lake to a new folder of the work folder.
func (r *rig) copyBase(name string) string {
	dst := filepath.Join(r.work, name)
	if err := os.RemoveAll(dst); err != nil {
		r.t.Fatal(err)
	}
	err := filepath.WalkDir(r.base, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(r.base, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o750)
		}
		// A hard link is a copy here: the local sink never writes a file
		// in place (it renames a new one over it), nor does the test.
		return os.Link(path, target)
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return dst
}

// env is a runner's environment: this process's without HDC_*, MINIO_* and
// TMPDIR, pointed at the emulator, the lake and the temp folder.
func (r *rig) env(lake, tmp string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HDC_") || strings.HasPrefix(kv, "MINIO_") || strings.HasPrefix(kv, "TMPDIR=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HDC_API_URL="+r.srv.URL, "HDC_TOKEN_URL="+r.srv.URL+"/demo-tenant/oauth2/token",
		"HDC_CLIENT_SECRET=demo-secret", "HDC_SINK_URL="+lake, "TMPDIR="+tmp)
}

// start starts `hdc-export run` on lake with tmp as its temp folder.
func (r *rig) start(lake, tmp string, extra ...string) *proc {
	r.t.Helper()
	return r.startWith(r.config, lake, tmp, extra...)
}

// startWith is start with another config.
func (r *rig) startWith(config, lake, tmp string, extra ...string) *proc {
	r.t.Helper()
	args := append([]string{"run", "--config", config, "--log-format", "json", "--detailed-exitcode"}, extra...)
	cmd := exec.Command(r.bin, args...)
	cmd.Env = r.env(lake, tmp)
	cmd.Dir = r.work
	p := &proc{cmd: cmd, done: make(chan struct{}), started: time.Now()}
	cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	r.t.Cleanup(p.kill)
	return p
}

// proc is a running hdc-export process.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	started        time.Time
	done           chan struct{}
	code           int // after done; -1 if killed
}

// wait returns the exit code, killing the process after timeout.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
		t.Errorf("runner still running after %s; killed\n%s", timeout, p.stderr.String())
	}
	return p.code
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL (if the process still runs) and waits for the end.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// pause stops the process (SIGSTOP) and waits until all its threads are
// stopped. It reports false if the process exited or did not stop.
func (p *proc) pause() bool {
	if p.cmd.Process.Signal(syscall.SIGSTOP) != nil {
		return false
	}
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		if p.exited() {
			return false
		}
		if allStopped(p.cmd.Process.Pid) {
			return true
		}
		time.Sleep(20 * time.Microsecond)
	}
	return false
}

func (p *proc) resume() { _ = p.cmd.Process.Signal(syscall.SIGCONT) }

// allStopped reports whether every thread of pid is stopped (or gone).
func allStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue // the thread ended
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return false
		}
		switch b[i+2] {
		case 'T', 't', 'Z', 'X':
		default:
			return false
		}
	}
	return true
}

// openFile is a file the process has open, and its offset.
type openFile struct {
	path string
	pos  int64
}

// openFiles lists the regular files the process has open.
func openFiles(pid int) []openFile {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []openFile
	for _, e := range entries {
		path, err := os.Readlink(dir + "/" + e.Name())
		if err != nil || !strings.HasPrefix(path, "/") {
			continue // closed meanwhile, or a socket or pipe
		}
		f := openFile{path: strings.TrimSuffix(path, " (deleted)"), pos: -1}
		if info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name())); err == nil {
			if line, ok := strings.CutPrefix(string(info), "pos:"); ok {
				line, _, _ = strings.Cut(line, "\n")
				f.pos, _ = strconv.ParseInt(strings.TrimSpace(line), 10, 64)
			}
		}
		out = append(out, f)
	}
	return out
}

// killWhen pauses the process at random moments and kills it, while
// paused, the first time match accepts its state. It returns what match
// said, or false if the process exited first. match is tried on the
// running process first, and again once it is paused; it calls fds for the
// files the process has open.
func (p *proc) killWhen(rng *rand.Rand, match func(fds func() []openFile) (string, bool)) (string, bool) {
	fds := func() []openFile { return openFiles(p.cmd.Process.Pid) }
	for !p.exited() {
		time.Sleep(time.Duration(20+rng.IntN(200)) * time.Microsecond)
		if _, ok := match(fds); !ok {
			continue
		}
		if !p.pause() {
			p.resume()
			continue
		}
		if what, ok := match(fds); ok {
			p.kill()
			return what, true
		}
		p.resume()
	}
	return "", false
}

// lockedBuffer collects a child's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// blobHook sits in front of the emulator. It counts report and cab blob
// downloads, and can hold one of them half-sent until its client dies.
type blobHook struct {
	mu     sync.Mutex
	counts map[string]int
	cabAt  time.Time // the first cab download since reset
	kind   string    // armed: hold the at-th download of this kind
	at     int
	held   chan struct{}
}

func (h *blobHook) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts, h.cabAt, h.kind = map[string]int{}, time.Time{}, ""
}

func (h *blobHook) count(kind string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[kind]
}

func (h *blobHook) firstCab() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cabAt
}

// arm holds the at-th download of kind ("report" or "cab") from now on;
// the channel closes when it is held.
func (h *blobHook) arm(kind string, at int) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts, h.kind, h.at, h.held = map[string]int{}, kind, at, make(chan struct{})
	return h.held
}

func (h *blobHook) disarm() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.kind = ""
}

func (h *blobHook) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		kind := ""
		switch {
		case strings.HasPrefix(req.URL.Path, "/blobs/reports/"):
			kind = "report"
		case strings.HasPrefix(req.URL.Path, "/blobs/cabs/"):
			kind = "cab"
		default:
			next.ServeHTTP(w, req)
			return
		}
		h.mu.Lock()
		if h.counts == nil {
			h.counts = map[string]int{}
		}
		n := h.counts[kind]
		h.counts[kind]++
		if kind == "cab" && h.cabAt.IsZero() {
			h.cabAt = time.Now()
		}
		hold := h.kind == kind && n >= h.at
		var held chan struct{}
		if hold {
			h.kind, held = "", h.held
		}
		h.mu.Unlock()
		if !hold {
			next.ServeHTTP(w, req)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		if rec.Code/100 != 2 || len(body) < 2 {
			// Nothing to cut: serve it whole and hold the next one.
			h.mu.Lock()
			h.kind, h.at = kind, 0
			h.counts[kind] = 0
			h.mu.Unlock()
			copyHeader(w, rec)
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
			return
		}
		copyHeader(w, rec)
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body[:len(body)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		close(held)
		select {
		case <-req.Context().Done(): // the client died
		case <-time.After(30 * time.Second):
		}
	})
}

func copyHeader(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
}

// lakeState is what a lake holds.
type lakeState struct {
	objects map[string]string // key → SHA-256, without lease and purge audit records
	audit   []string          // purge audit records
	temp    []string          // partial writes: the local sink's ".tmp-" files
}

// readLake reads a lake folder. Lease objects differ by design (who held
// it, which epoch) and are left out; purge audit records are a log of what
// each purge did, so a purge cut short by a kill and finished by the next
// run legitimately leaves records that differ from a clean run's: they
// are listed apart.
func readLake(t *testing.T, dir string) lakeState {
	t.Helper()
	st := lakeState{objects: map[string]string{}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		switch {
		case strings.HasPrefix(d.Name(), ".tmp-"):
			st.temp = append(st.temp, rel)
			return nil
		case strings.HasPrefix(rel, "_hdc/lease/"):
			return nil
		case strings.HasPrefix(rel, "_hdc/audit/"):
			st.audit = append(st.audit, rel)
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		st.objects[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// youngLeaseTemp returns the partial writes among temp that are in the
// lease folder and were written less than a minute (the purge's
// leaseTempGrace) before started: the only partial writes a leased cycle
// that began at started keeps by design.
func youngLeaseTemp(t *testing.T, lake string, temp []string, started time.Time) []string {
	t.Helper()
	var young []string
	for _, rel := range temp {
		if !strings.HasPrefix(rel, "_hdc/lease/") {
			continue
		}
		fi, err := os.Stat(filepath.Join(lake, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Before(started.Add(-time.Minute)) {
			young = append(young, rel)
		}
	}
	return young
}

// diffObjects compares a lake's objects with the reference's.
func diffObjects(got, want map[string]string) (missing, extra, differ []string) {
	for k, v := range want {
		switch g, ok := got[k]; {
		case !ok:
			missing = append(missing, k)
		case g != v:
			differ = append(differ, k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	slices.Sort(differ)
	return missing, extra, differ
}

// dirNames lists a folder's entries.
func dirNames(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// expireLease stands for waiting out lease.ttl after a kill: it moves the
// expiry of the dead holder's lease into the past. (TestOverlapKilledHolder
// waits for a real TTL.)
func expireLease(t *testing.T, lake string) {
	t.Helper()
	dir := filepath.Join(lake, "_hdc", "lease")
	for _, name := range dirNames(dir) {
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var rec map[string]any
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatalf("lease %s: %v", name, err)
		}
		rec["expires"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
		b, _ = json.Marshal(rec)
		tmp := filepath.Join(filepath.Dir(lake), "lease.json")
		if err := os.WriteFile(tmp, b, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}

// lakeReader stands for an analyst's query engine during the test: it
// keeps reading every partition of the lake, as Athena or DuckDB would
// (files whose names start with "." or "_" are not data), and checks that
// each partition holds at most one data file, a complete Parquet file
// whose metadata names exactly one run.
type lakeReader struct {
	lake       string
	stop, done chan struct{}
	passes     atomic.Int64 // listings of every partition
	files      atomic.Int64 // data file versions read in full
	rows       atomic.Int64
	mu         sync.Mutex
	errs       []string
	seen       map[fileVersion]bool // read already: listed again, not read again
}

// fileVersion tells versions of a path apart: every put makes a new file.
type fileVersion struct {
	path  string
	inode uint64
	size  int64
	mtime int64
}

func startReader(lake string) *lakeReader {
	return &lakeReader{lake: lake, stop: make(chan struct{}), done: make(chan struct{}), seen: map[fileVersion]bool{}}
}

// run reads the lake until finish.
func (lr *lakeReader) run() {
	defer close(lr.done)
	for {
		select {
		case <-lr.stop:
			return
		default:
		}
		lr.pass()
		time.Sleep(time.Millisecond)
	}
}

// finish stops the reader (if running) and returns the file versions and
// rows it read, and what it found wrong.
func (lr *lakeReader) finish() (files, rows int64, errs []string) {
	select {
	case <-lr.stop:
	default:
		close(lr.stop)
	}
	select {
	case <-lr.done:
	case <-time.After(10 * time.Second):
	}
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return lr.files.Load(), lr.rows.Load(), slices.Clone(lr.errs)
}

func (lr *lakeReader) fail(format string, args ...any) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if len(lr.errs) < 20 {
		lr.errs = append(lr.errs, fmt.Sprintf(format, args...))
	}
}

// pass lists every partition once and reads the data files it has not
// read yet; it returns the data rows read.
func (lr *lakeReader) pass() int64 {
	lr.passes.Add(1)
	var total int64
	for _, table := range dirNames(lr.lake) {
		if strings.HasPrefix(table, "_") || strings.HasPrefix(table, ".") || table == "cabs" {
			continue
		}
		for _, part := range dirNames(filepath.Join(lr.lake, table)) {
			if !strings.HasPrefix(part, "date=") {
				continue
			}
			var data []string
			for _, name := range dirNames(filepath.Join(lr.lake, table, part)) {
				if !strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "_") {
					data = append(data, name)
				}
			}
			if len(data) > 1 {
				lr.fail("%s/%s holds %d data files: %v", table, part, len(data), data)
			}
			for _, name := range data {
				n := lr.read(table, filepath.Join(lr.lake, table, part, name))
				if table != "cab_index" {
					total += n
				}
			}
		}
	}
	return total
}

// read checks one data file and returns its rows.
func (lr *lakeReader) read(table, path string) int64 {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0 // replaced or purged since the listing
	}
	if err != nil {
		lr.fail("open %s: %v", path, err)
		return 0
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		lr.fail("stat %s: %v", path, err)
		return 0
	}
	v := fileVersion{path: path, size: st.Size(), mtime: st.ModTime().UnixNano()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		v.inode = sys.Ino
	}
	if lr.seen[v] {
		return 0
	}
	lr.seen[v] = true
	rel, _ := filepath.Rel(lr.lake, path)
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		lr.fail("%s: not a complete Parquet file: %v", rel, err)
		return 0
	}
	var runs []string
	for _, kv := range pf.Metadata().KeyValueMetadata {
		if kv.Key == "hdc.run" {
			runs = append(runs, kv.Value)
		}
	}
	if table != "cab_index" && len(runs) != 1 {
		lr.fail("%s: names runs %v, want exactly one", rel, runs)
	}
	var n int64
	buf := make([]parquet.Row, 256)
	for _, rg := range pf.RowGroups() {
		rows := rg.Rows()
		for {
			k, err := rows.ReadRows(buf)
			n += int64(k)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				lr.fail("%s: read rows: %v", rel, err)
				break
			}
		}
		rows.Close()
	}
	if n != pf.NumRows() {
		lr.fail("%s: read %d rows, the footer says %d", rel, n, pf.NumRows())
	}
	lr.files.Add(1)
	lr.rows.Add(n)
	return n
}

// TestCrashRecovery kills the runner with SIGKILL in each phase, sometimes
// kills its recovery too, then runs it once more: the lake must equal the
// reference lake object for object, byte for byte, hold no partial write
// and leave no spill folder, and the reader running throughout must never
// see a partition with more than one data file, or a data file that is
// incomplete or names other than one run.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the runner binary 54 times (about two minutes)")
	}
	t.Parallel() // with TestOverlapRunners, which mostly waits out lease TTLs
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	start := time.Now()
	r := newRig(t)
	var order []string
	for range *crashTrials {
		order = append(order, crashPhases...)
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })

	landed := map[string]int{}
	var misses, recoveryKills, failed int
	var reads, passes int64
	var lost, extra, differ, partial, spill, mixed, unaudited int
	for i, phase := range order {
		ok := t.Run(fmt.Sprintf("%02d-%s", i, phase), func(t *testing.T) {
			for attempt := 0; ; attempt++ {
				if attempt == 5 {
					t.Fatalf("no kill landed in phase %s in 5 runs", phase)
				}
				tr, ok := r.crashTrial(t, rng, phase, fmt.Sprintf("%02d-%d", i, attempt))
				if !ok {
					t.Logf("the run slipped past phase %s without being killed; again", phase)
					misses++
					continue
				}
				landed[phase]++
				if tr.recovery != "" {
					recoveryKills++
				}
				reads += tr.reads
				passes += tr.passes
				lost += tr.missing
				extra += tr.extra
				differ += tr.differ
				partial += tr.partial
				spill += tr.spill
				mixed += tr.mixed
				unaudited += tr.unaudited
				t.Logf("killed in %s (%s)%s; final run exit %d; reader: %d passes, %d file versions",
					phase, tr.landed, tr.recoveryNote(), tr.code, tr.passes, tr.reads)
				return
			}
		})
		if !ok {
			failed++
		}
	}
	total := 0
	var perPhase []string
	for _, ph := range crashPhases {
		total += landed[ph]
		perPhase = append(perPhase, fmt.Sprintf("%s=%d", ph, landed[ph]))
	}
	t.Logf("crash summary: seed=%d kills=%d (%s) recovery-kills=%d runs-that-slipped-past-their-phase=%d reader-passes=%d reader-file-versions=%d "+
		"lost-objects=%d extra-objects=%d changed-objects=%d partial-writes-left=%d spill-folders-left=%d mixed-partitions=%d "+
		"unaudited-purges=%d failed-trials=%d time=%s",
		seed, total+recoveryKills, strings.Join(perPhase, " "), recoveryKills, misses, passes, reads,
		lost, extra, differ, partial, spill, mixed, unaudited, failed, time.Since(start).Round(time.Second))
}

// trialResult is what one crash trial found.
type trialResult struct {
	landed      string // what the runner was doing when killed
	recovery    string // where a kill during the recovery landed ("" if none)
	recoveryRan int    // exit code of a recovery that finished before its kill (-1 if none)
	code        int    // exit code of the final run
	reads       int64  // data file versions the reader read
	passes      int64  // times the reader listed every partition
	missing     int    // reference objects the lake lacks
	extra       int    // objects the reference lacks
	differ      int    // objects whose bytes differ
	partial     int    // partial writes left in the lake
	spill       int    // entries left in the temp folder
	mixed       int    // reader findings (two files, incomplete file, several runs)
	unaudited   int    // stale prefixes deleted but in no audit record
}

func (tr trialResult) recoveryNote() string {
	switch {
	case tr.recovery != "":
		return "; recovery killed too (" + tr.recovery + ")"
	case tr.recoveryRan >= 0:
		return fmt.Sprintf("; the recovery to be killed finished first (exit %d)", tr.recoveryRan)
	}
	return ""
}

// crashTrial copies the base lake, kills a runner on it in phase, maybe
// kills the recovery too, runs once more and checks the lake. It reports
// false if the run slipped past the phase without being killed.
func (r *rig) crashTrial(t *testing.T, rng *rand.Rand, phase, name string) (trialResult, bool) {
	t.Helper()
	tr := trialResult{recoveryRan: -1}
	lake := r.copyBase("lake-" + name)
	tmp := r.tempDir(name)
	defer os.RemoveAll(lake)
	defer os.RemoveAll(tmp)
	rd := startReader(lake)
	go rd.run()
	defer rd.finish()

	what, ok := r.killIn(rng, phase, lake, tmp)
	if !ok {
		return tr, false
	}
	tr.landed = what
	if phase == phaseDownload || phase == phaseEncode || phase == phaseUpload {
		// Purge comes first: a runner killed while it ingests (as an
		// out-of-memory kill would) has already destroyed the stale data.
		if left := r.staleLeft(lake); len(left) > 0 {
			t.Errorf("killed in %s, yet %d stale objects planted before the cycle remain (%s)", what, len(left), head(left))
		}
	}
	if rng.IntN(3) == 0 {
		expireLease(t, lake)
		p := r.start(lake, tmp)
		time.Sleep(time.Duration(rng.Int64N(int64(r.refRun))))
		if p.pause() {
			tr.recovery = describeState(openFiles(p.cmd.Process.Pid), lake, tmp)
			p.kill()
		} else {
			p.resume()
			if tr.recoveryRan = p.wait(t, time.Minute); tr.recoveryRan != exitOK && tr.recoveryRan != exitNothingNew {
				t.Errorf("recovery run: exit %d\n%s", tr.recoveryRan, p.stderr.String())
			}
		}
	}
	expireLease(t, lake)
	p := r.start(lake, tmp)
	if tr.code = p.wait(t, 2*time.Minute); tr.code != exitOK && tr.code != exitNothingNew {
		t.Errorf("final run: exit %d\n%s", tr.code, p.stderr.String())
	}
	files, _, errs := rd.finish()
	tr.reads, tr.passes, tr.mixed = files, rd.passes.Load(), len(errs)
	for _, e := range errs {
		t.Errorf("reader: %s", e)
	}
	st := readLake(t, lake)
	if young := youngLeaseTemp(t, lake, st.temp, p.started); len(young) > 0 {
		// A partial lease write from a run killed just before the final
		// one began may be a live contender's, so the final run's purges
		// keep it for leaseTempGrace. Age it past the grace: the next
		// cycle must remove it.
		t.Logf("lease partial writes younger than the grace kept by the final run: %v; aged, and run once more", young)
		old := p.started.Add(-2 * time.Minute)
		for _, rel := range young {
			if err := os.Chtimes(filepath.Join(lake, filepath.FromSlash(rel)), old, old); err != nil {
				t.Fatal(err)
			}
		}
		expireLease(t, lake)
		again := r.start(lake, tmp)
		if code := again.wait(t, 2*time.Minute); code != exitOK && code != exitNothingNew {
			t.Errorf("run after ageing the lease's partial writes: exit %d\n%s", code, again.stderr.String())
		}
		st = readLake(t, lake)
	}
	missing, extra, differ := diffObjects(st.objects, r.ref)
	tr.missing, tr.extra, tr.differ, tr.partial = len(missing), len(extra), len(differ), len(st.temp)
	if len(missing)+len(extra)+len(differ) > 0 {
		t.Errorf("lake differs from the reference: missing %s; extra %s; changed %s", head(missing), head(extra), head(differ))
	}
	if len(st.temp) > 0 {
		t.Errorf("partial writes left in the lake: %v", st.temp)
	}
	if left := dirNames(tmp); len(left) > 0 {
		tr.spill = len(left)
		t.Errorf("left in the temp folder: %v", left)
	}
	if gap := r.unaudited(t, lake, st.audit); len(gap) > 0 {
		tr.unaudited = len(gap)
		t.Errorf("stale prefixes deleted but in no purge audit record: %v", gap)
	}
	return tr, true
}

// killIn starts a runner on lake and kills it in phase. It reports what
// the runner was doing, or false if it finished first.
func (r *rig) killIn(rng *rand.Rand, phase, lake, tmp string) (string, bool) {
	if phase == phaseDownload || phase == phaseCabs {
		kind, n := "report", r.refReports
		if phase == phaseCabs {
			kind, n = "cab", r.refCabs
		}
		k := rng.IntN(n)
		held := r.hook.arm(kind, k)
		defer r.hook.disarm()
		p := r.start(lake, tmp)
		select {
		case <-held:
			p.kill()
			return fmt.Sprintf("%s download %d of %d held half-sent", kind, k+1, n), true
		case <-p.done:
			return "", false
		}
	}
	p := r.start(lake, tmp)
	defer p.kill()
	// The ingest phases recur for every partition: aim at a random one,
	// by the runner's progress (data objects put so far), not by time.
	after := rng.IntN(r.refParts)
	begun := false
	var match func(func() []openFile) (string, bool)
	switch phase {
	case phaseEncode:
		match = func(fds func() []openFile) (string, bool) { return encoding(fds(), lake, tmp) }
	case phaseUpload:
		match = func(fds func() []openFile) (string, bool) {
			return writing(fds(), lake, "ihv_driver/date=", "oem_driver/date=")
		}
	case phaseManifest:
		match = func(fds func() []openFile) (string, bool) {
			return writing(fds(), lake, "_hdc/manifests/", "_hdc/commits/")
		}
	case phasePurge:
		// Kill once the purge has deleted a random share of the stale cabs
		// (all of them: while the state objects go or the audit record is
		// written).
		threshold := rng.IntN(rigStaleCabs + 1)
		cabs := filepath.Join(lake, "cabs", "date="+r.staleDate())
		match = func(fds func() []openFile) (string, bool) {
			if exists(filepath.Join(lake, r.firstStale)) {
				return "", false // not begun
			}
			audit, writingAudit := writing(fds(), lake, "_hdc/audit/purge/")
			if !writingAudit && !exists(filepath.Join(lake, r.lastStale)) {
				return "", false // over
			}
			left := len(dirNames(cabs))
			if left > threshold {
				return "", false
			}
			if writingAudit {
				return audit, true
			}
			return fmt.Sprintf("deleting, %d of %d stale cabs left", left, rigStaleCabs), true
		}
	default:
		panic("unknown phase " + phase)
	}
	if phase == phasePurge {
		return p.killWhen(rng, match)
	}
	return p.killWhen(rng, func(fds func() []openFile) (string, bool) {
		if !begun {
			if begun = countReplaced(r.base, lake) >= after; !begun {
				return "", false
			}
		}
		return match(fds)
	})
}

// writing reports a partial write the runner has open in the lake under
// one of the prefixes.
func writing(fds []openFile, lake string, prefixes ...string) (string, bool) {
	for _, f := range fds {
		rel, ok := strings.CutPrefix(f.path, lake+"/")
		if !ok || !strings.HasPrefix(filepath.Base(rel), ".tmp-") {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(rel, p) {
				return "putting " + filepath.Dir(rel) + "/", true
			}
		}
	}
	return "", false
}

// encoding reports a partition's Parquet file in the spill folder that is
// being written or read (a position past its start) while nothing of that
// partition is being put.
func encoding(fds []openFile, lake, tmp string) (string, bool) {
	for _, f := range fds {
		rel, ok := strings.CutPrefix(f.path, tmp+"/hdc-export-")
		if !ok || !strings.HasSuffix(rel, ".parquet") || f.pos <= 0 {
			continue
		}
		date := "date=" + strings.TrimSuffix(filepath.Base(rel), ".parquet")
		if _, putting := writing(fds, lake, "ihv_driver/"+date+"/", "oem_driver/"+date+"/"); putting {
			continue
		}
		return fmt.Sprintf("spill file %s at byte %d", filepath.Base(rel), f.pos), true
	}
	return "", false
}

// describeState says what a paused runner has open, for the log.
func describeState(fds []openFile, lake, tmp string) string {
	if what, ok := writing(fds, lake, ""); ok {
		return what
	}
	if what, ok := encoding(fds, lake, tmp); ok {
		return what
	}
	for _, f := range fds {
		if strings.HasPrefix(f.path, tmp+"/") {
			return "spill folder open"
		}
	}
	return "no lake or spill file open"
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// unaudited returns the planted stale prefixes that no purge audit record
// of the lake names.
func (r *rig) unaudited(t *testing.T, lake string, records []string) []string {
	t.Helper()
	named := map[string]bool{}
	for _, rec := range records {
		b, err := os.ReadFile(filepath.Join(lake, filepath.FromSlash(rec)))
		if err != nil {
			t.Fatal(err)
		}
		var a struct {
			Prefixes map[string]int `json:"prefixes"`
		}
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("audit record %s: %v", rec, err)
		}
		for p := range a.Prefixes {
			named[p] = true
		}
	}
	var gap []string
	for _, p := range r.stalePrefixes() {
		if !named[p] {
			gap = append(gap, p)
		}
	}
	return gap
}

// stalePrefixes are the planted objects' partitions, as audit records
// name them.
func (r *rig) stalePrefixes() []string {
	old := r.staleDate()
	return []string{
		"cab_index/date=" + old, "cabs/date=" + old, "ihv_driver/date=" + old, "oem_driver/date=" + old,
		"_hdc/manifests/ihv_driver/date=" + old, "_hdc/cabstate/ihv_driver/date=" + old,
		"_hdc/commits/ihv_driver/date=" + old, "_hdc/quarantine/ihv_driver/date=" + old,
	}
}

// staleDate is the planted objects' date.
// staleLeft returns the keys of the lake dated on the planted stale date.
func (r *rig) staleLeft(lake string) []string {
	var left []string
	for key := range readLake(r.t, lake).objects {
		if strings.Contains(key, "date="+r.staleDate()) {
			left = append(left, key)
		}
	}
	return left
}

func (r *rig) staleDate() string {
	return strings.TrimPrefix(filepath.Base(filepath.Dir(r.firstStale)), "date=")
}

// head shortens a list for a message.
func head(s []string) string {
	if len(s) > 5 {
		return fmt.Sprintf("%v and %d more", s[:5], len(s)-5)
	}
	return fmt.Sprint(s)
}
