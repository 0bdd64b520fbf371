package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/devcenter/emulator"
	"github.com/hdc-export/hdc-export/pipeline"
)

// cabRig is the CLI against a standalone emulator whose address is on the
// cab allowlist, with small cabs and no byte budget. Its emulator switches
// the first cab the mirror asks for (see onFirstCab).
type cabRig struct {
	em    *emulator.Emulator
	vars  map[string]string
	cfg   string
	lake  string
	first atomic.Value // string: the CabIdHash of the first cab asked for
	blobs atomic.Int64 // cab blob requests
	// onFirstCab, if set, gives the cab switches to set when the first cab
	// is asked for (before the emulator answers).
	onFirstCab func(hash string) emulator.CabFaults
	// onBlob, if set, is called with the running count of blob requests.
	onBlob func(n int64)
}

func newCabRig(t *testing.T) *cabRig {
	t.Helper()
	r := &cabRig{em: emulator.New(emulator.Options{RowsPerDay: 20, CabSizeMin: 1 << 10, CabSizeMax: 8 << 10}), lake: t.TempDir()}
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case strings.HasSuffix(req.URL.Path, "/cabdownload"):
			once.Do(func() {
				hash := req.URL.Query().Get("cabIdHash")
				r.first.Store(hash)
				if r.onFirstCab != nil {
					r.em.SetCabFaults(r.onFirstCab(hash))
				}
			})
		case strings.HasPrefix(req.URL.Path, "/blobs/cabs/"):
			if n := r.blobs.Add(1); r.onBlob != nil {
				r.onBlob(n)
			}
		}
		r.em.Handler().ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.vars = map[string]string{
		"HDC_API_URL": srv.URL, "HDC_TOKEN_URL": srv.URL + "/demo-tenant/oauth2/token",
		"HDC_CLIENT_SECRET": "demo-secret", "HDC_SINK_URL": r.lake,
	}
	demo, err := os.ReadFile("../../configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	templates, _ := filepath.Abs("../../configs/templates")
	body := strings.ReplaceAll(string(demo), "template_file: templates/", "template_file: "+templates+"/")
	for old, repl := range map[string]string{
		`allow_hosts: [".blob.core.windows.net"]`: `allow_hosts: ["` + srv.URL + `"]`,
		"byte_budget: 1073741824":                 "byte_budget: 0",
	} {
		if !strings.Contains(body, old) {
			t.Fatalf("demo.yaml no longer holds %q", old)
		}
		body = strings.Replace(body, old, repl, 1)
	}
	r.cfg = filepath.Join(t.TempDir(), "cabs.yaml")
	if err := os.WriteFile(r.cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

// run runs one cycle and returns its exit code, summary and stderr.
func (r *cabRig) run(t *testing.T, ctx context.Context) (int, pipeline.Summary, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := run(ctx, []string{"run", "--config", r.cfg}, &out, &errOut, env(r.vars))
	var sum pipeline.Summary
	if err := json.Unmarshal([]byte(out.String()), &sum); err != nil {
		t.Fatalf("exit %d, summary %q: %v\n%s", code, out.String(), err, errOut.String())
	}
	return code, sum, errOut.String()
}

// storedCabs counts the cabs in the lake.
func (r *cabRig) storedCabs(t *testing.T) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(r.lake, "cabs", "date=*", "*.cab"))
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}

// TestExitOneRefusedCab: one refused cab among many makes the run partial
// (exit 3) while every other cab lands in that run; the next run does not
// ask for it again and is not partial.
func TestExitOneRefusedCab(t *testing.T) {
	r := newCabRig(t)
	r.onFirstCab = func(hash string) emulator.CabFaults { return emulator.CabFaults{OffAllowlist: []string{hash}} }
	code, sum, stderr := r.run(t, t.Context())
	if code != exitPartial {
		t.Fatalf("exit %d, want %d (partial)\n%s", code, exitPartial, stderr)
	}
	if sum.CabsRefused != 1 || sum.CabsMirrored < 50 || sum.CabsDeferred+sum.CabsFailed != 0 ||
		sum.CabReasons["refused"]["host_not_allowed"] != 1 || r.storedCabs(t) != sum.CabsMirrored {
		t.Errorf("summary %+v, %d cabs stored; want 1 refused, the rest mirrored", sum, r.storedCabs(t))
	}
	if !strings.Contains(stderr, "refused 1 (host_not_allowed 1)") {
		t.Errorf("the human summary does not show the refusal:\n%s", stderr)
	}
	hash := r.first.Load().(string)
	if links, blobs := r.em.CabRequests(hash); links != 1 || blobs != 0 {
		t.Fatalf("refused cab: %d link, %d blob requests", links, blobs)
	}
	code, sum, stderr = r.run(t, t.Context())
	if code == exitPartial || code == exitFailed || code == exitInterrupted {
		t.Errorf("second run exit %d: the remembered refusal is not new\n%s", code, stderr)
	}
	if links, _ := r.em.CabRequests(hash); links != 1 {
		t.Errorf("the second run asked for the refused cab again")
	}
	if sum.CabsMirrored != 0 || sum.CabReasons["refused_earlier"]["host_not_allowed"] != 1 {
		t.Errorf("second run summary %+v: want nothing left to mirror, the refusal remembered", sum)
	}
}

// TestExitCorruptCab: a cab whose bytes never match their MD5 fails with
// its reason and makes the run partial (exit 3), the others land; one that
// is corrupt only on its first download heals within the run (exit 0).
func TestExitCorruptCab(t *testing.T) {
	for _, tc := range []struct {
		name     string
		attempts int
		code     int
		failed   int
	}{
		{"permanent", 0, exitPartial, 1},
		{"first attempt", 1, exitOK, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCabRig(t)
			r.onFirstCab = func(hash string) emulator.CabFaults {
				return emulator.CabFaults{Corrupt: []string{hash}, CorruptAttempts: tc.attempts}
			}
			code, sum, stderr := r.run(t, t.Context())
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, stderr)
			}
			if sum.CabsFailed != tc.failed || sum.CabReasons["failed"]["md5_mismatch"] != tc.failed ||
				sum.CabReasons["retried"]["md5_mismatch"] == 0 || sum.CabsDeferred != 0 || r.storedCabs(t) != sum.CabsMirrored {
				t.Errorf("summary %+v", sum)
			}
		})
	}
}

// TestExitInterruptedMirror: a cycle cancelled (as by SIGINT) in the
// middle of the cab mirror never exits 0; the next run finishes the work.
func TestExitInterruptedMirror(t *testing.T) {
	r := newCabRig(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r.onBlob = func(n int64) {
		if n == 20 {
			cancel()
		}
	}
	code, sum, stderr := r.run(t, ctx)
	if code != exitInterrupted || !sum.Interrupted || sum.CabsDeferred == 0 {
		t.Fatalf("interrupted run: exit %d, summary %+v; want %d\n%s", code, sum, exitInterrupted, stderr)
	}
	code, sum, stderr = r.run(t, t.Context())
	if code != exitOK || sum.CabsMirrored == 0 || sum.CabsDeferred != 0 {
		t.Errorf("next run: exit %d, summary %+v\n%s", code, sum, stderr)
	}
}

// TestExitSignalDuringMirror: the binary, sent SIGINT while it mirrors
// cabs, exits 130 (interrupted), not 0.
func TestExitSignalDuringMirror(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t, t.TempDir())
	r := newCabRig(t)
	var proc atomic.Pointer[os.Process]
	r.onBlob = func(n int64) {
		if p := proc.Load(); n == 20 && p != nil {
			_ = p.Signal(os.Interrupt)
		}
	}
	cmd := exec.Command(bin, "run", "--config", r.cfg)
	cmd.Env = os.Environ()
	for k, v := range r.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	proc.Store(cmd.Process)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("run did not exit within 2 minutes")
	}
	if r.blobs.Load() < 20 {
		t.Fatalf("the run ended after %d cab downloads, before the signal:\n%s", r.blobs.Load(), stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("exit %d after SIGINT during the mirror, want %d\n%s", code, exitInterrupted, stderr.String())
	}
}
