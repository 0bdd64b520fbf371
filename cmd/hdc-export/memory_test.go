package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/pipeline"
)

// maxIngestRSS is the acceptance bound on the runner's peak RSS for a 2 GB,
// 90-day report.
const maxIngestRSS = 256 << 20

// TestIngestPeakRSS builds the binary, serves a Last90Days report of about
// 2 GB from a separate emulator process, and runs `hdc-export run` (cabs
// off) on it, measuring the runner's peak RSS from outside (wait4). Set
// HDC_RSS_ROWS_PER_DAY to change the size (45000 rows a day is about 2 GB).
func TestIngestPeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and ingests a 2 GB report")
	}
	rowsPerDay := 45000
	if v := os.Getenv("HDC_RSS_ROWS_PER_DAY"); v != "" {
		rowsPerDay, _ = strconv.Atoi(v)
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	addr := freeAddr(t)
	emu := exec.Command(bin, "emulator", "--addr", addr, "--period", "Last90Days", "--days", "90", "--rows-per-day", strconv.Itoa(rowsPerDay))
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { emu.Process.Kill(); emu.Wait() }()
	api := waitForEmulator(t, addr)
	size := reportSize(t, api)

	tmpl, err := os.ReadFile("../../configs/templates/ihv_all_last7days.json")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "ihv.json"), strings.Replace(string(tmpl), "Last7Days", "Last90Days", 1))
	sum, wall, peak := measuredRun(t, bin, dir, addr, "ihv.json")
	if sum.Rows == 0 || sum.ReportsFailed != 0 {
		t.Fatalf("summary: %+v", sum)
	}
	t.Logf("report %.2f GB, %d rows read (%d kept, %d outside the window) in %v: peak RSS %.1f MiB (bound %d MiB)",
		float64(size)/1e9, sum.Rows+sum.RowsTooOld, sum.Rows, sum.RowsTooOld, wall.Round(time.Millisecond), float64(peak)/(1<<20), maxIngestRSS>>20)
	if peak >= maxIngestRSS {
		t.Errorf("peak RSS %.1f MiB, want < %d MiB", float64(peak)/(1<<20), maxIngestRSS>>20)
	}
}

// measuredRun runs `bin run` once on a config of one report (template,
// relative to dir or absolute) with the mirror off, against the emulator
// at addr, and returns its summary, wall time and peak RSS, measured from
// outside (wait4's maxrss).
func measuredRun(t *testing.T, bin, dir, addr, template string) (pipeline.Summary, time.Duration, int64) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "rss.yaml"), `devcenter: {tenant_id: demo-tenant, client_id: demo-client}
sink: {url: `+filepath.Join(dir, "lake")+`}
temp_dir: `+filepath.Join(dir, "tmp")+`
cabs: {enabled: false}
reports:
  - {name: ihv_driver, template_file: `+template+`, schedule: {interval_hours: 24}}
`)
	run := exec.Command(bin, "run", "--config", filepath.Join(dir, "rss.yaml"), "--summary-json", filepath.Join(dir, "summary.json"))
	run.Env = append(os.Environ(), "HDC_API_URL=http://"+addr, "HDC_TOKEN_URL=http://"+addr+"/demo-tenant/oauth2/token",
		"HDC_CLIENT_SECRET=demo-secret")
	start := time.Now()
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	wall := time.Since(start)
	peak := run.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
	var sum pipeline.Summary
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err == nil {
		err = json.Unmarshal(b, &sum)
	}
	if err != nil {
		t.Fatalf("summary: %s, %v", b, err)
	}
	return sum, wall, peak
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitForEmulator returns a client of the emulator at addr once it answers.
func waitForEmulator(t *testing.T, addr string) *devcenter.Client {
	t.Helper()
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := devcenter.New(devcenter.Config{BaseURL: "http://" + addr, TokenURL: "http://" + addr + "/demo-tenant/oauth2/token",
		TenantID: "demo-tenant", ClientID: "demo-client", ClientSecret: "demo-secret"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// reportSize downloads the newest run of the demo IHV report and returns
// its size in bytes (which also makes the emulator generate it before the
// measured run).
func reportSize(t *testing.T, api *devcenter.Client) int64 {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	runs, err := api.ReportData(ctx, 1, now.AddDate(0, 0, -2), now)
	if err != nil || len(runs) == 0 {
		t.Fatalf("runs: %d, %v", len(runs), err)
	}
	resp, err := http.Get(runs[len(runs)-1].Location)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(fmt.Errorf("download: HTTP %d, %v", resp.StatusCode, err))
	}
	return n
}
