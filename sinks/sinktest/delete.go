package sinktest

import (
	"fmt"
	"testing"

	"github.com/hdc-export/hdc-export/sinks"
)

func testDelete(t *testing.T, s sinks.Sink) {
	putAll(t, s, map[string][]byte{
		"d/x":     []byte("x"),
		"d/y":     []byte("yy"),
		"d/sub/z": []byte("zzz"),
	})
	ctx := t.Context()
	if err := s.Delete(ctx, "d/x"); err != nil {
		t.Fatalf("Delete(d/x): %v", err)
	}
	wantNotFound(t, s, "d/x")
	wantList(t, s, "", map[string]int64{"d/y": 2, "d/sub/z": 3})

	if err := s.Delete(ctx, "d/x"); err != nil {
		t.Errorf("Delete(already deleted) = %v, want nil", err)
	}
	if err := s.Delete(ctx, "never/was/here"); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
	if err := s.Delete(ctx); err != nil {
		t.Errorf("Delete() = %v, want nil", err)
	}
	if err := s.Delete(ctx, "d/sub/z"); err != nil {
		t.Fatalf("Delete(d/sub/z): %v", err)
	}
	wantNotFound(t, s, "d/sub/z")
	wantList(t, s, "", map[string]int64{"d/y": 2})
	wantList(t, s, "d/sub", nil)
	wantBody(t, s, "d/y", []byte("yy"))
}

func testDeleteBatch(t *testing.T, s sinks.Sink) {
	const n = 1500 // more than one S3 DeleteObjects request (1000 keys)
	bodies := make(map[string][]byte, n)
	keys := make([]string, 0, n+2)
	for i := range n {
		k := fmt.Sprintf("batch/p=%d/obj-%05d", i%7, i)
		bodies[k] = []byte(k[len(k)-5:])
		keys = append(keys, k)
	}
	putAll(t, s, bodies)
	mustPut(t, s, "keep/me", []byte("kept"))
	keys = append(keys, "batch/missing", "batch/p=0/obj-00000") // missing and repeated

	if err := s.Delete(t.Context(), keys...); err != nil {
		t.Fatalf("Delete(%d keys): %v", len(keys), err)
	}
	wantList(t, s, "", map[string]int64{"keep/me": 4})
	for _, k := range []string{keys[0], keys[n/2], keys[n-1]} {
		wantNotFound(t, s, k)
	}
}

func testDeleteThenPut(t *testing.T, s sinks.Sink) {
	mustPut(t, s, "p/q/r", []byte("first"))
	if err := s.Delete(t.Context(), "p/q/r"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantList(t, s, "", nil)
	mustPut(t, s, "p/q/r", []byte("second"))
	wantBody(t, s, "p/q/r", []byte("second"))
	mustPut(t, s, "p/other", []byte("3"))
	wantList(t, s, "", map[string]int64{"p/q/r": 6, "p/other": 1})
}
