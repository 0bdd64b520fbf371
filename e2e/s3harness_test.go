package e2e

// The S3 side of the harness: a MinIO server per test, the AWS CLI as the
// independent S3 client, `hdc-export doctor`, and a reverse proxy that
// makes MinIO look like a store without conditional writes.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// s3Region is the region every S3 client addresses MinIO with.
	s3Region = "us-east-1"
	// minioBinEnv may name the minio binary. It is not MINIO_*: MinIO would
	// read that as its own configuration.
	minioBinEnv  = "HDC_MINIO_BIN"
	minioInstall = "bash scripts/install-minio.sh (go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c, about 150 s once) or set " + minioBinEnv
	awsInstall   = "pip install awscli (the AWS CLI v1)"
)

// requireTool fails t under CI=true (S3 tests must not pass silently in CI)
// and skips it elsewhere.
func requireTool(t *testing.T, err error, hint string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%v; S3 tests must run in CI: %s", err, hint)
	}
	t.Skipf("%v; install it: %s", err, hint)
}

// minioBinary finds the minio binary: $HDC_MINIO_BIN, PATH, then the go
// command's install folders.
func minioBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(minioBinEnv); p != "" {
		if isExecutable(p) {
			return p
		}
		requireTool(t, fmt.Errorf("%s=%q is not an executable file", minioBinEnv, p), minioInstall)
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	var goenv struct{ GOBIN, GOPATH string }
	if out, err := exec.Command("go", "env", "-json", "GOBIN", "GOPATH").Output(); err == nil && json.Unmarshal(out, &goenv) == nil {
		var dirs []string
		if goenv.GOBIN != "" {
			dirs = append(dirs, goenv.GOBIN)
		}
		for _, p := range filepath.SplitList(goenv.GOPATH) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
		for _, d := range dirs {
			if p := filepath.Join(d, "minio"); isExecutable(p) {
				return p
			}
		}
	}
	requireTool(t, errors.New("minio binary not found ($HDC_MINIO_BIN, PATH, $(go env GOPATH)/bin)"), minioInstall)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// awsBinary finds the AWS CLI.
func awsBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("aws")
	if err != nil {
		requireTool(t, fmt.Errorf("the AWS CLI (aws) is not on PATH: %w", err), awsInstall)
	}
	return p
}

// minioServer is a MinIO server of one test, with a temporary data folder.
type minioServer struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	aws       string // the AWS CLI
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// startMinIO starts a MinIO server on free loopback ports, waits until it
// is live, and kills it when the test ends. It also requires the AWS CLI,
// the independent client every S3 test uses.
func startMinIO(t *testing.T) *minioServer {
	t.Helper()
	bin := minioBinary(t)
	awsCLI := awsBinary(t)
	var lastErr error
	for range 3 {
		apiAddr, err1 := freeAddr()
		consoleAddr, err2 := freeAddr()
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		srv := &minioServer{
			Endpoint:  "http://" + apiAddr,
			AccessKey: "hdce2e" + randomHex(6),
			SecretKey: randomHex(20),
			aws:       awsCLI,
		}
		dir := t.TempDir()
		cmd := exec.Command(bin, "server", filepath.Join(dir, "data"),
			"--address", apiAddr, "--console-address", consoleAddr, "--quiet")
		// The root credentials live in the child's environment only, and the
		// parent's MINIO_* variables are not passed on (childEnv).
		cmd.Env = childEnv([]string{"MINIO_ROOT_USER=" + srv.AccessKey, "MINIO_ROOT_PASSWORD=" + srv.SecretKey})
		cmd.Dir = dir
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = serverProcAttr()
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		exited := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		stop := func() {
			select {
			case <-exited:
			default:
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		if lastErr = waitLive(srv.Endpoint, exited); lastErr == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("minio %s output:\n%s", apiAddr, tail(out.String(), 4000))
				}
			})
			return srv
		}
		stop()
		lastErr = fmt.Errorf("%w (exit: %v)\n%s", lastErr, waitErr, tail(out.String(), 4000))
	}
	t.Fatalf("minio did not start: %v", lastErr)
	return nil
}

// waitLive polls MinIO's liveness endpoint until it answers 200.
func waitLive(endpoint string, exited <-chan struct{}) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health: %s", resp.Status)
		}
		select {
		case <-exited:
			return fmt.Errorf("minio exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio not live after 30s: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// env is the environment of a child that talks S3 to this server (the AWS
// CLI, hdc-export): the parent's without HDC_*, MINIO_* and AWS_* (this
// machine's AWS_CA_BUNDLE makes the Go SDK refuse custom HTTP clients, and
// a stray profile or key must not leak in), plus the server's credentials,
// then the overrides.
func (s *minioServer) env(overrides ...string) []string {
	var env []string
	for _, kv := range childEnv(nil) {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"AWS_ACCESS_KEY_ID="+s.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+s.SecretKey,
		"AWS_REGION="+s3Region,
		"AWS_DEFAULT_REGION="+s3Region,
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	)
	return append(env, overrides...)
}

// awsCLI runs `aws --endpoint-url <server> args...` and returns its stdout.
func (s *minioServer) awsCLI(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.aws, append([]string{"--endpoint-url", s.Endpoint}, args...)...)
	cmd.Env = s.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("aws %s: %v\n%s", strings.Join(args, " "), err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes(), nil
}

// mustAWS is awsCLI that fails the test on error.
func (s *minioServer) mustAWS(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := s.awsCLI(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// createBucket makes a fresh bucket with the AWS CLI.
func (s *minioServer) createBucket(t *testing.T) string {
	t.Helper()
	bucket := "hdc-e2e-" + randomHex(6)
	s.mustAWS(t, "s3", "mb", "s3://"+bucket)
	return bucket
}

// s3Object is one entry of `aws s3api list-objects-v2`.
type s3Object struct {
	Key          string
	ETag         string
	Size         int64
	LastModified string
}

// listObjects lists every object of the bucket under prefix with the AWS
// CLI (which follows continuation tokens itself), in key order.
func (s *minioServer) listObjects(t *testing.T, bucket, prefix string) []s3Object {
	t.Helper()
	args := []string{"s3api", "list-objects-v2", "--bucket", bucket, "--output", "json"}
	if prefix != "" {
		args = append(args, "--prefix", prefix)
	}
	var out struct{ Contents []s3Object }
	if raw := s.mustAWS(t, args...); len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("list-objects-v2 output: %v\n%s", err, raw)
		}
	}
	slices.SortFunc(out.Contents, func(a, b s3Object) int { return strings.Compare(a.Key, b.Key) })
	return out.Contents
}

// pendingUploads lists the bucket's incomplete multipart uploads.
func (s *minioServer) pendingUploads(t *testing.T, bucket string) []string {
	t.Helper()
	raw := s.mustAWS(t, "s3api", "list-multipart-uploads", "--bucket", bucket, "--output", "json")
	var out struct {
		Uploads []struct{ Key, UploadId string }
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("list-multipart-uploads output: %v\n%s", err, raw)
		}
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, u.Key)
	}
	return keys
}

// s3ExportEnv is the environment of `hdc-export` exporting the emulator's
// demo account into s3://bucket/prefix on the server at endpoint (the
// server itself, or a proxy in front of it).
func (s *minioServer) s3ExportEnv(emu *emulator, endpoint, bucket, prefix string) []string {
	return s.env(append(emu.env(),
		"HDC_SINK_URL=s3://"+bucket+"/"+prefix,
		"HDC_S3_ENDPOINT="+endpoint,
		"HDC_S3_REGION="+s3Region,
	)...)
}

// minioConfig is the documented MinIO example config.
func minioConfig(t *testing.T) string {
	return filepath.Join(repoRoot(t), "configs", "minio.yaml")
}

// doctorCheck is one line of `hdc-export doctor`.
type doctorCheck struct{ status, name, detail string }

// doctorResult is one `hdc-export doctor` invocation.
type doctorResult struct {
	checks []doctorCheck
	exit   int
	stdout string
	stderr string
}

func (r doctorResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.exit, r.stdout, tail(r.stderr, 2000))
}

// find returns the checks whose name starts with prefix and contains word.
func (r doctorResult) find(prefix, word string) []doctorCheck {
	var out []doctorCheck
	for _, c := range r.checks {
		if strings.HasPrefix(c.name, prefix) && strings.Contains(c.name, word) {
			out = append(out, c)
		}
	}
	return out
}

// doctorLine is "<status>  <name>  <detail>": columns apart by at least two
// spaces (a tabwriter), names with single spaces.
var doctorLine = regexp.MustCompile(`^(ok|missing|skip|FAIL) {2,}(\S+(?: \S+)*)(?: {2,}(.*))?$`)

// runDoctor runs `hdc-export doctor --config minio.yaml args...` with env.
// It fails the test if the command crashed, could not start, or printed a
// line that is not a check.
func runDoctor(t *testing.T, env []string, args ...string) doctorResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hdcBinary(t), append([]string{"doctor", "--config", minioConfig(t)}, args...)...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := doctorResult{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.Exited():
		res.exit = exitErr.ExitCode()
	default:
		t.Fatalf("hdc-export doctor did not finish: %v\n%s", err, res)
	}
	if strings.Contains(res.stderr, "panic:") || strings.Contains(res.stderr, "goroutine ") {
		t.Fatalf("hdc-export doctor crashed:\n%s", res)
	}
	for _, line := range strings.Split(strings.TrimRight(res.stdout, "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		m := doctorLine.FindStringSubmatch(strings.TrimRight(line, " "))
		if m == nil {
			t.Errorf("doctor printed a line that is not `ok|missing|skip|FAIL  <name>  <detail>`: %q", line)
			continue
		}
		res.checks = append(res.checks, doctorCheck{m[1], m[2], m[3]})
	}
	if len(res.checks) == 0 {
		t.Fatalf("hdc-export doctor printed no checks:\n%s", res)
	}
	t.Logf("hdc-export doctor %s took %s (exit %d):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), res.exit, strings.TrimRight(res.stdout, "\n"))
	return res
}

// condProxy is a reverse proxy in front of MinIO that changes what happens
// to create-only puts (requests carrying If-None-Match), to stand in for
// S3-compatible stores without conditional writes:
//
//   - condStrip forwards them without the header, like a store that ignores
//     it. The header is part of the client's SigV4 signature (the Go SDK
//     signs every header but a few), so the proxy re-signs the request with
//     the server's secret: same date, scope and payload hash, the header
//     dropped from SignedHeaders. It first checks that its own signer
//     reproduces the client's signature of the untouched request, so a bug
//     in the test's signer reads as one, not as an hdc-export failure.
//   - cond501 answers 501 NotImplemented, as AWS does for a header it does
//     not implement. Nothing is forwarded, so nothing needs re-signing.
//
// Every other request, and every request under condPass, is forwarded
// untouched (the Host header is kept, so the client's signature stays
// valid). The bodies of PutBucketLifecycleConfiguration requests are
// recorded, to see what the client asked for whatever the store keeps.
type condProxy struct {
	mode   string // condStrip or cond501
	secret string
	URL    string

	mu        sync.Mutex
	seen      int      // requests that carried If-None-Match
	statuses  []int    // MinIO's answers to the stripped requests
	errs      []string // the proxy's own failures
	lifecycle [][]byte // bodies of PutBucketLifecycleConfiguration requests
}

const (
	condPass  = "pass" // forward everything untouched (and record)
	condStrip = "strip"
	cond501   = "501"
)

func startCondProxy(t *testing.T, srv *minioServer, mode string) *condProxy {
	t.Helper()
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &condProxy{mode: mode, secret: srv.SecretKey}
	rp := httputil.NewSingleHostReverseProxy(target) // its Director keeps req.Host
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.URL.Query()["lifecycle"]; ok && r.Method == http.MethodPut {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				p.fail(fmt.Sprintf("read lifecycle body: %v", err))
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			p.mu.Lock()
			p.lifecycle = append(p.lifecycle, body)
			p.mu.Unlock()
		}
		if p.mode == condPass || r.Header.Get("If-None-Match") == "" {
			rp.ServeHTTP(w, r)
			return
		}
		p.mu.Lock()
		p.seen++
		p.mu.Unlock()
		switch p.mode {
		case cond501:
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotImplemented)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message><Header>If-None-Match</Header><Resource>%s</Resource><RequestId>e2e-proxy</RequestId></Error>`, r.URL.Path)
		case condStrip:
			if err := resignWithout(r, p.secret, "if-none-match"); err != nil {
				p.fail(fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, err))
				http.Error(w, "e2e proxy: "+err.Error(), http.StatusInternalServerError)
				return
			}
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			rp.ServeHTTP(rec, r)
			p.mu.Lock()
			p.statuses = append(p.statuses, rec.status)
			p.mu.Unlock()
		}
	}))
	t.Cleanup(hs.Close)
	p.URL = hs.URL
	return p
}

func (p *condProxy) fail(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, msg)
}

// lifecycleBodies returns the recorded PutBucketLifecycleConfiguration
// bodies.
func (p *condProxy) lifecycleBodies() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.lifecycle)
}

// report returns what the proxy saw.
func (p *condProxy) report() (seen int, statuses []int, errs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen, slices.Clone(p.statuses), slices.Clone(p.errs)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// sigV4Auth is a parsed "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…" Authorization header.
type sigV4Auth struct {
	credential string   // AKID/date/region/service/aws4_request
	scope      []string // date, region, service, aws4_request
	signed     []string // lower-case header names
	signature  string
}

const sigV4Algorithm = "AWS4-HMAC-SHA256"

func parseSigV4(h string) (sigV4Auth, error) {
	var a sigV4Auth
	rest, ok := strings.CutPrefix(h, sigV4Algorithm+" ")
	if !ok {
		return a, fmt.Errorf("authorization is not %s header auth: %.40q", sigV4Algorithm, h)
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			a.credential = v
			if f := strings.Split(v, "/"); len(f) == 5 {
				a.scope = f[1:]
			}
		case "SignedHeaders":
			a.signed = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		}
	}
	if len(a.scope) != 4 || len(a.signed) == 0 || a.signature == "" {
		return a, fmt.Errorf("malformed authorization header %q", h)
	}
	return a, nil
}

// sigV4Signature computes the SigV4 signature of r over the given signed
// headers, as an S3 server verifies it.
func sigV4Signature(r *http.Request, secret string, scope, signed []string) (string, error) {
	amzDate := r.Header.Get("X-Amz-Date")
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if amzDate == "" || payload == "" {
		return "", errors.New("request has no X-Amz-Date or X-Amz-Content-Sha256")
	}
	var headers strings.Builder
	for _, h := range signed {
		var v string
		switch h {
		case "host":
			v = r.Host
		case "content-length":
			v = strconv.FormatInt(r.ContentLength, 10)
		default:
			var vals []string
			for _, x := range r.Header.Values(h) {
				vals = append(vals, strings.Join(strings.Fields(x), " "))
			}
			v = strings.Join(vals, ",")
		}
		headers.WriteString(h + ":" + v + "\n")
	}
	query := r.URL.Query()
	var pairs []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range query {
			if !yield(k) {
				return
			}
		}
	}) {
		vals := slices.Clone(query[k])
		slices.Sort(vals)
		for _, v := range vals {
			pairs = append(pairs, uriEncode(k, true)+"="+uriEncode(v, true))
		}
	}
	canonical := strings.Join([]string{
		r.Method,
		uriEncode(r.URL.Path, false),
		strings.Join(pairs, "&"),
		headers.String(),
		strings.Join(signed, ";"),
		payload,
	}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	toSign := strings.Join([]string{sigV4Algorithm, amzDate, strings.Join(scope, "/"), hex.EncodeToString(sum[:])}, "\n")
	key := []byte("AWS4" + secret)
	for _, s := range scope {
		key = hmacSHA256(key, s)
	}
	return hex.EncodeToString(hmacSHA256(key, toSign)), nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// uriEncode is SigV4's URI encoding: unreserved characters stay, every
// other byte is %XX; '/' stays unless encodeSlash.
func uriEncode(s string, encodeSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// resignWithout removes a signed header from r and signs r again. It
// refuses when its signer does not reproduce the client's signature of the
// untouched request.
func resignWithout(r *http.Request, secret, header string) error {
	a, err := parseSigV4(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	orig, err := sigV4Signature(r, secret, a.scope, a.signed)
	if err != nil {
		return err
	}
	if orig != a.signature {
		return fmt.Errorf("the test's SigV4 signer does not reproduce the client's signature (signed headers %q)", a.signed)
	}
	r.Header.Del(header)
	signed := slices.DeleteFunc(slices.Clone(a.signed), func(h string) bool { return h == header })
	sig, err := sigV4Signature(r, secret, a.scope, signed)
	if err != nil {
		return err
	}
	r.Header.Set("Authorization", fmt.Sprintf("%s Credential=%s, SignedHeaders=%s, Signature=%s",
		sigV4Algorithm, a.credential, strings.Join(signed, ";"), sig))
	return nil
}
