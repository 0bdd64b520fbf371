package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/pipeline"
)

// TestHugeLinePeakRSS builds the binary, serves a Last7Days report whose
// header is followed by one 2 GiB line (streamed by a separate emulator
// process), and runs `hdc-export run` (cabs off) on it, measuring the
// runner's peak RSS from outside (wait4), as TestIngestPeakRSS does: once
// with a plain TSV line, once with a CSV line that opens a quote and never
// closes it. The line is quarantined as too long, by its prefix, within
// the quarantine's cap; every other row lands. Set HDC_HUGE_LINE to change
// the line's size in bytes.
func TestHugeLinePeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("streams a 2 GiB line through the runner")
	}
	size := int64(2 << 30)
	if v := os.Getenv("HDC_HUGE_LINE"); v != "" {
		size, _ = strconv.ParseInt(v, 10, 64)
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"plain", nil},
		{"unterminated quote", []string{"--delimiter", "comma", "--huge-line-quoted"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			addr := freeAddr(t)
			emu := exec.Command(bin, append([]string{"emulator", "--addr", addr, "--period", "Last7Days", "--days", "7",
				"--huge-line", strconv.FormatInt(size, 10)}, tc.args...)...)
			if err := emu.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { emu.Process.Kill(); emu.Wait() }()
			waitForEmulator(t, addr)
			sum, wall, peak := measuredRun(t, bin, dir, addr, absPath(t, "../../configs/templates/ihv_all_last7days.json"))
			if sum.Rows == 0 || sum.ReportsFailed != 0 || sum.RowsBad != int64(sum.RunsIngested) {
				t.Fatalf("summary: %+v", sum)
			}
			t.Logf("a %.2f GiB line, %d rows kept, %d bad, in %v: peak RSS %.1f MiB (bound %d MiB)",
				float64(size)/(1<<30), sum.Rows, sum.RowsBad, wall.Round(time.Millisecond), float64(peak)/(1<<20), maxIngestRSS>>20)
			if peak >= maxIngestRSS {
				t.Errorf("peak RSS %.1f MiB, want < %d MiB", float64(peak)/(1<<20), maxIngestRSS>>20)
			}
			quarantine, _ := filepath.Glob(filepath.Join(dir, "lake", "_hdc", "quarantine", "ihv_driver", "date=*", "*.tsv"))
			if len(quarantine) == 0 {
				t.Fatal("nothing quarantined")
			}
			for _, path := range quarantine {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if len(b) > pipeline.DefaultQuarantineBytes || !strings.Contains(string(b), "record too long") {
					t.Errorf("%s: %d bytes (cap %d), %.200q", path, len(b), pipeline.DefaultQuarantineBytes, b)
				}
			}
		})
	}
}

func absPath(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(rel)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExitCodeHeldBack: a cycle that held a run back, and failed nothing,
// exits partial (3), not 0 or "nothing new".
func TestExitCodeHeldBack(t *testing.T) {
	if got := exitCode(&pipeline.Summary{RunsHeldBack: 1}, nil, 2); got != exitPartial {
		t.Errorf("exit %d, want %d", got, exitPartial)
	}
}

// TestLimitsConfig: the limits block is read from the config file, with
// defaults for what it leaves out, and bad values name their key.
func TestLimitsConfig(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, validBody+"limits: {max_record_bytes: 1048576, quarantine_bytes: 131072, max_shrink: 0.2, accept_shrink: true}\n"), env(map[string]string{"HDC_CLIENT_SECRET": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	want := pipeline.LimitsConfig{MaxRecordBytes: 1 << 20, QuarantineBytes: 128 << 10, MaxUnknownColumns: pipeline.DefaultMaxUnknownColumns, MaxShrink: 0.2, AcceptShrink: true}
	if cfg.Pipeline.Limits != want {
		t.Errorf("limits %+v, want %+v", cfg.Pipeline.Limits, want)
	}
	for body, key := range map[string]string{
		"limits: {max_record_bytes: 100}\n":   "limits.max_record_bytes",
		"limits: {quarantine_bytes: 10}\n":    "limits.quarantine_bytes",
		"limits: {max_shrink: 1.5}\n":         "limits.max_shrink",
		"limits: {max_unknown_columns: -1}\n": "limits.max_unknown_columns",
	} {
		if _, err := LoadConfig(writeConfig(t, validBody+body), env(map[string]string{"HDC_CLIENT_SECRET": "s"})); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: err = %v", strings.TrimSpace(body), err)
		}
	}
}
