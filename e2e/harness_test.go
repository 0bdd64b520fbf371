package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the "duckdb" database/sql driver

	"github.com/hdc-export/hdc-export/e2e/apiclient"
)

// The emulator's demo account (see `hdc-export emulator -h`) and the
// retention of configs/demo.yaml.
const (
	demoTenant    = "demo-tenant"
	demoClient    = "demo-client"
	demoSecret    = "demo-secret"
	retentionDays = 30
)

// dataset is one report dataset of configs/demo.yaml.
type dataset struct {
	name string // lake folder
	view string // Dev Center view
}

var datasets = []dataset{
	{"ihv_driver", "IHVDriver"},
	{"oem_driver", "OEMDriver"},
}

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if icebergBin != "" {
		os.RemoveAll(filepath.Dir(icebergBin))
	}
	os.Exit(code)
}

// repoRoot is the main module's folder: the parent of this test module.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.Contains(mod, []byte("module github.com/hdc-export/hdc-export\n")) {
		t.Fatalf("%s is not the hdc-export repository root (go.mod: %v)", root, err)
	}
	return root
}

// hdcBinary builds the hdc-export binary once per test process.
func hdcBinary(t testing.TB) string {
	t.Helper()
	root := repoRoot(t)
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "hdc-e2e-bin-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "hdc-export")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/hdc-export")
		cmd.Dir = root
		cmd.Env = childEnv(nil)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/hdc-export: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// childEnv is this process's environment without any HDC_* or MINIO_*
// variable, plus the overrides ("KEY=value").
func childEnv(overrides []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HDC_") || strings.HasPrefix(kv, "MINIO_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, overrides...)
}

// syncBuffer collects a child's output safely.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// emulator is a running `hdc-export emulator` process.
type emulator struct {
	URL      string
	TokenURL string
}

// client returns an independent API client for the emulator's demo account.
func (e *emulator) client() *apiclient.Client {
	return &apiclient.Client{BaseURL: e.URL, TokenURL: e.TokenURL, ClientID: demoClient, ClientSecret: demoSecret}
}

// startEmulator starts `hdc-export emulator` on a free loopback port with
// extra flags, waits until it issues tokens, and stops it when the test
// ends.
func startEmulator(t *testing.T, flags ...string) *emulator {
	t.Helper()
	bin := hdcBinary(t)
	var lastErr error
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		e := &emulator{URL: "http://" + addr, TokenURL: "http://" + addr + "/" + demoTenant + "/oauth2/token"}
		cmd := exec.Command(bin, append([]string{"emulator", "--addr", addr}, flags...)...)
		cmd.Env = childEnv(nil)
		cmd.Dir = t.TempDir()
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start emulator: %v", err)
		}
		exited := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		stop := func() {
			select {
			case <-exited:
				return
			default:
			}
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		if lastErr = waitReady(e, exited); lastErr == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("emulator %s %q output:\n%s", addr, flags, out.String())
				}
			})
			return e
		}
		stop()
		lastErr = fmt.Errorf("%w (exit: %v)\n%s", lastErr, waitErr, out.String())
	}
	t.Fatalf("emulator did not start: %v", lastErr)
	return nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls the token endpoint until it answers or the process exits.
func waitReady(e *emulator, exited <-chan struct{}) error {
	c := e.client()
	c.HTTP = &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Token(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("emulator exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("emulator not ready after 20s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// summary is the part of `hdc-export run`'s JSON summary the tests log.
type summary map[string]any

// runExport runs one `hdc-export run --config configs/demo.yaml` cycle into
// the lake folder. With a nil emulator the config's embedded emulator is
// used (no HDC_API_URL). It fails the test unless the command succeeds.
func runExport(t *testing.T, lake string, emu *emulator) summary {
	t.Helper()
	// The mirror is off: demo.yaml's allowlist does not hold the
	// emulator's address, so every cab would be refused (and the run exit
	// 3); ddl_test.go runs the mirror with the emulator allowed.
	env := append([]string{"HDC_SINK_URL=file://" + lake, "HDC_CABS=off"}, emu.env()...)
	return runExportWith(t, filepath.Join(repoRoot(t), "configs", "demo.yaml"), childEnv(env))
}

// env returns the HDC_* variables that point hdc-export at the emulator's
// demo account, or none for a nil emulator.
func (e *emulator) env() []string {
	if e == nil {
		return nil
	}
	return []string{
		"HDC_API_URL=" + e.URL,
		"HDC_TOKEN_URL=" + e.TokenURL,
		"HDC_TENANT_ID=" + demoTenant,
		"HDC_CLIENT_ID=" + demoClient,
		"HDC_CLIENT_SECRET=" + demoSecret,
	}
}

// exitNothingNew is the exit code of a `hdc-export run --detailed-exitcode`
// cycle that found no new run and nothing to purge; like 0, it is a success.
const exitNothingNew = 5

// runExportWith runs one `hdc-export run --config config` cycle with the
// complete child environment env, in a fresh working folder. It fails the
// test unless the command succeeds (exit 0, or exitNothingNew) with a JSON
// summary.
func runExportWith(t *testing.T, config string, env []string) summary {
	t.Helper()
	return runExportBin(t, hdcBinary(t), config, env)
}

// runExportBin is runExportWith for the hdc-export binary bin.
func runExportBin(t *testing.T, bin, config string, env []string) summary {
	t.Helper()
	work := t.TempDir()
	sumFile := filepath.Join(work, "summary.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// --detailed-exitcode: nothing new exits 5 (else 0), which the check
	// below holds against the summary.
	cmd := exec.CommandContext(ctx, bin, "run", "--config", config, "--summary-json", sumFile, "--detailed-exitcode")
	cmd.Env = env
	cmd.Dir = work // a relative sink in the config could never land in the repository
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	var exitErr *exec.ExitError
	code := 0
	if errors.As(err, &exitErr) && exitErr.Exited() {
		code = exitErr.ExitCode()
	}
	if err != nil && code != exitNothingNew {
		t.Fatalf("hdc-export run --config %s (%s): %v\nstdout:\n%s\nstderr:\n%s", config, strings.Join(hdcVars(env), " "), err, stdout.String(), tail(stderr.String(), 4000))
	}
	var sum summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("hdc-export run: stdout is not a JSON summary: %v\n%s", err, stdout.String())
	}
	if n, _ := sum["runs_ingested"].(float64); code == exitNothingNew && n > 0 {
		t.Errorf("hdc-export run exited %d (nothing new) but ingested %v runs", code, n)
	}
	if b, err := os.ReadFile(sumFile); err != nil || !bytes.Equal(b, stdout.Bytes()) {
		t.Errorf("--summary-json file differs from stdout (err %v)", err)
	}
	t.Logf("hdc-export run took %s (exit %d): %s", time.Since(start).Round(time.Millisecond), code, compactSummary(sum))
	return sum
}

// hdcVars returns the HDC_* entries of env, for failure messages.
func hdcVars(env []string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "HDC_") {
			out = append(out, kv)
		}
	}
	return out
}

func compactSummary(s summary) string {
	var parts []string
	for _, k := range []string{"runs_seen", "runs_ingested", "runs_already_committed", "runs_superseded", "partitions_written", "rows_written", "rows_bad", "rows_outside_window", "objects_purged", "errors"} {
		if v, ok := s[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return strings.Join(parts, " ")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// groundTruth computes the independent ground truth of every dataset.
func groundTruth(t *testing.T, emu *emulator) map[string]*apiclient.Truth {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := emu.client()
	out := map[string]*apiclient.Truth{}
	for _, ds := range datasets {
		tr, err := c.GroundTruth(ctx, ds.view, retentionDays, time.Now())
		if err != nil {
			t.Fatalf("ground truth of %s: %v", ds.name, err)
		}
		out[ds.name] = tr
	}
	return out
}

// sameWorld reports whether two ground truths describe the same runs and
// window: if not, the clock crossed a day or a run finished meanwhile.
func sameWorld(a, b map[string]*apiclient.Truth) bool {
	for k := range a {
		if !a[k].Today.Equal(b[k].Today) || !reflect.DeepEqual(a[k].Owner, b[k].Owner) || !reflect.DeepEqual(a[k].Days, b[k].Days) {
			return false
		}
	}
	return true
}

// exportWithTruth runs one export into lake and returns the ground truth
// for the moment of that export. If the emulator's runs changed while the
// export ran (a run finishing, or midnight UTC), it exports again.
func exportWithTruth(t *testing.T, emu *emulator, lake string) map[string]*apiclient.Truth {
	t.Helper()
	return exportWithTruthFunc(t, emu, func() { runExport(t, lake, emu) })
}

// exportWithTruthFunc is exportWithTruth for any export: export runs one
// cycle into the same lake each time it is called.
func exportWithTruthFunc(t *testing.T, emu *emulator, export func()) map[string]*apiclient.Truth {
	t.Helper()
	for attempt := 1; ; attempt++ {
		before := groundTruth(t, emu)
		export()
		after := groundTruth(t, emu)
		if sameWorld(before, after) {
			return after
		}
		if attempt == 3 {
			t.Fatal("the emulator's runs kept changing while exporting; cannot pin the ground truth")
		}
		t.Log("the emulator's runs changed during the export (clock boundary); exporting again")
	}
}

// openDuckDB opens an in-memory DuckDB.
func openDuckDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatalf("open duckdb: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	// Timestamps are compared as UTC whatever the machine's zone.
	if _, err := db.Exec("SET GLOBAL TimeZone = 'UTC'"); err != nil {
		t.Fatalf("duckdb: %v", err)
	}
	return db
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// datasetScan is the DuckDB table function reading a dataset as analysts do.
func datasetScan(lake, name string) string {
	return fmt.Sprintf("read_parquet(%s, hive_partitioning = true)", sqlString(filepath.Join(lake, name, "**", "*.parquet")))
}

// parquetFiles lists a dataset's Parquet files (relative to the dataset).
func parquetFiles(t *testing.T, lake, name string) []string {
	t.Helper()
	var files []string
	dir := filepath.Join(lake, name)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".parquet") {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("list %s: %v", dir, err)
	}
	slices.Sort(files)
	return files
}

// lakeTotals aggregates a dataset per Hive date partition with DuckDB.
func lakeTotals(t *testing.T, db *sql.DB, lake, name string) map[string]apiclient.Totals {
	t.Helper()
	out := map[string]apiclient.Totals{}
	if len(parquetFiles(t, lake, name)) == 0 {
		return out
	}
	q := fmt.Sprintf(`SELECT CAST(date AS VARCHAR), count(*), CAST(coalesce(sum(event_count), 0) AS BIGINT),
		CAST(coalesce(sum(epoch_ms(failure_date_time)), 0) AS BIGINT)
		FROM %s GROUP BY date ORDER BY date`, datasetScan(lake, name))
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		var tot apiclient.Totals
		if err := rows.Scan(&d, &tot.Rows, &tot.EventCount, &tot.FailureMillis); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[d] = tot
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

// compareWithTruth checks a dataset's per-date totals against the truth.
func compareWithTruth(t *testing.T, name string, tr *apiclient.Truth, got map[string]apiclient.Totals) {
	t.Helper()
	if len(tr.Days) == 0 {
		t.Fatalf("%s: the ground truth is empty (report %d); the test would prove nothing", name, tr.ReportID)
	}
	dates := map[string]bool{}
	for d := range tr.Days {
		dates[d] = true
	}
	for d := range got {
		dates[d] = true
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for d := range dates {
			if !yield(d) {
				return
			}
		}
	})
	bad := 0
	for _, d := range keys {
		want, inTruth := tr.Days[d]
		have, inLake := got[d]
		owner := "no run covers it in the window"
		if o, ok := tr.Owner[d]; ok {
			owner = "owned by run " + o.Format("2006-01-02T15:04Z")
		}
		switch {
		case !inLake:
			t.Errorf("%s date=%s: missing from the lake; want rows=%d sum(event_count)=%d (%s)", name, d, want.Rows, want.EventCount, owner)
		case !inTruth:
			t.Errorf("%s date=%s: unexpected partition with rows=%d sum(event_count)=%d; want none (%s, window starts %s)", name, d, have.Rows, have.EventCount, owner, tr.WindowFirst.Format(apiclient.DateLayout))
		case want != have:
			t.Errorf("%s date=%s (%s): want rows=%d sum(event_count)=%d sum(failure_date_time ms)=%d; got rows=%d sum(event_count)=%d sum(failure_date_time ms)=%d",
				name, d, owner, want.Rows, want.EventCount, want.FailureMillis, have.Rows, have.EventCount, have.FailureMillis)
		default:
			continue
		}
		bad++
	}
	if bad == 0 {
		var rows int64
		for _, v := range tr.Days {
			rows += v.Rows
		}
		t.Logf("%s: %d dates (%s..), %d rows match the ground truth of report %d (%d files read)", name, len(keys), keys[0], rows, tr.ReportID, tr.Files)
	}
}

// partitionPath matches a data file's path inside a dataset folder.
var partitionPath = regexp.MustCompile(`^date=(\d{4}-\d{2}-\d{2})/part-\d{5}\.parquet$`)

// checkLayout checks the lake contract for one dataset: every data file is
// <dataset>/date=YYYY-MM-DD/part-NNNNN.parquet with a date inside the
// retention window.
func checkLayout(t *testing.T, lake, name string, windowFirst time.Time) {
	t.Helper()
	files := parquetFiles(t, lake, name)
	if len(files) == 0 {
		t.Errorf("%s: no Parquet files under %s", name, filepath.Join(lake, name))
	}
	for _, f := range files {
		m := partitionPath.FindStringSubmatch(f)
		if m == nil {
			t.Errorf("%s: %s does not follow date=YYYY-MM-DD/part-NNNNN.parquet", name, f)
			continue
		}
		d, err := time.Parse(apiclient.DateLayout, m[1])
		if err != nil {
			t.Errorf("%s: %s: bad partition date: %v", name, f, err)
			continue
		}
		if d.Before(windowFirst) {
			t.Errorf("%s: %s is older than the retention window (first kept date %s)", name, f, windowFirst.Format(apiclient.DateLayout))
		}
	}
}

// treeHashes maps every regular file under root (relative path) to its
// SHA-256.
func treeHashes(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(root, path)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatalf("hash %s: %v", root, err)
	}
	return out
}

// queryStrings runs a query returning one string column.
func queryStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s sql.NullString
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out = append(out, s.String)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// queryInt runs a query returning one integer.
func queryInt(t *testing.T, db *sql.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
