package sinktest

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/hdc-export/hdc-export/sinks"
)

func testRoundTrip(t *testing.T, s sinks.Sink) {
	text := []byte("hello, sink\n")
	mustPut(t, s, "greeting.txt", text)
	wantBody(t, s, "greeting.txt", text)

	// A plain stream (no Seek, no WriteTo) of several chunks.
	bin := genBytes(1, 300<<10)
	if err := s.Put(t.Context(), "bin/blob", onlyReader{bytes.NewReader(bin)}); err != nil {
		t.Fatalf("Put(stream): %v", err)
	}
	wantBody(t, s, "bin/blob", bin)
	wantList(t, s, "", map[string]int64{"greeting.txt": int64(len(text)), "bin/blob": int64(len(bin))})
}

func testGetMissing(t *testing.T, s sinks.Sink) {
	wantNotFound(t, s, "missing")
	wantNotFound(t, s, "no/such/folder/object")
	mustPut(t, s, "present/x", []byte("x"))
	wantNotFound(t, s, "present/y")
	wantNotFound(t, s, "present/x/below-an-object")
}

func testPutReplaces(t *testing.T, s sinks.Sink) {
	long := genBytes(2, 1<<20)
	short := []byte("short")
	mustPut(t, s, "obj", long)
	mustPut(t, s, "obj", short)
	wantBody(t, s, "obj", short) // no stale tail of the longer body
	mustPut(t, s, "obj", short)  // idempotent
	wantBody(t, s, "obj", short)
	wantList(t, s, "", map[string]int64{"obj": int64(len(short))})
}

func testEmptyObject(t *testing.T, s sinks.Sink) {
	mustPut(t, s, "empty", nil)
	if err := s.Put(t.Context(), "dir/empty-stream", onlyReader{strings.NewReader("")}); err != nil {
		t.Fatalf("Put(empty stream): %v", err)
	}
	wantBody(t, s, "empty", []byte{})
	wantBody(t, s, "dir/empty-stream", []byte{})
	wantList(t, s, "", map[string]int64{"empty": 0, "dir/empty-stream": 0})

	// Replacing a body with nothing.
	mustPut(t, s, "was-full", []byte("content"))
	mustPut(t, s, "was-full", nil)
	wantBody(t, s, "was-full", []byte{})
}

// maxKey returns a key of exactly sinks.MaxKeyLen bytes in short segments.
func maxKey() string {
	seg := strings.Repeat("m", 99)
	var b strings.Builder
	for b.Len()+len(seg)+1 < sinks.MaxKeyLen {
		b.WriteString(seg)
		b.WriteByte('/')
	}
	b.WriteString(strings.Repeat("z", sinks.MaxKeyLen-b.Len()))
	return b.String()
}

func testKeys(t *testing.T, s sinks.Sink) {
	keys := []string{
		"ds/date=2026-11-20/part-00000.parquet",
		"ds/date=2026-11-20/hour=07/part-00001.parquet",
		"with space/file name.txt",
		" leading and trailing ",
		"ünïcødé/日本語-データ.bin",
		"emoji/🦫.json",
		"punct/a+b&c=d;e,f@g!h'(i)$~_[j]{k}.txt",
		"percent/%41%2F?q=1#frag",
		".hidden/.dotfile",
		"dots/...x/..y/z..",
		"-leading-dash",
		maxKey(),
	}
	bodies := make(map[string][]byte, len(keys))
	for i, k := range keys {
		if err := sinks.ValidateKey(k); err != nil {
			t.Fatalf("suite bug: %s is not a valid key: %v", short(k), err)
		}
		bodies[k] = genBytes(uint64(100+i), 10+i)
		mustPut(t, s, k, bodies[k])
	}
	for _, k := range keys {
		wantBody(t, s, k, bodies[k])
	}
	wantList(t, s, "", sizes(bodies))
}

func testFolderIsNotObject(t *testing.T, s sinks.Sink) {
	mustPut(t, s, "dir/sub/obj", []byte("x"))
	wantNotFound(t, s, "dir")
	wantNotFound(t, s, "dir/sub")
	if st, ok := s.(sinks.Stater); ok {
		if _, err := st.Stat(t.Context(), "dir/sub"); !errors.Is(err, sinks.ErrNotFound) {
			t.Errorf("Stat(folder) = %v, want ErrNotFound", err)
		}
	}
	if err := s.Delete(t.Context(), "dir", "dir/sub"); err != nil {
		t.Errorf("Delete(folders) = %v, want nil", err)
	}
	wantBody(t, s, "dir/sub/obj", []byte("x"))
	wantList(t, s, "", map[string]int64{"dir/sub/obj": 1})
}

// invalidKeys are keys every sink must reject with sinks.ErrInvalidKey.
var invalidKeys = []string{
	"",
	"/abs",
	"/",
	"a/../b",
	"../x",
	"..",
	".",
	"./a",
	"a/.",
	"a//b",
	"a/./b",
	"a/",
	`a\b`,
	`..\x`,
	strings.Repeat("k", 2000),
	strings.Repeat("k/", sinks.MaxKeyLen/2) + "k", // MaxKeyLen+1 bytes
	"a\x00b",
	"a\nb",
	"tab\tkey",
	"del\x7f",
}

func testInvalidKeys(t *testing.T, s sinks.Sink) {
	ctx := t.Context()
	co, hasCreateOnly := s.(sinks.CreateOnly)
	st, hasStat := s.(sinks.Stater)
	for _, k := range invalidKeys {
		if err := s.Put(ctx, k, strings.NewReader("x")); !errors.Is(err, sinks.ErrInvalidKey) {
			t.Errorf("Put(%s) = %v, want ErrInvalidKey", short(k), err)
		}
		if rc, err := s.Get(ctx, k); !errors.Is(err, sinks.ErrInvalidKey) {
			if err == nil {
				rc.Close()
			}
			t.Errorf("Get(%s) = %v, want ErrInvalidKey", short(k), err)
		}
		if err := s.Delete(ctx, k); !errors.Is(err, sinks.ErrInvalidKey) {
			t.Errorf("Delete(%s) = %v, want ErrInvalidKey", short(k), err)
		}
		if hasCreateOnly {
			if err := co.PutIfAbsent(ctx, k, strings.NewReader("x")); !errors.Is(err, sinks.ErrInvalidKey) {
				t.Errorf("PutIfAbsent(%s) = %v, want ErrInvalidKey", short(k), err)
			}
		}
		if hasStat {
			if _, err := st.Stat(ctx, k); !errors.Is(err, sinks.ErrInvalidKey) {
				t.Errorf("Stat(%s) = %v, want ErrInvalidKey", short(k), err)
			}
		}
	}
	// One invalid key fails a batch.
	if err := s.Delete(ctx, "fine", "../x"); !errors.Is(err, sinks.ErrInvalidKey) {
		t.Errorf("Delete(valid, invalid) = %v, want ErrInvalidKey", err)
	}
	wantList(t, s, "", nil) // nothing was written
}

func testInvalidPrefixes(t *testing.T, s sinks.Sink) {
	mustPut(t, s, "a/b", []byte("x"))
	for _, p := range []string{"/", "/a", "../", "a/../", "a/./", "a//", `a\`, "a\x00", "a\n"} {
		called := false
		err := s.List(t.Context(), p, func(sinks.Object) error {
			called = true
			return nil
		})
		if !errors.Is(err, sinks.ErrInvalidKey) {
			t.Errorf("List(%q) = %v, want ErrInvalidKey", p, err)
		}
		if called {
			t.Errorf("List(%q) called fn", p)
		}
	}
}
