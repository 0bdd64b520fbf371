package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/pipeline"
	"github.com/hdc-export/hdc-export/sinks/local"
)

// TestSchedulerExitCodes runs cycles against the emulator: work done,
// nothing new and a lease held by another runner all exit 0; with
// --detailed-exitcode the last two exit 4 and 5, as before.
func TestSchedulerExitCodes(t *testing.T) {
	lake := t.TempDir()
	vars := standalone(t, lake)
	cfg := "../../configs/demo.yaml"
	if code, _, stderr := runCLI(t, vars, "run", "--config", cfg); code != exitOK {
		t.Fatalf("first run exit %d: %s", code, stderr)
	}
	code, out, stderr := runCLI(t, vars, "run", "--config", cfg)
	var sum pipeline.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil || code != exitOK || !sum.NothingToDo() {
		t.Fatalf("nothing new: exit %d, summary %+v (%v)\n%s", code, sum, err, stderr)
	}
	if code, _, _ := runCLI(t, vars, "run", "--config", cfg, "--detailed-exitcode"); code != exitNothingNew {
		t.Errorf("nothing new, detailed: exit %d, want %d", code, exitNothingNew)
	}

	// Another runner holds the lake's lease.
	sink, err := local.New(lake)
	if err != nil {
		t.Fatal(err)
	}
	lease, err := pipeline.AcquireLease(t.Context(), sink, "other-runner", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(t.Context())
	code, _, stderr = runCLI(t, vars, "run", "--config", cfg)
	if code != exitOK || strings.Contains(stderr, "hdc-export run:") || !strings.Contains(stderr, "another runner holds the lake's lease") {
		t.Errorf("lease held: exit %d, want 0 with an info line, not an error\n%s", code, stderr)
	}
	if code, _, _ := runCLI(t, vars, "run", "--config", cfg, "--detailed-exitcode"); code != exitLeaseHeld {
		t.Errorf("lease held, detailed: exit %d, want %d", code, exitLeaseHeld)
	}
	if code, _, stderr := runCLI(t, vars, "purge", "--config", cfg); code != exitOK {
		t.Errorf("purge, lease held: exit %d\n%s", code, stderr)
	}
	if code, _, _ := runCLI(t, vars, "purge", "--config", cfg, "--detailed-exitcode"); code != exitLeaseHeld {
		t.Errorf("purge, lease held, detailed: exit %d, want %d", code, exitLeaseHeld)
	}
}

func TestSchedulerCode(t *testing.T) {
	for code := exitOK; code <= exitNothingNew; code++ {
		want := code
		if code == exitLeaseHeld || code == exitNothingNew {
			want = exitOK
		}
		if got := schedulerCode(code, false); got != want {
			t.Errorf("schedulerCode(%d, false) = %d, want %d", code, got, want)
		}
		if got := schedulerCode(code, true); got != code {
			t.Errorf("schedulerCode(%d, true) = %d", code, got)
		}
	}
}

// TestReadmeExitCodes: the README's exit-code table lists exactly the
// codes `run` has, and its scheduler examples ask for no exception that
// the codes no longer need.
func TestReadmeExitCodes(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	section := readme[strings.Index(readme, "## Exit codes"):]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	var documented []int
	for _, m := range regexp.MustCompile("(?m)^\\| `?(\\d)`? \\|").FindAllStringSubmatch(section, -1) {
		n, _ := strconv.Atoi(m[1])
		documented = append(documented, n)
	}
	if want := []int{exitOK, exitFailed, exitUsage, exitPartial, exitLeaseHeld, exitNothingNew}; !slices.Equal(documented, want) {
		t.Errorf("README documents exit codes %v, the code has %v", documented, want)
	}
	for _, stale := range []string{"SuccessExitStatus=4 5", "values: [4, 5]", "|| [ $? -eq 5 ]", "the losers exit 4"} {
		if strings.Contains(readme, stale) {
			t.Errorf("README still says %q", stale)
		}
	}
	mk, _ := os.ReadFile("../../Makefile")
	if strings.Contains(string(mk), "-eq 5") {
		t.Error("Makefile still accepts exit 5 by hand")
	}
}

// TestJSONLogsOnly runs the program in JSON mode through a cycle with a
// summary, and through a failing one, and a config error: every stderr
// line parses as JSON.
func TestJSONLogsOnly(t *testing.T) {
	vars := standalone(t, t.TempDir())
	cfg := "../../configs/demo.yaml"
	allJSON := func(what, stderr string) []map[string]any {
		t.Helper()
		var recs []map[string]any
		for _, line := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Errorf("%s: stderr line is not JSON: %q", what, line)
			}
			recs = append(recs, rec)
		}
		return recs
	}
	code, _, stderr := runCLI(t, vars, "run", "--config", cfg, "--log-format", "json")
	recs := allJSON("cycle", stderr)
	i := slices.IndexFunc(recs, func(r map[string]any) bool { return r["msg"] == "cycle summary" })
	if code != exitOK || i < 0 {
		t.Fatalf("cycle: exit %d, no summary record\n%s", code, stderr)
	}
	if s, _ := recs[i]["summary"].(map[string]any); s == nil || s["runs_ingested"].(float64) == 0 {
		t.Errorf("summary record %v", recs[i])
	}
	// A cycle that fails: Dev Center unreachable.
	bad := map[string]string{}
	for k, v := range vars {
		bad[k] = v
	}
	bad["HDC_API_URL"], bad["HDC_TOKEN_URL"] = "http://127.0.0.1:1", "http://127.0.0.1:1/t/oauth2/token"
	fast := fastFailConfig(t, cfg)
	code, _, stderr = runCLI(t, bad, "run", "--config", fast, "--log-format", "json")
	recs = allJSON("failed cycle", stderr)
	if code != exitFailed || !slices.ContainsFunc(recs, func(r map[string]any) bool { return r["msg"] == "hdc-export run failed" && r["error"] != nil }) {
		t.Errorf("failed cycle: exit %d, no error record\n%s", code, stderr)
	}
	// A configuration error.
	bad["HDC_SINK_URL"] = "ftp://nowhere/x"
	code, _, stderr = runCLI(t, bad, "run", "--config", cfg, "--log-format", "json")
	allJSON("config error", stderr)
	if code != exitUsage || !strings.Contains(stderr, "HDC_SINK_URL") {
		t.Errorf("config error: exit %d\n%s", code, stderr)
	}
	// purge in JSON mode: its report is a record too.
	code, _, stderr = runCLI(t, vars, "purge", "--config", cfg, "--log-format", "json")
	allJSON("purge", stderr)
	if code != exitOK {
		t.Errorf("purge: exit %d\n%s", code, stderr)
	}
}

// TestConsoleClearsProgress: on a (fake) terminal, a log line first
// clears the progress line and then draws it again; in JSON mode, or off
// a terminal, there is no progress at all.
func TestConsoleClearsProgress(t *testing.T) {
	var screen bytes.Buffer
	c := &console{w: &screen, tty: true}
	log, err := newLogger(c, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	show := c.progress()
	if show == nil {
		t.Fatal("no progress on a terminal")
	}
	show("cabs 3472 of 3502")
	log.Info("cabs mirrored")
	show("") // done
	got := screen.String()
	clear := "\r\033[K"
	want := clear + "cabs 3472 of 3502" + clear
	if !strings.HasPrefix(got, want+"time=") {
		t.Fatalf("screen %q\nwant it to start %q then the log line", got, want)
	}
	line, rest, _ := strings.Cut(strings.TrimPrefix(got, want), "\n")
	if !strings.Contains(line, `msg="cabs mirrored"`) || strings.Contains(line, "cabs 3472") {
		t.Errorf("log line %q", line)
	}
	if rest != clear+"cabs 3472 of 3502"+clear {
		t.Errorf("after the log line %q, want the progress redrawn then cleared", rest)
	}

	// Throttled updates are not drawn at once, but a log line redraws the latest.
	screen.Reset()
	show("a: 1 rows")
	show("a: 2 rows") // within progressEvery: not drawn
	if strings.Contains(screen.String(), "2 rows") {
		t.Fatalf("drew within %s: %q", progressEvery, screen.String())
	}
	log.Info("x")
	if !strings.HasSuffix(screen.String(), clear+"a: 2 rows") {
		t.Errorf("latest line not redrawn after a log write: %q", screen.String())
	}

	if (&console{w: &screen}).progress() != nil {
		t.Error("progress off a terminal")
	}
	j := &console{w: &screen, tty: true}
	if _, err := newLogger(j, "json", "info"); err != nil || j.progress() != nil {
		t.Error("progress in JSON mode")
	}
}

// TestHelpExitsZero: -h and --help, at the top and for each command.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"run", "-h"}, {"run", "--help"}, {"serve", "-h"},
		{"apply", "-h"}, {"ddl", "-h"}, {"status", "-h"}, {"purge", "--help"}, {"doctor", "-h"}, {"emulator", "-h"}} {
		var out, errOut bytes.Buffer
		if code := run(t.Context(), args, &out, &errOut, env(nil)); code != exitOK || out.Len()+errOut.Len() == 0 || strings.Contains(errOut.String(), "help requested") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out.String(), errOut.String())
		}
	}
}

// TestCallbackPostOnlyAndQueued: the callback answers 405 with Allow: POST
// to other methods, and says whether the cycle started or was queued.
func TestCallbackPostOnlyAndQueued(t *testing.T) {
	cfg := &Config{Pipeline: pipeline.Config{Reports: []pipeline.ReportConfig{{Name: "ihv_driver"}, {Name: "oem_driver"}}}}
	var asked [][]string
	busy := false
	mux := http.NewServeMux()
	handleCallback(mux, cfg, "s3cret", func(only ...string) bool {
		asked = append(asked, only)
		return busy
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(method, srv.URL+"/callback/s3cret?report=ihv_driver", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Errorf("%s: %d, Allow %q", method, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	if len(asked) != 0 {
		t.Fatalf("a non-POST asked for a cycle: %v", asked)
	}
	post := func() (int, string) {
		resp, err := http.Post(srv.URL+"/callback/s3cret?report=IHV_driver", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := post(); code != http.StatusAccepted || !strings.HasPrefix(body, "started") {
		t.Errorf("idle: %d %q", code, body)
	}
	busy = true
	if code, body := post(); code != http.StatusAccepted || !strings.HasPrefix(body, "queued") {
		t.Errorf("busy: %d %q", code, body)
	}
	if !slices.EqualFunc(asked, [][]string{{"ihv_driver"}, {"ihv_driver"}}, slices.Equal) {
		t.Errorf("asked %v", asked)
	}
	if resp, _ := http.Post(srv.URL+"/callback/wrong", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("wrong secret: %d", resp.StatusCode)
	}
}

// TestSummaryListsPartitions: the text summary lists the changed
// partitions per dataset, consecutive dates as ranges.
func TestSummaryListsPartitions(t *testing.T) {
	var b bytes.Buffer
	printPartitions(&b, "partitions changed", []pipeline.Partition{
		{Dataset: "ihv_driver", Date: "2026-11-29"}, {Dataset: "ihv_driver", Date: "2026-11-30"}, {Dataset: "ihv_driver", Date: "2026-12-01"}, {Dataset: "ihv_driver", Date: "2026-12-03"}, {Dataset: "oem_driver", Date: "2026-12-01"}})
	want := "partitions changed:\n  ihv_driver: 2026-11-29..2026-12-01 2026-12-03\n  oem_driver: 2026-12-01\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestReadmeSystemdUnits checks the README's systemd units with
// systemd-analyze verify (skipped where it is missing): no warning, and
// no comment after a value (systemd would take it as part of the value).
func TestReadmeSystemdUnits(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable() // an executable that exists, for ExecStart
	dir := t.TempDir()
	var units []string
	for _, block := range regexp.MustCompile("(?s)```ini\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		var name string
		var body strings.Builder
		flush := func() {
			if name != "" {
				units = append(units, filepath.Join(dir, name))
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			body.Reset()
		}
		for _, line := range strings.Split(block[1], "\n") {
			if m := regexp.MustCompile(`^# /etc/systemd/system/(\S+)`).FindStringSubmatch(line); m != nil {
				flush()
				name = m[1]
				continue
			}
			if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") && strings.Contains(v, " #") {
				t.Errorf("%s: a comment after the value of %s becomes part of it: %q", name, k, line)
			}
			body.WriteString(strings.ReplaceAll(line, "/usr/local/bin/hdc-export", self) + "\n")
		}
		flush()
	}
	if len(units) < 3 {
		t.Fatalf("found %d units in the README, want the run's service and timer and the purge's service", len(units))
	}
	cmd := exec.Command(analyze, append([]string{"verify"}, units...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), dir) {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
