package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// apiFaults is every fault kind of the emulator at once: throttling with
// Retry-After, server errors, token expiry, bodies that lie about their
// length, expired links, and responses that stall mid-body.
const apiFaults = "429=0.2,500=0.1,401=0.05,truncate=0.05,expire=0.1,slow=0.05,retry-after=0,slow-delay=20ms"

// TestAPIFaultsLandTheGroundTruth: against an emulator injecting every
// fault kind, one run, or a run and one retry, lands exactly the ground
// truth, which the independent client computes from a fault-free emulator
// of the same seed and clock. It reports how many runs it took.
func TestAPIFaultsLandTheGroundTruth(t *testing.T) {
	t.Parallel()
	faulty := startEmulator(t, "--faults", apiFaults)
	clean := startEmulator(t)
	lake := filepath.Join(t.TempDir(), "lake")
	var codes []int
	truth := exportWithTruthFunc(t, clean, func() {
		for attempt := range 2 {
			code := runFaulty(t, faulty, lake)
			codes = append(codes, code)
			if code == 0 || code == exitNothingNew {
				return
			}
			if attempt == 1 {
				t.Fatalf("a run and one retry did not finish: exit codes %v", codes)
			}
		}
	})
	db := openDuckDB(t)
	for _, ds := range datasets {
		compareWithTruth(t, ds.name, truth[ds.name], lakeTotals(t, db, lake, ds.name))
		checkLayout(t, lake, ds.name, truth[ds.name].WindowFirst)
	}
	t.Logf("faults %q: exit codes %v", apiFaults, codes)
}

// runFaulty runs one export cycle (cabs off) against emu and returns its
// exit code; 1 and 3 (failed, partial) are allowed, anything else fails.
func runFaulty(t *testing.T, emu *emulator, lake string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hdcBinary(t), "run", "--config", filepath.Join(repoRoot(t), "configs", "demo.yaml"))
	cmd.Env = childEnv(append([]string{"HDC_SINK_URL=file://" + lake, "HDC_CABS=off"}, emu.env()...))
	cmd.Dir = t.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exitErr) && exitErr.Exited() && exitErr.ExitCode() != 2:
		t.Logf("faulty run exited %d: %s", exitErr.ExitCode(), tail(stderr.String(), 600))
		return exitErr.ExitCode()
	}
	t.Fatalf("faulty run: %v\n%s", err, tail(stderr.String(), 2000))
	return -1
}
