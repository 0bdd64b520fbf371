package sinktest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hdc-export/hdc-export/sinks"
)

// failedPutLen is the body length of the failing puts: large enough that a
// sink has written some of it (one S3 multipart part is 5 MiB).
const failedPutLen = 6 << 20

func testPutReaderError(t *testing.T, s sinks.Sink) {
	errBoom := errors.New("reader failed")
	old := []byte("old body")
	mustPut(t, s, "obj", old)

	for _, key := range []string{"obj", "fresh/obj"} {
		r := &failingReader{r: newGen(7, failedPutLen), err: errBoom}
		if err := s.Put(t.Context(), key, r); err == nil {
			t.Errorf("Put(%s, reader failing after %d bytes) succeeded", key, failedPutLen)
		}
		r = &failingReader{r: strings.NewReader(""), err: errBoom}
		if err := s.Put(t.Context(), key, r); err == nil {
			t.Errorf("Put(%s, reader failing at once) succeeded", key)
		}
	}
	wantBody(t, s, "obj", old)
	wantNotFound(t, s, "fresh/obj")
	wantList(t, s, "", map[string]int64{"obj": int64(len(old))})
}

func testPutCancelled(t *testing.T, s sinks.Sink) {
	old := []byte("old body")
	mustPut(t, s, "obj", old)

	for _, key := range []string{"obj", "fresh/obj"} {
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancellingReader{r: newGen(8, failedPutLen), after: 1 << 20, cancel: cancel}
		err := s.Put(ctx, key, r)
		cancel()
		if err == nil {
			t.Errorf("Put(%s) cancelled midway succeeded", key)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, "obj", strings.NewReader("new")); err == nil {
		t.Error("Put(obj) with a cancelled context succeeded")
	}
	if err := s.Put(ctx, "fresh/obj", strings.NewReader("new")); err == nil {
		t.Error("Put(fresh/obj) with a cancelled context succeeded")
	}
	wantBody(t, s, "obj", old)
	wantNotFound(t, s, "fresh/obj")
	wantList(t, s, "", map[string]int64{"obj": int64(len(old))})
}

// testPutInvisibleUntilDone stops Puts midway and checks that readers see
// the old object or none, and that List shows no partial or temporary
// object.
func testPutInvisibleUntilDone(t *testing.T, s sinks.Sink) {
	old := []byte("old body")
	mustPut(t, s, "obj", old)
	want := map[string]int64{"obj": int64(len(old))}
	head, tail := genBytes(9, 1<<20), genBytes(10, 1<<20)
	full := append(bytes.Clone(head), tail...)

	for _, key := range []string{"obj", "fresh/obj"} {
		g := newGateReader(head, tail)
		t.Cleanup(func() {
			select {
			case <-g.release:
			default:
				close(g.release)
			}
		})
		done := make(chan error, 1)
		go func() { done <- s.Put(t.Context(), key, g) }()
		select {
		case <-g.reached:
		case err := <-done:
			t.Fatalf("Put(%s) returned %v before reading the whole body", key, err)
		}

		// Midway.
		if key == "obj" {
			wantBody(t, s, "obj", old)
		} else {
			wantNotFound(t, s, key)
		}
		wantList(t, s, "", want)

		close(g.release)
		if err := <-done; err != nil {
			t.Fatalf("Put(%s): %v", key, err)
		}
		wantBody(t, s, key, full)
		want[key] = int64(len(full))
		wantList(t, s, "", want)
	}
}
