package sinktest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hdc-export/hdc-export/sinks"
)

// RunInventory runs only the contract of sinks.Inventory (the cases whose
// names start with "Inventory"), as Run does; it suits a sink whose other
// abilities another Run already covers, such as the same store on a
// versioned bucket. newSink must return a sink that implements
// sinks.Inventory; the cases fail otherwise.
func RunInventory(t *testing.T, newSink func(t *testing.T) sinks.Sink) {
	t.Helper()
	for _, c := range cases {
		if !strings.HasPrefix(c.name, "Inventory") {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			s := newSink(t)
			if s == nil {
				t.Fatal("newSink returned nil")
			}
			if _, ok := s.(sinks.Inventory); !ok {
				t.Fatalf("%T does not implement sinks.Inventory", s)
			}
			c.run(t, s)
		})
	}
}

// inventory returns the sink's sinks.Inventory, or skips the test.
func inventory(t *testing.T, s sinks.Sink) sinks.Inventory {
	t.Helper()
	inv, ok := s.(sinks.Inventory)
	if !ok {
		t.Skipf("%T does not implement sinks.Inventory", s)
	}
	return inv
}

// settings reads the store's settings or fails the test.
func settings(t *testing.T, inv sinks.Inventory) sinks.Settings {
	t.Helper()
	st, err := inv.Settings(t.Context())
	if err != nil {
		t.Fatalf("Settings: %v", err)
	}
	switch st.Versioning {
	case "", sinks.VersioningEnabled, sinks.VersioningSuspended:
	default:
		t.Fatalf("Settings: Versioning = %q, want \"\", %q or %q", st.Versioning, sinks.VersioningEnabled, sinks.VersioningSuspended)
	}
	return st
}

// walkAll returns the items Walk reports, in its order.
func walkAll(t *testing.T, inv sinks.Inventory) []sinks.Item {
	t.Helper()
	var items []sinks.Item
	if err := inv.Walk(t.Context(), func(it sinks.Item) error {
		items = append(items, it)
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return items
}

// mustDestroy destroys items and fails the test on any failure or error.
func mustDestroy(t *testing.T, inv sinks.Inventory, items []sinks.Item) {
	t.Helper()
	failures, err := inv.Destroy(t.Context(), items)
	for _, f := range failures {
		t.Errorf("Destroy: %s: %v", describeItem(f.Item), f.Err)
	}
	if err != nil {
		t.Fatalf("Destroy(%d items): %v", len(items), err)
	}
	if len(failures) > 0 {
		t.FailNow()
	}
}

// wantWalkEmpty fails the test unless Walk reports nothing.
func wantWalkEmpty(t *testing.T, inv sinks.Inventory) {
	t.Helper()
	if items := walkAll(t, inv); len(items) > 0 {
		t.Errorf("Walk after destroying everything:\n%s", describeItems(items))
	}
}

// itemsOf returns the items whose key is key and whose kind is one of
// kinds (any kind if none is given).
func itemsOf(items []sinks.Item, key string, kinds ...sinks.ItemKind) []sinks.Item {
	var out []sinks.Item
	for _, it := range items {
		if it.Key == key && (len(kinds) == 0 || slices.Contains(kinds, it.Kind)) {
			out = append(out, it)
		}
	}
	return out
}

// sameItem reports whether a and b are the same item, by what identifies
// it and its size.
func sameItem(a, b sinks.Item) bool {
	return a.Key == b.Key && a.Kind == b.Kind && a.VersionID == b.VersionID &&
		a.UploadID == b.UploadID && a.Latest == b.Latest && a.Size == b.Size
}

func describeItem(it sinks.Item) string {
	s := fmt.Sprintf("%s %s", short(it.Key), it.Kind)
	if it.VersionID != "" {
		s += " version " + it.VersionID
	}
	if it.UploadID != "" {
		s += " upload " + it.UploadID
	}
	if it.Latest {
		s += " (latest)"
	}
	return s + fmt.Sprintf(", %d bytes", it.Size)
}

func describeItems(items []sinks.Item) string {
	lines := make([]string, len(items))
	for i, it := range items {
		lines[i] = "\t" + describeItem(it)
	}
	return strings.Join(lines, "\n")
}

// testInventoryWalk checks that Walk reports every object that Put stored,
// once, as a current object with its size.
func testInventoryWalk(t *testing.T, s sinks.Sink) {
	inv := inventory(t, s)
	st := settings(t, inv)
	bodies := map[string][]byte{
		"top":                       []byte("t"),
		"w/a":                       genBytes(21, 10),
		"w/b/empty":                 nil,
		"w/b/date=2026-10-01/p.bin": genBytes(22, 3000),
	}
	putAll(t, s, bodies)

	items := walkAll(t, inv)
	got := map[string]int64{}
	for _, it := range items {
		if it.Kind != sinks.ItemObject {
			t.Errorf("Walk reported %s; want only objects", describeItem(it))
			continue
		}
		if _, dup := got[it.Key]; dup {
			t.Errorf("Walk reported %s twice", short(it.Key))
		}
		got[it.Key] = it.Size
		if it.ModTime.IsZero() {
			t.Errorf("Walk: %s has no ModTime", describeItem(it))
		}
		if versioned := st.Versioning != ""; versioned != (it.VersionID != "") {
			t.Errorf("Walk: %s on a store with versioning %q", describeItem(it), st.Versioning)
		}
	}
	if want := sizes(bodies); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Walk found (key: size) %v, want %v", got, want)
	}
}

// testInventoryWalkStops checks that Walk stops at fn's first error and
// returns it.
func testInventoryWalkStops(t *testing.T, s sinks.Sink) {
	inv := inventory(t, s)
	putAll(t, s, map[string][]byte{"a/1": nil, "a/2": nil, "b/3": nil})
	errStop := errors.New("stop here")
	calls := 0
	err := inv.Walk(t.Context(), func(sinks.Item) error {
		calls++
		return errStop
	})
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("Walk with a failing fn = %v after %d calls, want fn's error after 1", err, calls)
	}
}

// testInventoryDestroyAll checks that destroying everything Walk reports
// leaves nothing, to Walk or to List.
func testInventoryDestroyAll(t *testing.T, s sinks.Sink) {
	inv := inventory(t, s)
	bodies := map[string][]byte{
		"x/date=2026-10-01/part-0.parquet": genBytes(23, 2000),
		"x/date=2026-10-01/part-1.parquet": genBytes(24, 10),
		"x/date=2026-10-02/part-0.parquet": nil,
		"y":                                []byte("y"),
	}
	putAll(t, s, bodies)
	items := walkAll(t, inv)
	if len(items) != len(bodies) {
		t.Fatalf("Walk reported %d items, want %d:\n%s", len(items), len(bodies), describeItems(items))
	}
	mustDestroy(t, inv, items)
	wantWalkEmpty(t, inv)
	wantList(t, s, "", nil)
	wantNotFound(t, s, "y")

	if f, err := inv.Destroy(t.Context(), nil); len(f) > 0 || err != nil {
		t.Errorf("Destroy(nothing) = %v, %v; want nothing", f, err)
	}
}

// testInventoryReplaced checks that a replaced object leaves a noncurrent
// version exactly when versioning is enabled (with versioning suspended,
// or never enabled, the new object replaces the old one), and that
// destroying the noncurrent versions leaves the current object alone.
func testInventoryReplaced(t *testing.T, s sinks.Sink) {
	inv := inventory(t, s)
	st := settings(t, inv)
	const key = "r/obj"
	old, cur := genBytes(25, 5), genBytes(26, 8)
	mustPut(t, s, key, old)
	mustPut(t, s, key, cur)

	items := walkAll(t, inv)
	objects := itemsOf(items, key, sinks.ItemObject)
	if len(objects) != 1 || objects[0].Size != int64(len(cur)) || st.Versioning != "" && !objects[0].Latest {
		t.Fatalf("Walk: want one current object of %d bytes, got:\n%s", len(cur), describeItems(items))
	}
	versions := itemsOf(items, key, sinks.ItemVersion)
	wantVersions := 0
	if st.Versioning == sinks.VersioningEnabled {
		wantVersions = 1
	}
	if len(versions) != wantVersions || len(items) != 1+wantVersions {
		t.Fatalf("Walk with versioning %q: want the current object and %d noncurrent version(s), got:\n%s",
			st.Versioning, wantVersions, describeItems(items))
	}
	for _, v := range versions {
		if v.Latest || v.Size != int64(len(old)) || v.VersionID == "" || v.VersionID == objects[0].VersionID {
			t.Errorf("noncurrent version %s, current %s; want the old %d bytes under its own version id",
				describeItem(v), describeItem(objects[0]), len(old))
		}
	}

	mustDestroy(t, inv, versions)
	if items := walkAll(t, inv); len(items) != 1 || !sameItem(items[0], objects[0]) {
		t.Errorf("Walk after destroying the noncurrent versions:\n%s\nwant only %s", describeItems(items), describeItem(objects[0]))
	}
	wantBody(t, s, key, cur)
}

// testInventoryDeleted checks what a deleted key leaves behind: nothing on
// a store that was never versioned; a current delete marker on a
// versioned one, with the data's versions when versioning is enabled (with
// versioning suspended, the delete replaces the null version with the
// marker). Destroying the versions in one call and the marker in a second
// leaves nothing.
func testInventoryDeleted(t *testing.T, s sinks.Sink) {
	inv := inventory(t, s)
	st := settings(t, inv)
	const key = "d/obj"
	mustPut(t, s, key, genBytes(27, 7))
	mustPut(t, s, key, genBytes(28, 9))
	mustPut(t, s, "d/kept", []byte("kept"))
	if err := s.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete: %v", err)
	}

	items := walkAll(t, inv)
	all := itemsOf(items, key)
	markers := itemsOf(items, key, sinks.ItemDeleteMarker)
	versions := itemsOf(items, key, sinks.ItemVersion)
	switch st.Versioning {
	case "":
		if len(all) > 0 {
			t.Fatalf("Walk on an unversioned store after Delete:\n%s\nwant nothing for %s", describeItems(all), short(key))
		}
		return
	case sinks.VersioningEnabled:
		if len(versions) != 2 {
			t.Errorf("Walk after Delete: want 2 noncurrent versions, got:\n%s", describeItems(all))
		}
	}
	if len(markers) != 1 || !markers[0].Latest || markers[0].VersionID == "" {
		t.Fatalf("Walk after Delete: want one current delete marker with a version id, got:\n%s", describeItems(all))
	}
	if len(markers)+len(versions) != len(all) {
		t.Fatalf("Walk after Delete: want only versions and a delete marker, got:\n%s", describeItems(all))
	}
	for _, v := range versions {
		if v.Latest || v.VersionID == "" {
			t.Errorf("Walk after Delete: %s", describeItem(v))
		}
	}

	mustDestroy(t, inv, versions)
	if got := itemsOf(walkAll(t, inv), key); len(got) != 1 || !sameItem(got[0], markers[0]) {
		t.Errorf("Walk after destroying the versions:\n%s\nwant only %s", describeItems(got), describeItem(markers[0]))
	}
	mustDestroy(t, inv, markers)
	if got := itemsOf(walkAll(t, inv), key); len(got) > 0 {
		t.Errorf("Walk after destroying the delete marker:\n%s", describeItems(got))
	}
	wantBody(t, s, "d/kept", []byte("kept"))
	wantList(t, s, "", map[string]int64{"d/kept": 4})
}

// testInventoryDestroyGone checks that destroying items that are already
// gone succeeds.
func testInventoryDestroyGone(t *testing.T, s sinks.Sink) {
	inv := inventory(t, s)
	putAll(t, s, map[string][]byte{"g/1": []byte("one"), "g/sub/2": []byte("two")})
	items := walkAll(t, inv)
	mustDestroy(t, inv, items)
	mustDestroy(t, inv, items) // again: already gone
	wantWalkEmpty(t, inv)

	// On a versioned store, Destroy removes the version Walk reported,
	// not what the key holds later; except S3's "null" version (written
	// while versioning is suspended), whose id a later write reuses.
	mustPut(t, s, "g/1", []byte("new"))
	old := itemsOf(items, "g/1")
	if st := settings(t, inv); st.Versioning != "" && len(old) == 1 && old[0].VersionID != "null" {
		mustDestroy(t, inv, old)
		wantBody(t, s, "g/1", []byte("new"))
	}
}
