package local_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/sinks"
	"github.com/hdc-export/hdc-export/sinks/local"
	"github.com/hdc-export/hdc-export/sinks/sinktest"
)

func TestConformance(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) sinks.Sink {
		return newStore(t, t.TempDir())
	})
}

func newStore(t *testing.T, dir string) *local.Store {
	t.Helper()
	s, err := local.New(dir)
	if err != nil {
		t.Fatalf("New(%q): %v", dir, err)
	}
	return s
}

// tree returns every file and folder below dir as slash paths, folders with
// a trailing slash, sorted.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			rel += "/"
		}
		paths = append(paths, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(paths)
	return paths
}

func wantTree(t *testing.T, dir string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := tree(t, dir); !slices.Equal(got, want) {
		t.Errorf("files below root:\ngot  %q\nwant %q", got, want)
	}
}

func put(t *testing.T, s *local.Store, key, body string) {
	t.Helper()
	if err := s.Put(t.Context(), key, strings.NewReader(body)); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func read(t *testing.T, s *local.Store, key string) (string, error) {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

func TestNew(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	s := newStore(t, "rel/lake")
	if fi, err := os.Stat(filepath.Join(base, "rel", "lake")); err != nil || !fi.IsDir() {
		t.Fatalf("root not created: %v", err)
	}
	abs, err := filepath.Abs("rel/lake")
	if err != nil {
		t.Fatal(err)
	}
	if want := "file://" + filepath.ToSlash(abs); s.String() != want {
		t.Errorf("String() = %q, want %q", s.String(), want)
	}

	if _, err := local.New(""); err == nil {
		t.Error(`New("") succeeded`)
	}
	if err := os.WriteFile("file", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := local.New("file"); err == nil {
		t.Error("New(regular file) succeeded")
	}
}

func TestStringEscapes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "with space#1")
	s := newStore(t, dir)
	if got := s.String(); !strings.HasPrefix(got, "file:///") || !strings.HasSuffix(got, "/with%20space%231") {
		t.Errorf("String() = %q, want an escaped file URL", got)
	}
}

func TestPermissions(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	put(t, s, "d/obj", "x")
	for name, max := range map[string]fs.FileMode{"d/obj": 0o640, "d": 0o750} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if extra := fi.Mode().Perm() &^ max; extra != 0 {
			t.Errorf("%s has mode %v, more than %v", name, fi.Mode().Perm(), max)
		}
	}
}

func TestFailedPutLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	put(t, s, "keep/obj", "old")

	errBoom := errors.New("boom")
	failing := func() io.Reader {
		return io.MultiReader(strings.NewReader(strings.Repeat("x", 1<<20)), errReader{errBoom})
	}
	for _, key := range []string{"keep/obj", "new/deep/folder/obj"} {
		if err := s.Put(t.Context(), key, failing()); !errors.Is(err, errBoom) {
			t.Errorf("Put(%q) = %v, want the reader's error", key, err)
		}
		if err := s.PutIfAbsent(t.Context(), key+"2", failing()); !errors.Is(err, errBoom) {
			t.Errorf("PutIfAbsent(%q) = %v, want the reader's error", key+"2", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.Put(ctx, key, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
			t.Errorf("Put(%q, cancelled) = %v, want context.Canceled", key, err)
		}
	}
	// No temporary file and no folder created for the failed puts.
	wantTree(t, dir, "keep/", "keep/obj")
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestDeletePrunesEmptyFolders(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	put(t, s, "ds/date=2026-11-20/part-0", "a")
	put(t, s, "ds/date=2026-11-21/hour=01/part-0", "b")
	put(t, s, "ds/meta", "c")

	if err := s.Delete(t.Context(), "ds/date=2026-11-21/hour=01/part-0"); err != nil {
		t.Fatal(err)
	}
	wantTree(t, dir, "ds/", "ds/date=2026-11-20/", "ds/date=2026-11-20/part-0", "ds/meta")

	if err := s.Delete(t.Context(), "ds/date=2026-11-20/part-0", "ds/meta"); err != nil {
		t.Fatal(err)
	}
	wantTree(t, dir)
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("root removed: %v", err)
	}
}

func TestRemoveStaleTemp(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	put(t, s, "data/obj", "keep")
	old := time.Now().Add(-2 * time.Hour)
	write := func(name string, mtime time.Time) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write(".tmp-crashed-at-root", old)
	write("data/.tmp-crashed", old)
	write("gone/partition/.tmp-crashed", old) // its folders go too
	write("data/.tmp-live", time.Now())

	// Temporary files are never listed.
	var keys []string
	if err := s.List(t.Context(), "", func(o sinks.Object) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"data/obj"}) {
		t.Errorf("List = %q, want [data/obj]", keys)
	}

	n, err := s.RemoveStaleTemp(time.Hour)
	if err != nil || n != 3 {
		t.Errorf("RemoveStaleTemp = %d, %v; want 3, nil", n, err)
	}
	wantTree(t, dir, "data/", "data/.tmp-live", "data/obj")

	n, err = s.RemoveStaleTemp(0)
	if err != nil || n != 1 {
		t.Errorf("RemoveStaleTemp(0) = %d, %v; want 1, nil", n, err)
	}
	wantTree(t, dir, "data/", "data/obj")
}

func TestReservedKeys(t *testing.T) {
	s := newStore(t, t.TempDir())
	for _, key := range []string{".tmp-x", "a/.tmp-b", "a/.tmp-b/c"} {
		if err := s.Put(t.Context(), key, strings.NewReader("x")); !errors.Is(err, sinks.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	// Only a segment's start is reserved.
	put(t, s, "a/x.tmp-b", "ok")
}

func TestLongSegment(t *testing.T) {
	s := newStore(t, t.TempDir())
	key := "d/" + strings.Repeat("s", 300) // valid key, too long a file name
	if err := s.Put(t.Context(), key, strings.NewReader("x")); !errors.Is(err, sinks.ErrInvalidKey) {
		t.Errorf("Put(300-byte segment) = %v, want ErrInvalidKey", err)
	}
}

func TestKeyFolderConflict(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	put(t, s, "a", "object")
	put(t, s, "x/y", "object below x")

	if err := s.Put(t.Context(), "a/b", strings.NewReader("z")); !errors.Is(err, sinks.ErrPermanent) {
		t.Errorf("Put(a/b) below object a = %v, want ErrPermanent", err)
	}
	if err := s.Put(t.Context(), "x", strings.NewReader("z")); !errors.Is(err, sinks.ErrPermanent) {
		t.Errorf("Put(x) over folder x = %v, want ErrPermanent", err)
	}
	if err := s.PutIfAbsent(t.Context(), "x", strings.NewReader("z")); !errors.Is(err, sinks.ErrPermanent) {
		t.Errorf("PutIfAbsent(x) over folder x = %v, want ErrPermanent", err)
	}
	wantTree(t, dir, "a", "x/", "x/y")
}

func TestSymlinksCannotEscape(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, target := range map[string]string{"evil-dir": outside, "evil-file": secret, "evil-rel": "../" + filepath.Base(outside)} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Skipf("symlinks unsupported: %v", err)
		}
	}
	s := newStore(t, dir)
	ctx := t.Context()

	for _, key := range []string{"evil-dir/secret", "evil-file", "evil-rel/secret"} {
		if got, err := read(t, s, key); err == nil {
			t.Errorf("Get(%q) read %d bytes from outside the root", key, len(got))
		}
		if _, err := s.Stat(ctx, key); err == nil {
			t.Errorf("Stat(%q) succeeded outside the root", key)
		}
	}
	for _, key := range []string{"evil-dir/new", "evil-rel/new"} {
		if err := s.Put(ctx, key, strings.NewReader("x")); err == nil {
			t.Errorf("Put(%q) succeeded outside the root", key)
		}
		if err := s.PutIfAbsent(ctx, key+"2", strings.NewReader("x")); err == nil {
			t.Errorf("PutIfAbsent(%q) succeeded outside the root", key+"2")
		}
	}
	_ = s.Delete(ctx, "evil-dir/secret", "evil-rel/secret")
	if err := s.List(ctx, "", func(o sinks.Object) error {
		t.Errorf("List reported %q", o.Key)
		return nil
	}); err != nil {
		t.Errorf("List: %v", err)
	}
	// Putting over a link replaces the link, not its target.
	put(t, s, "evil-file", "replaced")
	if b, err := os.ReadFile(secret); err != nil || string(b) != "secret" {
		t.Errorf("outside file changed: %q, %v", b, err)
	}
	wantTree(t, outside, "secret")
}

func TestListSkipsForeignFiles(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	put(t, s, "ok", "x")
	for _, name := range []string{`back\slash`, "new\nline", ".tmp-partial"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("ok", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.List(t.Context(), "", func(o sinks.Object) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"ok"}) {
		t.Errorf("List = %q, want [ok]", keys)
	}
}

func TestOpenReaderSurvivesReplace(t *testing.T) {
	s := newStore(t, t.TempDir())
	put(t, s, "obj", "old")
	rc, err := s.Get(t.Context(), "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	put(t, s, "obj", "new body")
	if err := s.Delete(t.Context(), "obj"); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(rc); err != nil || string(b) != "old" {
		t.Errorf("open reader read %q, %v; want old", b, err)
	}
}

func TestRootRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "root")
	s := newStore(t, dir)
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(t.Context(), "obj")
	if errors.Is(err, sinks.ErrNotFound) || !errors.Is(err, sinks.ErrPermanent) {
		t.Errorf("Get with the root gone = %v, want ErrPermanent and not ErrNotFound", err)
	}
}
