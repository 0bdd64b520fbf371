// Package miniotest runs a real MinIO server on 127.0.0.1 for tests of the
// S3 sink and of anything that writes through it.
//
// The minio binary is looked up in $HDC_MINIO_BIN, on PATH, and in
// $(go env GOBIN) or $(go env GOPATH)/bin; scripts/install-minio.sh installs
// the pinned version. When it is missing, tests are skipped, except under
// CI=true, where they fail: S3 tests must not pass silently in CI.
//
// This package never reads or sets MINIO_* variables in its own process:
// MinIO treats every MINIO_* variable as its configuration, so the child's
// settings (root credentials) are passed in the child's environment only,
// and stray MINIO_* variables of the parent are not passed on.
//
// Typical use, one server per test binary:
//
//	func TestMain(m *testing.M) { miniotest.Main(m) }
//
//	func TestX(t *testing.T) {
//		srv := miniotest.Shared(t)
//		store := srv.NewStore(t, srv.NewBucket(t), "prefix")
//		...
//	}
//
// Without Main, Shared starts a server per test, which is slower but
// equally correct. Start always gives the caller a server of its own.
package miniotest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BinEnv names the variable that may point at the minio binary. It is
// deliberately not MINIO_*: MinIO would read that as its own setting.
const BinEnv = "HDC_MINIO_BIN"

// Region is the region the server is addressed with.
const Region = "us-east-1"

const (
	installHint  = "install it with scripts/install-minio.sh (go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c, about 150 s once) or set " + BinEnv
	readyTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
)

// Server is a running MinIO server with a temporary data folder.
type Server struct {
	// Endpoint is the S3 API base URL, such as "http://127.0.0.1:40123".
	Endpoint string
	// AccessKey and SecretKey are the root credentials, random per server.
	AccessKey string
	SecretKey string

	dir  string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // the process's exit status, set before done closes

	stopOnce sync.Once
}

// Start starts a MinIO server for t and stops it, removing its data, when
// t and its subtests finish. If the binary is missing it skips t, or fails
// it when CI=true.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := requireBinary(t)
	srv, err := start(bin)
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("miniotest: %v", err)
		}
	})
	return srv
}

// shared is the server of the test binary, managed by Main.
var shared struct {
	sync.Mutex
	inMain bool
	srv    *Server
	err    error
}

// Main runs the tests of a package with one shared server, started on the
// first call to Shared, and stops it afterwards. Call it from TestMain; it
// exits the process with the tests' status.
func Main(m *testing.M) {
	shared.Lock()
	shared.inMain = true
	shared.Unlock()

	code := m.Run()

	shared.Lock()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "miniotest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	shared.Unlock()
	os.Exit(code)
}

// Shared returns the test binary's shared server, starting it on first use,
// when the package's TestMain calls Main; otherwise it behaves like Start.
// Tests on a shared server must isolate themselves, with NewBucket or a
// unique prefix.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.Lock()
	inMain := shared.inMain
	shared.Unlock()
	if !inMain {
		return Start(t)
	}
	bin := requireBinary(t) // may skip: not under the lock

	shared.Lock()
	defer shared.Unlock()
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = start(bin)
	}
	if shared.err != nil {
		t.Fatalf("miniotest: shared server: %v", shared.err)
	}
	select {
	case <-shared.srv.done:
		t.Fatalf("miniotest: shared server exited: %v\n%s", shared.srv.err, shared.srv.logs.tail())
	default:
	}
	return shared.srv
}

// requireBinary returns the minio binary's path, or skips t (fails it when
// CI=true) if there is none.
func requireBinary(t testing.TB) string {
	t.Helper()
	bin, err := FindBinary()
	if err == nil {
		return bin
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("miniotest: %v; S3 tests must run in CI: %s", err, installHint)
	}
	t.Skipf("miniotest: %v; %s", err, installHint)
	return ""
}

// FindBinary looks for the minio binary in $HDC_MINIO_BIN, on PATH, and in
// the go command's install folder.
func FindBinary() (string, error) {
	if p := os.Getenv(BinEnv); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("%s=%q is not an executable file", BinEnv, p)
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	for _, dir := range goBinDirs() {
		if p := filepath.Join(dir, "minio"); isExecutable(p) {
			return p, nil
		}
	}
	return "", errors.New("minio binary not found on PATH or in the Go bin folder")
}

// goBinDirs returns $(go env GOBIN) and $(go env GOPATH)/bin.
func goBinDirs() []string {
	out, err := exec.Command("go", "env", "-json", "GOBIN", "GOPATH").Output()
	var env struct{ GOBIN, GOPATH string }
	if err != nil || json.Unmarshal(out, &env) != nil {
		if home, err := os.UserHomeDir(); err == nil {
			return []string{filepath.Join(home, "go", "bin")}
		}
		return nil
	}
	var dirs []string
	if env.GOBIN != "" {
		dirs = append(dirs, env.GOBIN)
	}
	for _, p := range filepath.SplitList(env.GOPATH) {
		dirs = append(dirs, filepath.Join(p, "bin"))
	}
	return dirs
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// start launches minio, retrying on a lost port race, and waits until it
// is live.
func start(bin string) (*Server, error) {
	var errs []error
	for range 3 {
		srv, err := launch(bin)
		if err == nil {
			return srv, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func launch(bin string) (*Server, error) {
	dir, err := os.MkdirTemp("", "miniotest-")
	if err != nil {
		return nil, err
	}
	apiAddr, err1 := freeAddr()
	consoleAddr, err2 := freeAddr()
	if err := errors.Join(err1, err2); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}

	srv := &Server{
		Endpoint:  "http://" + apiAddr,
		AccessKey: "hdc" + randomHex(8),
		SecretKey: randomHex(20),
		dir:       dir,
		logs:      &syncBuffer{},
		done:      make(chan struct{}),
	}
	cmd := exec.Command(bin, "server", filepath.Join(dir, "data"),
		"--address", apiAddr,
		"--console-address", consoleAddr,
		"--certs-dir", filepath.Join(dir, "certs"),
		"--quiet",
	)
	cmd.Env = append(parentEnv(),
		"MINIO_ROOT_USER="+srv.AccessKey,
		"MINIO_ROOT_PASSWORD="+srv.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout = srv.logs
	cmd.Stderr = srv.logs
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	srv.cmd = cmd
	go func() {
		srv.err = cmd.Wait()
		close(srv.done)
	}()

	if err := srv.waitReady(); err != nil {
		logs := srv.logs.tail()
		_ = srv.Stop()
		return nil, fmt.Errorf("%w\nminio output:\n%s", err, logs)
	}
	return srv, nil
}

// parentEnv is this process's environment without MINIO_* variables.
func parentEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitReady polls the liveness endpoint until it answers 200.
func (s *Server) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("minio exited during startup: %v", s.err)
		default:
		}
		resp, err := client.Get(s.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("minio not live at %s after %v", s.Endpoint, readyTimeout)
}

// Stop ends the server (SIGTERM, then SIGKILL after 10 s) and removes its
// data folder. It is safe to call more than once.
func (s *Server) Stop() error {
	var err error
	s.stopOnce.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(stopTimeout):
				_ = s.cmd.Process.Kill()
				<-s.done
			}
		}
		if rmErr := os.RemoveAll(s.dir); rmErr != nil {
			err = fmt.Errorf("remove minio data: %w", rmErr)
		}
	})
	return err
}

// Logs returns the tail of the server's output, for failure messages.
func (s *Server) Logs() string { return s.logs.tail() }

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

// syncBuffer collects process output safely across goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 { // keep memory bounded; the tail matters
		b.buf.Next(b.buf.Len() / 2)
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > 4096 {
		s = "…" + s[len(s)-4096:]
	}
	return s
}
