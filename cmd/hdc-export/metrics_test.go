package main

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hdc-export/hdc-export/internal/version"
	"github.com/hdc-export/hdc-export/pipeline"
)

func TestCabCounts(t *testing.T) {
	s := &pipeline.Summary{CabsMirrored: 5, CabsRefused: 3, CabsDeferred: 1}
	got := cabCounts(s, nil)
	want := []cabCount{{"mirrored", "other", 5}, {"refused", "other", 3}, {"deferred", "other", 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("no reasons: got %v, want %v", got, want)
	}
	got = cabCounts(s, map[string]map[string]int{"refused": {"host_not_allowed": 2, "scheme": 1}, "mirrored": {"new": 4}})
	want = []cabCount{{"mirrored", "new", 4}, {"mirrored", "other", 1}, {"refused", "host_not_allowed", 2}, {"refused", "scheme", 1}, {"deferred", "other", 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("with reasons: got %v, want %v", got, want)
	}
}

// TestMetricCabReasons: the mirror's cab_outcomes reach the metric under
// its outcome labels, skipped split by reason, and the outcomes without a
// count field (refused_earlier, retried) exported on their own.
func TestMetricCabReasons(t *testing.T) {
	s := &pipeline.Summary{CabsMirrored: 2, CabsRefused: 1, CabsFailed: 1, CabsSkippedExpired: 1, CabsNotFound: 1,
		CabReasons: map[string]map[string]int{
			"refused":         {"host_not_allowed": 1},
			"refused_earlier": {"host_not_allowed": 4},
			"failed":          {"md5_mismatch": 1},
			"retried":         {"md5_mismatch": 2},
			"skipped":         {"expired": 1, "not_found": 1},
		}}
	got := cabCounts(s, metricCabReasons(s.CabReasons))
	want := []cabCount{{"mirrored", "other", 2}, {"refused", "host_not_allowed", 1}, {"failed", "md5_mismatch", 1},
		{"not_found", "not_found", 1}, {"skipped_expired", "expired", 1},
		{"refused_earlier", "host_not_allowed", 4}, {"retried", "md5_mismatch", 2}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

func TestCycleOutcome(t *testing.T) {
	failed := errors.New("boom")
	for _, tc := range []struct {
		s    *pipeline.Summary
		err  error
		want string
	}{
		{&pipeline.Summary{}, nil, "ok"},
		{&pipeline.Summary{RunsIngested: 1, CabsRefused: 1}, nil, "partial"},
		{nil, pipeline.ErrLeaseHeld, "lease_held"},
		{&pipeline.Summary{ReportsFailed: 1, RunsIngested: 2}, failed, "partial"},
		{&pipeline.Summary{ReportsFailed: 2}, failed, "failed"},
		{nil, failed, "failed"},
	} {
		if got := cycleOutcome(tc.s, tc.err); got != tc.want {
			t.Errorf("cycleOutcome(%+v, %v) = %s, want %s", tc.s, tc.err, got, tc.want)
		}
	}
}

// pushgateway records what a Pushgateway would receive.
type pushgateway struct {
	mu     sync.Mutex
	pushes []pushed
}

type pushed struct {
	method, path string
	fams         map[string]*dto.MetricFamily
}

func (p *pushgateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fams := map[string]*dto.MetricFamily{}
	dec := expfmt.NewDecoder(r.Body, expfmt.ResponseFormat(r.Header))
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			if !errors.Is(err, io.EOF) {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			break
		}
		fams[mf.GetName()] = &mf
	}
	p.mu.Lock()
	p.pushes = append(p.pushes, pushed{r.Method, r.URL.Path, fams})
	p.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (p *pushgateway) last(t *testing.T) pushed {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pushes) == 0 {
		t.Fatal("nothing was pushed")
	}
	return p.pushes[len(p.pushes)-1]
}

// readProm parses a metrics file.
func readProm(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	return fams
}

// value is the value of the series of name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mf := fams[name]
	if mf == nil {
		return 0, false
	}
series:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue series
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// TestRunExportsMetrics: `run` writes its metrics file and pushes to a
// Pushgateway; a failed run after a good one keeps the last success in
// both, and counts the failure.
func TestRunExportsMetrics(t *testing.T) {
	lake := t.TempDir()
	vars := standalone(t, lake)
	// With the mirror on, every cab is refused (the emulator's address is
	// off demo.yaml's allowlist): the run exits 3 and the refusals are
	// counted by reason.
	vars["HDC_CABS"] = "on"
	gw := &pushgateway{}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "hdc_run.prom")
	cfg := "../../configs/demo.yaml"
	before := float64(time.Now().Unix())
	code, out, stderr := runCLI(t, vars, "run", "--config", cfg, "--metrics-file", file, "--pushgateway", srv.URL, "--pushgateway-job", "hdc")
	if code != exitPartial {
		t.Fatalf("run exit %d, want %d (cabs refused): %s", code, exitPartial, stderr)
	}
	run := map[string]string{"command": "run"}
	fams := readProm(t, file)
	for name := range fams {
		if !strings.HasPrefix(name, "hdc_") {
			t.Errorf("metrics file holds %s: node_exporter has its own go_ and process_ metrics", name)
		}
	}
	if v, ok := value(t, fams, "hdc_cycles_total", map[string]string{"command": "run", "outcome": "partial"}); v != 1 {
		t.Errorf("hdc_cycles_total{outcome=partial} = %v (%v)", v, ok)
	}
	if v, ok := value(t, fams, "hdc_build_info", map[string]string{"command": "run", "version": version.String(), "goversion": version.Get().GoVersion}); v != 1 {
		t.Errorf("hdc_build_info = %v (%v): %v", v, ok, fams["hdc_build_info"])
	}
	success, ok := value(t, fams, "hdc_last_success_timestamp_seconds", run)
	if !ok || success < before || success > float64(time.Now().Unix()+1) {
		t.Errorf("hdc_last_success_timestamp_seconds = %v (%v), want about now", success, ok)
	}
	var sum pipeline.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.CabsRefused == 0 || sum.CabReasons["refused"]["host_not_allowed"] != sum.CabsRefused {
		t.Fatalf("the demo run refused no cab, or not by host: %+v", sum)
	}
	for outcome, c := range map[string]struct {
		reason string
		n      int
	}{"mirrored": {"other", sum.CabsMirrored}, "refused": {"host_not_allowed", sum.CabsRefused}} {
		n := c.n
		v, ok := value(t, fams, "hdc_cabs_total", map[string]string{"outcome": outcome, "reason": c.reason})
		if int(v) != n || ok != (n > 0) {
			t.Errorf("hdc_cabs_total{outcome=%q} = %v (%v), the summary says %d", outcome, v, ok, n)
		}
		if g, _ := value(t, fams, "hdc_last_cycle_cabs", map[string]string{"outcome": outcome}); g != v {
			t.Errorf("hdc_last_cycle_cabs{outcome=%q} = %v, want %v", outcome, g, v)
		}
	}
	if v, _ := value(t, fams, "hdc_retention_days", run); v != retentionDemo {
		t.Errorf("hdc_retention_days = %v", v)
	}
	for _, name := range []string{"hdc_rows_written_total", "hdc_oldest_object_date_timestamp_seconds", "hdc_retention_check_timestamp_seconds", "hdc_retention_check_ok"} {
		if _, ok := value(t, fams, name, run); !ok {
			t.Errorf("metrics file lacks %s", name)
		}
	}
	p := gw.last(t)
	if p.method != http.MethodPost || p.path != "/metrics/job/hdc/command/run" {
		t.Errorf("pushed %s %s, want POST /metrics/job/hdc/command/run", p.method, p.path)
	}
	if _, ok := value(t, p.fams, "hdc_last_success_timestamp_seconds", nil); !ok || p.fams["go_goroutines"] != nil {
		t.Errorf("push: last success %v, go_goroutines %v", ok, p.fams["go_goroutines"] != nil)
	}

	// A failed run: the last success stays, the failure is counted.
	vars["HDC_API_URL"] = "http://127.0.0.1:1"
	vars["HDC_TOKEN_URL"] = "http://127.0.0.1:1/t/oauth2/token"
	code, _, _ = runCLI(t, vars, "run", "--config", fastFailConfig(t, cfg), "--metrics-file", file, "--pushgateway", srv.URL, "--pushgateway-job", "hdc")
	if code != exitFailed {
		t.Fatalf("unreachable API exit %d", code)
	}
	fams = readProm(t, file)
	if v, ok := value(t, fams, "hdc_last_success_timestamp_seconds", run); v != success {
		t.Errorf("after a failed run the last success is %v (%v), want %v", v, ok, success)
	}
	if v, _ := value(t, fams, "hdc_last_cycle_outcome", map[string]string{"outcome": "failed"}); v != 1 {
		t.Errorf("hdc_last_cycle_outcome{outcome=failed} = %v", v)
	}
	if v, _ := value(t, fams, "hdc_cycles_total", map[string]string{"outcome": "failed"}); v != 1 {
		t.Errorf("hdc_cycles_total{outcome=failed} = %v", v)
	}
	if _, ok := value(t, gw.last(t).fams, "hdc_last_success_timestamp_seconds", nil); ok {
		t.Error("a failed run pushed a last success (it must leave the Pushgateway's)")
	}
}

const retentionDemo = 30 // configs/demo.yaml's retention.days

// fastFailConfig is the config at path with one attempt per API call.
func fastFailConfig(t *testing.T, path string) string {
	t.Helper()
	demo, err := os.ReadFile(path)
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
	return fast
}

// TestParquetCreatedByIsVersion: every Parquet file a run writes (report
// partitions and the cab index) names the build in created_by.
func TestParquetCreatedByIsVersion(t *testing.T) {
	lake := t.TempDir()
	if code, _, stderr := runCLI(t, standalone(t, lake), "run", "--config", "../../configs/demo.yaml"); code != exitOK {
		t.Fatalf("run exit %d: %s", code, stderr)
	}
	want := version.String()
	if !strings.HasPrefix(want, "hdc-export version ") || !strings.Contains(want, "(build ") {
		t.Fatalf("version string %q", want)
	}
	files := 0
	err := filepath.WalkDir(lake, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".parquet" {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		pf, err := parquet.OpenFile(f, st.Size())
		if err != nil {
			return err
		}
		if got := pf.Metadata().CreatedBy; got != want {
			t.Errorf("%s: created_by %q, want %q", path, got, want)
		}
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 2 {
		t.Fatalf("%d Parquet files in the lake", files)
	}
}

func TestVersionCommand(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		code, out, _ := runCLI(t, nil, arg)
		if code != exitOK || out != version.String()+"\n" {
			t.Errorf("%s: exit %d, printed %q, want %q", arg, code, out, version.String())
		}
	}
}
