package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// prometheusBinary finds the Prometheus server (Debian's prometheus
// package; .ci/run installs it). Without it the test skips, but only
// outside CI: in CI a missing server is a failure.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err == nil {
		return bin
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set but the prometheus server is not installed (apt-get install prometheus): %v", err)
	}
	t.Skip("the prometheus server is not installed (apt-get install prometheus); CI runs this test")
	return ""
}

// promResult is the data of a Prometheus HTTP API answer.
type promResult struct {
	Status string          `json:"status"`
	Error  string          `json:"error"`
	Data   json.RawMessage `json:"data"`
}

// promGet calls the Prometheus HTTP API at base+path.
func promGet(base, path string, q url.Values) (json.RawMessage, error) {
	resp, err := http.Get(base + path + "?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r promResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", path, resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", path, r.Error)
	}
	return r.Data, nil
}

// sample is one series of an instant query.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) float(t *testing.T) float64 {
	t.Helper()
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		t.Fatalf("sample value %v: %v", s.Value, err)
	}
	return v
}

// promQuery runs an instant query.
func promQuery(base, query string) ([]sample, error) {
	data, err := promGet(base, "/api/v1/query", url.Values{"query": {query}})
	if err != nil {
		return nil, err
	}
	var v struct {
		ResultType string   `json:"resultType"`
		Result     []sample `json:"result"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return v.Result, nil
}

// waitQuery polls query until it returns a series or the deadline passes.
func waitQuery(t *testing.T, base, query string, deadline time.Time) []sample {
	t.Helper()
	var lastErr error
	for time.Now().Before(deadline) {
		res, err := promQuery(base, query)
		if err == nil && len(res) > 0 {
			return res
		}
		lastErr = err
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("query %q returned nothing in time (last error %v)", query, lastErr)
	return nil
}

// startProcess starts cmd, stops it (SIGINT, then kill) when the test
// ends, and logs its output if the test failed.
func startProcess(t *testing.T, name string, cmd *exec.Cmd) {
	t.Helper()
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tail(out.String(), 6000))
		}
	})
}

// TestPrometheusScrapesServe: a real Prometheus scrapes `hdc-export
// serve`, loads the shipped alert rules (every one evaluates without
// error against the real series) and evaluates an alert expression over
// the scraped data.
func TestPrometheusScrapesServe(t *testing.T) {
	promBin := prometheusBinary(t)
	root := repoRoot(t)
	bin := hdcBinary(t)

	// hdc-export serve with the embedded emulator of configs/demo.yaml.
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	serve := exec.Command(bin, "serve", "--config", filepath.Join(root, "configs", "demo.yaml"), "--listen", addr)
	serve.Env = childEnv([]string{"HDC_SINK_URL=file://" + t.TempDir()})
	serve.Dir = t.TempDir()
	startProcess(t, "hdc-export serve", serve)

	// A second rule file: an alert that fires while the last success is
	// recent, so that one of the shipped rules' expressions is seen to
	// fire on real data, not only to parse.
	dir := t.TempDir()
	fresh := `groups:
  - name: e2e
    rules:
      - alert: HDCExportFresh
        expr: time() - max without (command) (hdc_last_success_timestamp_seconds) < 600
`
	if err := os.WriteFile(filepath.Join(dir, "fresh.rules.yml"), []byte(fresh), 0o644); err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(root, "deploy", "prometheus", "hdc-export.rules.yml")
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %q
  - %q
scrape_configs:
  - job_name: hdc-export
    static_configs:
      - targets: [%q]
`, rules, filepath.Join(dir, "fresh.rules.yml"), addr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prom := exec.CommandContext(ctx, promBin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr)
	prom.Dir = dir
	startProcess(t, "prometheus", prom)
	base := "http://" + promAddr

	deadline := time.Now().Add(90 * time.Second)
	// The start-up cycle has run and been scraped.
	waitQuery(t, base, `hdc_cycles_total{job="hdc-export",outcome="ok"} >= 1`, deadline)
	up := waitQuery(t, base, `up{job="hdc-export"}`, deadline)
	if up[0].float(t) != 1 {
		t.Fatalf("up = %v", up[0].Value)
	}

	// hdc_build_info carries the string `hdc-export version` prints.
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	info := waitQuery(t, base, `hdc_build_info`, deadline)
	if got, want := info[0].Metric["version"], strings.TrimSpace(string(out)); got != want {
		t.Errorf("hdc_build_info version %q, `hdc-export version` says %q", got, want)
	}
	// The standard collectors are there.
	for _, q := range []string{`go_goroutines{job="hdc-export"}`, `process_resident_memory_bytes{job="hdc-export"}`} {
		if res, err := promQuery(base, q); err != nil || len(res) == 0 {
			t.Errorf("%s: %v %v", q, res, err)
		}
	}
	// The last success is a timestamp: its age is small and grows.
	age := waitQuery(t, base, `time() - hdc_last_success_timestamp_seconds`, deadline)
	if a := age[0].float(t); a < 0 || a > 300 {
		t.Errorf("last success %vs ago", a)
	}

	// The alert fires on the scraped data; the shipped rules load and
	// evaluate without error, and the healthy service fires none of them.
	waitQuery(t, base, `ALERTS{alertname="HDCExportFresh",alertstate="firing"}`, deadline)
	data, err := promGet(base, "/api/v1/rules", nil)
	if err != nil {
		t.Fatal(err)
	}
	var rs struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
				State     string `json:"state"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(data, &rs); err != nil {
		t.Fatal(err)
	}
	shipped := 0
	for _, g := range rs.Groups {
		if g.Name != "hdc-export" {
			continue
		}
		for _, r := range g.Rules {
			shipped++
			if r.Health != "ok" || r.LastError != "" {
				t.Errorf("rule %s: health %q, error %q", r.Name, r.Health, r.LastError)
			}
			if r.State != "inactive" {
				t.Errorf("rule %s is %s on a healthy service", r.Name, r.State)
			}
		}
	}
	if shipped < 5 {
		t.Errorf("Prometheus loaded %d of the shipped rules: %s", shipped, data)
	}

	// Every query of the Grafana dashboard runs; most find data.
	b, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "hdc-export.dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	queries, empty := 0, []string{}
	vars := strings.NewReplacer("$job", "hdc-export", "$__rate_interval", "1m")
	for _, p := range dash.Panels {
		for _, q := range p.Targets {
			queries++
			res, err := promQuery(base, vars.Replace(q.Expr))
			if err != nil {
				t.Errorf("panel %q: %s: %v", p.Title, q.Expr, err)
			} else if len(res) == 0 {
				empty = append(empty, p.Title+": "+q.Expr)
			}
		}
	}
	// A healthy demo cycle destroys nothing and refuses no cab, so a few
	// queries may be empty; most must not be.
	t.Logf("%d dashboard queries, %d without data: %q", queries, len(empty), empty)
	if queries == 0 || len(empty) > queries/3 {
		t.Errorf("%d of %d dashboard queries found no data:\n%s", len(empty), queries, strings.Join(empty, "\n"))
	}
}
