package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecretsNeverLeak runs cycles against an emulator that injects every
// fault kind, and one with a wrong client secret, and greps everything the
// runner printed (logs, errors, the JSON summary) and wrote to the lake's
// runner state for the client secret, bearer tokens and link signatures.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	const secret, wrong = demoSecret, "bogus-Credential-77"
	emu := startEmulator(t, "--rows-per-day", "20",
		"--faults", "429=0.1,500=0.1,401=0.05,truncate=0.05,expire=0.1,slow=0.05,retry-after=0,slow-delay=10ms")
	lake := filepath.Join(t.TempDir(), "lake")
	var outputs []string
	for _, sec := range []string{secret, secret, wrong} {
		env := childEnv([]string{
			"HDC_SINK_URL=file://" + lake, "HDC_API_URL=" + emu.URL, "HDC_TOKEN_URL=" + emu.TokenURL,
			"HDC_TENANT_ID=" + demoTenant, "HDC_CLIENT_ID=" + demoClient, "HDC_CLIENT_SECRET=" + sec,
		})
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, hdcBinary(t), "run", "--config", filepath.Join(repoRoot(t), "configs", "demo.yaml"), "--log-level", "debug")
		cmd.Env, cmd.Dir = env, t.TempDir()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		t.Logf("run with faults: exit %v", err)
		outputs = append(outputs, stdout.String(), stderr.String())
	}
	state := treeHashes(t, filepath.Join(lake, "_hdc"))
	for rel := range state {
		b := readFile(t, filepath.Join(lake, "_hdc", rel))
		outputs = append(outputs, string(b))
	}
	all := strings.Join(outputs, "\n")
	if !strings.Contains(all, "401") && !strings.Contains(all, "invalid_client") {
		t.Errorf("the wrong-secret run did not report an authentication failure:\n%s", tail(all, 2000))
	}
	for _, leak := range []string{secret, wrong, "Bearer ", "access_token", "sig=", "se="} {
		if strings.Contains(all, leak) {
			i := strings.Index(all, leak)
			t.Errorf("output contains %q: …%s…", leak, all[max(0, i-80):min(len(all), i+80)])
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
