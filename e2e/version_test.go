package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const versionPkg = "github.com/hdc-export/hdc-export/internal/version"

// buildWith builds the binary into a folder of the test with extra go
// build flags.
func buildWith(t *testing.T, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hdc-export")
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", bin, "./cmd/hdc-export")...)
	cmd.Dir = repoRoot(t)
	cmd.Env = childEnv(nil)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", flags, err, out)
	}
	return bin
}

// versionOf runs `bin version` and `bin --version`, which must agree.
func versionOf(t *testing.T, bin string) string {
	t.Helper()
	a, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", bin, err)
	}
	b, err := exec.Command(bin, "--version").Output()
	if err != nil || string(a) != string(b) {
		t.Fatalf("--version printed %q (%v), version printed %q", b, err, a)
	}
	return strings.TrimSpace(string(a))
}

// createdBy is every distinct created_by of the lake's Parquet files, as
// DuckDB reads them.
func createdBy(t *testing.T, lake string) []string {
	t.Helper()
	return queryStrings(t, openDuckDB(t), "SELECT DISTINCT created_by FROM parquet_file_metadata("+
		sqlString(filepath.Join(lake, "**", "*.parquet"))+") ORDER BY 1")
}

// TestVersionStampedByLinker: a binary stamped with -ldflags -X (the
// container build's way, where no Git checkout is at hand) prints that
// version and revision, and every Parquet file it writes, the cab index
// included, says the same in created_by.
func TestVersionStampedByLinker(t *testing.T) {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	rev := hex.EncodeToString(b)
	bin := buildWith(t, "-ldflags", "-X "+versionPkg+".version=v9.8.7-e2e -X "+versionPkg+".revision="+rev)
	v := versionOf(t, bin)
	if want := "hdc-export version v9.8.7-e2e (build " + rev + ")"; v != want {
		t.Fatalf("version %q, want %q", v, want)
	}
	lake := t.TempDir()
	cmd := exec.Command(bin, "run", "--config", filepath.Join(repoRoot(t), "configs", "demo.yaml"))
	cmd.Env = childEnv([]string{"HDC_SINK_URL=file://" + lake})
	cmd.Dir = t.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run: %v\n%s", err, tail(string(out), 3000))
	}
	got := createdBy(t, lake)
	if len(got) != 1 || got[0] != v {
		t.Errorf("created_by of the lake's files %q, want only %q", got, v)
	}
	if len(parquetFiles(t, lake, "cab_index")) == 0 {
		t.Error("the run wrote no cab index: created_by of the cab index is untested")
	}
}

// TestVersionStampedByGit: built in a Git checkout with VCS stamping, the
// version names the checkout's commit. The test builds a fresh clone of
// HEAD (a worktree's .git is a file, which go build does not stamp from,
// and a clone has no uncommitted changes); CI's GOFLAGS=-buildvcs=false is
// overridden by the flag.
func TestVersionStampedByGit(t *testing.T) {
	root := repoRoot(t)
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a usable Git checkout (%v): TestVersionStampedByLinker covers stamping", err)
	}
	rev := strings.TrimSpace(string(head))
	clone := filepath.Join(t.TempDir(), "src")
	for _, args := range [][]string{{"clone", "-q", "--no-checkout", root, clone}, {"-C", clone, "checkout", "-q", rev}} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	bin := filepath.Join(t.TempDir(), "hdc-export")
	cmd := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/hdc-export")
	cmd.Dir = clone
	cmd.Env = childEnv(nil)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=true: %v\n%s", err, out)
	}
	v := versionOf(t, bin)
	if want := " (build " + rev + ")"; !strings.HasPrefix(v, "hdc-export version v") || !strings.HasSuffix(v, want) {
		t.Errorf("version %q, want a module version and the suffix %q", v, want)
	}
}
