package deploy

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// runtimeStage returns the Dockerfile's last stage (FROM scratch onwards)
// with its COPY --from=build sources rewritten to files of a build
// context: the shipped runtime stage, buildable without the build stage's
// Go image (this machine cannot pull images).
func runtimeStage(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.LastIndex(text, "\nFROM scratch")
	if i < 0 {
		t.Fatal("the Dockerfile has no FROM scratch runtime stage")
	}
	stage := text[i+1:]
	sources := map[string]string{
		"/etc/ssl/certs/ca-certificates.crt": "ca-certificates.crt",
		"/out/hdc-export":                    "hdc-export",
		"/out/tmp":                           "tmp",
	}
	copyFrom := regexp.MustCompile(`(?m)^COPY --from=build ((?:--\S+ )*)(\S+) (\S+)$`)
	stage = copyFrom.ReplaceAllStringFunc(stage, func(l string) string {
		m := copyFrom.FindStringSubmatch(l)
		src, ok := sources[m[2]]
		if !ok {
			t.Fatalf("runtime stage copies %s from the build stage; the test knows no file for it", m[2])
		}
		return "COPY " + m[1] + src + " " + m[3]
	})
	if strings.Contains(stage, "--from=") {
		t.Fatalf("runtime stage left with a copy from another stage:\n%s", stage)
	}
	return stage
}

// TestImageBuilds builds the image's runtime stage with buildah (no
// daemon, no registry: FROM scratch, a static binary built here the way
// the build stage builds it, and the host's CA certificates), then checks
// the image: its config (non-root numeric user, entrypoint, command,
// TMPDIR), a static binary that runs and prints its version, the CA
// bundle, and a /tmp the user can write its spill files to. Containers cannot be run on
// this machine (podman fails on setrlimit), so the binary is run from the
// mounted image. CI installs buildah; elsewhere the test is skipped
// without it. It needs root (buildah's vfs storage).
func TestImageBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a container image")
	}
	buildah, err := exec.LookPath("buildah")
	if err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but buildah is missing (apt-get install buildah) or not root: %v", err)
		}
		t.Skip("needs buildah and root")
	}
	ctx := t.TempDir()
	stage := runtimeStage(t)
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(stage), 0o644); err != nil {
		t.Fatal(err)
	}
	const version = "v9.9.9-imagetest"
	build := exec.Command("go", "build", "-buildvcs=false", "-trimpath",
		"-ldflags", "-s -w -X github.com/hdc-export/hdc-export/internal/version.version="+version,
		"-o", filepath.Join(ctx, "hdc-export"), "../cmd/hdc-export")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Skipf("the host has no CA bundle to copy: %v", err)
	}
	if err := os.WriteFile(filepath.Join(ctx, "ca-certificates.crt"), certs, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(ctx, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}

	storage := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		args = append([]string{"--root", filepath.Join(storage, "root"), "--runroot", filepath.Join(storage, "run"), "--storage-driver", "vfs"}, args...)
		out, err := exec.Command(buildah, args...).Output()
		if err != nil {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("buildah %v: %v\n%s%s", args, err, out, stderr)
		}
		return strings.TrimSpace(string(out))
	}
	const tag = "localhost/hdc-export:imagetest"
	run("bud", "--isolation", "chroot", "-f", filepath.Join(ctx, "Dockerfile"), "-t", tag, ctx)
	t.Cleanup(func() {
		exec.Command(buildah, "--root", filepath.Join(storage, "root"), "--runroot", filepath.Join(storage, "run"), "--storage-driver", "vfs", "rm", "-a").Run()
	})

	var img struct {
		OCIv1 struct {
			Config struct {
				User       string
				Env        []string
				Entrypoint []string
				Cmd        []string
			} `json:"config"`
		}
	}
	if err := json.Unmarshal([]byte(run("inspect", "--type", "image", tag)), &img); err != nil {
		t.Fatal(err)
	}
	c := img.OCIv1.Config
	if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/hdc-export"}) ||
		len(c.Cmd) == 0 || c.Cmd[0] != "run" || !slices.Contains(c.Env, "TMPDIR=/tmp") {
		t.Errorf("image config %+v", c)
	}

	ctr := run("from", tag)
	root := run("mount", ctr)
	bin := filepath.Join(root, "usr/local/bin/hdc-export")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the image's binary is dynamically linked: it cannot run on scratch")
		}
	}
	f.Close()
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), version) {
		t.Errorf("the image's binary: version %q, %v; want %s", out, err, version)
	}
	if info, err := os.Stat(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt")); err != nil || info.Size() == 0 {
		t.Errorf("CA bundle in the image: %v", err)
	}
	info, err := os.Stat(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := info.Sys().(*syscall.Stat_t)
	if !info.IsDir() || st == nil || st.Uid != 65532 || info.Mode().Perm()&0o700 != 0o700 {
		t.Errorf("/tmp in the image: %v owned by %v, want a folder the user 65532 can write", info.Mode(), st)
	}
	run("umount", ctr)
}
