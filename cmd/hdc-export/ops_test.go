package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/devcenter/emulator"
)

// standalone serves a fresh emulator and returns the environment that
// points the CLI at it and at lake. Cab mirroring is off: the configs'
// allowlists do not hold the emulator's address, so every cab would be
// refused and the cycle partial (cabs_test.go runs the mirror).
func standalone(t *testing.T, lake string) map[string]string {
	t.Helper()
	srv := httptest.NewServer(emulator.New(emulator.Options{RowsPerDay: 20}).Handler())
	t.Cleanup(srv.Close)
	return map[string]string{
		"HDC_API_URL": srv.URL, "HDC_TOKEN_URL": srv.URL + "/demo-tenant/oauth2/token",
		"HDC_CLIENT_SECRET": "demo-secret", "HDC_SINK_URL": lake, "HDC_CABS": "off",
	}
}

// buildBinary builds the hdc-export binary into dir and returns its path.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "hdc-export")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func runCLI(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := run(t.Context(), args, &out, &errOut, env(vars))
	return code, out.String(), errOut.String()
}

func TestApplyPlansCreatesThenNothing(t *testing.T) {
	vars := standalone(t, t.TempDir())
	cfg := "../../configs/reports.yaml"
	code, out, stderr := runCLI(t, vars, "apply", "--dry-run", "--config", cfg)
	if code != 0 || strings.Count(out, "\n+ ") != 3 || !strings.HasPrefix(out, "+ ") || !strings.Contains(out, "4 changes planned") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, _ = runCLI(t, vars, "apply", "--dry-run", "--config", cfg); !strings.Contains(out, "4 changes planned") {
		t.Fatalf("a dry run changed something: %s", out)
	}
	if code, out, stderr = runCLI(t, vars, "apply", "--config", cfg); code != 0 || !strings.Contains(out, "4 changes applied") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, _ = runCLI(t, vars, "apply", "--config", cfg); code != 0 || !strings.Contains(out, "no changes") || strings.Contains(out, "+ ") {
		t.Fatalf("second apply: exit %d\n%s", code, out)
	}
}

func treeHashes(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if strings.HasPrefix(rel, "_hdc/lease/") {
			return nil // who held the lease differs by design
		}
		b, _ := os.ReadFile(path)
		sum := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	return out
}

// TestConcurrentRunsThenOneMore: two runs started at the same moment on
// one lake, then one more, leave exactly what one clean run leaves.
func TestConcurrentRunsThenOneMore(t *testing.T) {
	lake := t.TempDir()
	vars := standalone(t, lake)
	cfg := "../../configs/demo.yaml"
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _, _ = runCLI(t, vars, "run", "--config", cfg)
		}()
	}
	wg.Wait()
	if !(codes[0] == exitOK && codes[1] == exitLeaseHeld) && !(codes[1] == exitOK && codes[0] == exitLeaseHeld) {
		t.Logf("exit codes %v (both may succeed if one finished before the other began)", codes)
	}
	for _, c := range codes {
		if c != exitOK && c != exitLeaseHeld && c != exitNothingNew {
			t.Fatalf("exit codes %v", codes)
		}
	}
	if code, _, stderr := runCLI(t, vars, "run", "--config", cfg); code != exitOK && code != exitNothingNew {
		t.Fatalf("third run exit %d: %s", code, stderr)
	}
	clean := t.TempDir()
	vars["HDC_SINK_URL"] = clean
	if code, _, stderr := runCLI(t, vars, "run", "--config", cfg); code != exitOK {
		t.Fatalf("clean run exit %d: %s", code, stderr)
	}
	got, want := treeHashes(t, lake), treeHashes(t, clean)
	if len(got) != len(want) {
		t.Fatalf("%d objects, a clean run has %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s differs from a clean run's", k)
		}
	}
}

func TestExitCodes(t *testing.T) {
	vars := standalone(t, t.TempDir())
	cfg := "../../configs/demo.yaml"
	if code, _, stderr := runCLI(t, vars, "run", "--config", cfg); code != exitOK {
		t.Fatalf("first run exit %d: %s", code, stderr)
	}
	if code, _, _ := runCLI(t, vars, "run", "--config", cfg, "--detailed-exitcode"); code != exitNothingNew {
		t.Errorf("second run exit %d, want %d (nothing new)", code, exitNothingNew)
	}
	vars["HDC_API_URL"] = "http://127.0.0.1:1"
	vars["HDC_TOKEN_URL"] = "http://127.0.0.1:1/t/oauth2/token"
	demo, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	templates, _ := filepath.Abs("../../configs/templates")
	body := strings.Replace(string(demo), "devcenter:\n", "devcenter:\n  max_attempts: 1\n", 1)
	body = strings.ReplaceAll(body, "template_file: templates/", "template_file: "+templates+"/")
	fast := filepath.Join(t.TempDir(), "fast-fail.yaml")
	if err := os.WriteFile(fast, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI(t, vars, "run", "--config", fast); code != exitFailed {
		t.Errorf("unreachable API exit %d, want %d", code, exitFailed)
	}
}

// TestServe builds the binary, serves, checks /healthz and /metrics, and
// sends SIGTERM: the process must exit 0 within seconds.
func TestServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t, t.TempDir())
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--config", "../../configs/demo.yaml", "--listen", addr)
	cmd.Env = append(os.Environ(), "HDC_SINK_URL="+t.TempDir(), "HDC_CALLBACK_SECRET=cb-secret")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// serve logs JSON by default: every stderr line, the cron scheduler's
	// and the HTTP server's included, must be a JSON object.
	logs := make(chan string, 1000)
	var notJSON []string // written by the reader until readDone
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			if !json.Valid(sc.Bytes()) {
				notJSON = append(notJSON, sc.Text())
			}
			select {
			case logs <- sc.Text():
			default:
			}
		}
		close(logs)
	}()
	defer cmd.Process.Kill()
	var health *http.Response
	for range 100 {
		var err error
		if health, err = http.Get("http://" + addr + "/healthz"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if health == nil || health.StatusCode != 200 {
		t.Fatalf("healthz: %v", health)
	}
	health.Body.Close()
	// Wait for the start-up cycle, then read the metrics.
	deadline := time.Now().Add(30 * time.Second)
	for line := range logs {
		if strings.Contains(line, "cycle done") || time.Now().After(deadline) {
			break
		}
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := new(strings.Builder)
	_, _ = bufio.NewReader(resp.Body).WriteTo(body)
	resp.Body.Close()
	for _, want := range []string{"hdc_runs_ingested_total", "hdc_rows_written_total", "hdc_last_success_timestamp_seconds", "hdc_oldest_object_date_timestamp_seconds",
		`hdc_cycles_total{outcome="ok"} 1`, "hdc_build_info{goversion=", "go_goroutines ", "process_resident_memory_bytes ", `hdc_cabs_total{outcome="mirrored",reason="other"}`} {
		if !strings.Contains(body.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
	if strings.Contains(body.String(), "demo-secret") || strings.Contains(body.String(), "cb-secret") {
		t.Error("metrics leak a secret")
	}
	if resp, err := http.Post("http://"+addr+"/callback/wrong", "", nil); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("callback with a wrong secret: %v %v", resp, err)
	}
	if resp, err := http.Get("http://" + addr + "/callback/cb-secret?report=ihv_driver"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("callback by GET: %v %v", resp, err)
	}
	if resp, err := http.Post("http://"+addr+"/callback/cb-secret?report=ihv_driver", "", nil); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Errorf("callback: %v %v", resp, err)
	}
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { <-readDone; done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %s to stop", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not exit within 15s of SIGTERM")
	}
	if len(notJSON) > 0 {
		t.Errorf("serve wrote %d stderr lines that are not JSON, first %q", len(notJSON), notJSON[0])
	}
}

// TestPurgeCheckDryRunAndPurge: a stale partition planted in a lake makes
// `purge --check` exit 1 naming its prefix (never its key); `--dry-run`
// lists it and deletes nothing; `purge` removes it; `--check` then passes.
func TestPurgeCheckDryRunAndPurge(t *testing.T) {
	lake := t.TempDir()
	vars := map[string]string{"HDC_SINK_URL": lake}
	cfg := "../../configs/demo.yaml"
	stale := filepath.Join(lake, "ihv_driver", "date=2020-01-01", "part-00000.parquet")
	fresh := filepath.Join(lake, "ihv_driver", "date="+time.Now().UTC().Format(time.DateOnly), "part-00000.parquet")
	for _, p := range []string{stale, fresh} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr := runCLI(t, vars, "purge", "--check", "--config", cfg)
	if code != exitStale || out != "" || strings.Contains(stderr, "part-00000.parquet") || !strings.Contains(stderr, "1 items older than the window") ||
		!strings.Contains(stderr, "outside the window: ihv_driver/date=2020-01-01 (1)") {
		t.Fatalf("check: exit %d, out %q\n%s", code, out, stderr)
	}
	if code, out, _ = runCLI(t, vars, "purge", "--dry-run", "--config", cfg); code != 0 || !strings.Contains(out, "date=2020-01-01") {
		t.Fatalf("dry run: exit %d, out %q", code, out)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatal("dry run deleted the stale partition")
	}
	if code, _, stderr := runCLI(t, vars, "purge", "--config", cfg); code != 0 {
		t.Fatalf("purge: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Error("stale partition survived the purge")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("purge deleted an in-window partition")
	}
	audit, _ := filepath.Glob(filepath.Join(lake, "_hdc", "audit", "purge", "*.json"))
	if len(audit) != 1 {
		t.Errorf("audit records: %v", audit)
	}
	if code, out, _ := runCLI(t, vars, "purge", "--check", "--config", cfg); code != 0 || out != "" {
		t.Errorf("check after purge: exit %d, out %q", code, out)
	}
}
