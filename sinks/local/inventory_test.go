package local_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hdc-export/hdc-export/sinks"
	"github.com/hdc-export/hdc-export/sinks/local"
)

func walk(t *testing.T, s *local.Store) []sinks.Item {
	t.Helper()
	var items []sinks.Item
	if err := s.Walk(t.Context(), func(it sinks.Item) error {
		items = append(items, it)
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return items
}

// kinds maps each walked key to its kind.
func kinds(items []sinks.Item) map[string]sinks.ItemKind {
	m := make(map[string]sinks.ItemKind, len(items))
	for _, it := range items {
		m[it.Key] = it.Kind
	}
	return m
}

func writeFile(t *testing.T, dir, name, body string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestInventoryOddNames plants names the sink never writes, a temporary
// file, and links to a file and a folder outside the root: Walk reports
// each as it is, links as links without following them, and Destroy
// removes them all, links but not their targets, and the folders emptied.
func TestInventoryOddNames(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, outside, "secret", "secret")
	writeFile(t, outside, "sub/secret", "secret")
	dir := t.TempDir()
	s := newStore(t, dir)
	put(t, s, "ok/part-0", "ok")
	odd := []string{
		`t/date=2026-10-01/back\slash.parquet`,
		"t/date=2026-10-01/ctl\x01.parquet",
		"t/new\nline",
		"t/bad\xff\xfe",
		"t/bad\xff\xfe-folder/inside",
		"t/.tmp-partial",
	}
	for _, name := range odd {
		writeFile(t, dir, name, "odd")
	}
	for name, target := range map[string]string{
		"link-file":  filepath.Join(outside, "secret"),
		"t/link-dir": outside,
		"t/dangling": filepath.Join(outside, "missing"),
	} {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			t.Skipf("symlinks unsupported: %v", err)
		}
	}

	items := walk(t, s)
	want := map[string]sinks.ItemKind{
		"ok/part-0":  sinks.ItemObject,
		"link-file":  sinks.ItemLink,
		"t/link-dir": sinks.ItemLink,
		"t/dangling": sinks.ItemLink,
	}
	for _, name := range odd {
		want[name] = sinks.ItemObject
	}
	if got := kinds(items); !maps.Equal(got, want) {
		t.Errorf("Walk:\ngot  %q\nwant %q", got, want)
	}
	for _, it := range items {
		if it.Kind == sinks.ItemObject && (it.Size == 0 || it.ModTime.IsZero() || !it.Latest) {
			t.Errorf("Walk: %+v, want a size, a time and Latest", it)
		}
	}

	failures, err := s.Destroy(t.Context(), items)
	if err != nil || len(failures) > 0 {
		t.Fatalf("Destroy = %v, %v", failures, err)
	}
	wantTree(t, dir)
	wantTree(t, outside, "secret", "sub/", "sub/secret")
	if items := walk(t, s); len(items) > 0 {
		t.Errorf("Walk after Destroy = %+v", items)
	}
}

// TestDestroyRefuses checks the items Destroy refuses: paths that leave
// the root or are not clean, a folder, and kinds a folder cannot hold.
func TestDestroyRefuses(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, outside, "victim", "v")
	dir := filepath.Join(outside, "root")
	s := newStore(t, dir)
	put(t, s, "d/obj", "x")
	refused := []sinks.Item{
		{Key: "", Kind: sinks.ItemObject},
		{Key: "../victim", Kind: sinks.ItemObject},
		{Key: "d/../../victim", Kind: sinks.ItemObject},
		{Key: filepath.Join(outside, "victim"), Kind: sinks.ItemObject},
		{Key: "d/./obj", Kind: sinks.ItemObject},
		{Key: "d//obj", Kind: sinks.ItemObject},
		{Key: "d", Kind: sinks.ItemObject},
		{Key: "d/obj", Kind: sinks.ItemVersion, VersionID: "1"},
		{Key: "d/obj", Kind: sinks.ItemUpload, UploadID: "1"},
	}
	items := append(slices.Clone(refused), sinks.Item{Key: "missing/obj", Kind: sinks.ItemObject})
	failures, err := s.Destroy(t.Context(), items)
	if err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	var got []sinks.Item
	for _, f := range failures {
		got = append(got, f.Item)
		if f.Err == nil {
			t.Errorf("failure of %q without an error", f.Item.Key)
		}
	}
	if !slices.Equal(got, refused) {
		t.Errorf("Destroy failed %+v,\nwant %+v", got, refused)
	}
	wantTree(t, outside, "root/", "root/d/", "root/d/obj", "victim")

	ctx := t.Context()
	if _, err := s.Destroy(ctx, nil); err != nil {
		t.Errorf("Destroy(nothing) = %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Destroy(cancelled, items[:1]); !errors.Is(err, context.Canceled) {
		t.Errorf("Destroy(cancelled) = %v, want context.Canceled", err)
	}
	if err := s.Walk(cancelled, func(sinks.Item) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Walk(cancelled) = %v, want context.Canceled", err)
	}
	if st, err := s.Settings(ctx); err != nil || st != (sinks.Settings{}) {
		t.Errorf("Settings = %+v, %v; want the zero Settings", st, err)
	}
	if l, err := s.LockOf(ctx, sinks.Item{Key: "d/obj"}); err != nil || l != (sinks.Lock{}) {
		t.Errorf("LockOf = %+v, %v; want the zero Lock", l, err)
	}
}
