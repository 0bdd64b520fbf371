package sinktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hdc-export/hdc-export/sinks"
)

func createOnly(t *testing.T, s sinks.Sink) sinks.CreateOnly {
	t.Helper()
	co, ok := s.(sinks.CreateOnly)
	if !ok {
		t.Skipf("%T does not implement sinks.CreateOnly", s)
	}
	return co
}

func testPutIfAbsent(t *testing.T, s sinks.Sink) {
	co := createOnly(t, s)
	ctx := t.Context()
	first, second := []byte("first owner"), []byte("second")

	if err := co.PutIfAbsent(ctx, "lease/owner", bytes.NewReader(first)); err != nil {
		t.Fatalf("first PutIfAbsent: %v", err)
	}
	if err := co.PutIfAbsent(ctx, "lease/owner", bytes.NewReader(second)); !errors.Is(err, sinks.ErrExists) {
		t.Errorf("second PutIfAbsent = %v, want ErrExists", err)
	}
	wantBody(t, s, "lease/owner", first)

	mustPut(t, s, "plain", []byte("put"))
	if err := co.PutIfAbsent(ctx, "plain", bytes.NewReader(second)); !errors.Is(err, sinks.ErrExists) {
		t.Errorf("PutIfAbsent over a Put object = %v, want ErrExists", err)
	}
	wantBody(t, s, "plain", []byte("put"))

	// A deleted key is free again (a released lease).
	if err := s.Delete(ctx, "lease/owner"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := co.PutIfAbsent(ctx, "lease/owner", bytes.NewReader(second)); err != nil {
		t.Fatalf("PutIfAbsent after Delete: %v", err)
	}
	wantBody(t, s, "lease/owner", second)
	wantList(t, s, "", map[string]int64{"lease/owner": int64(len(second)), "plain": 3})
}

// testPutIfAbsentRace has 8 goroutines race for each of a few keys: exactly
// one wins each key, the others get ErrExists, and the winner's body stays.
func testPutIfAbsentRace(t *testing.T, s sinks.Sink) {
	co := createOnly(t, s)
	const racers = 8
	body := func(i int) []byte { return genBytes(uint64(i+1), 100<<10+i) }
	for round := range 3 {
		key := fmt.Sprintf("race/lease-%d", round)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  [racers]error
		)
		for i := range racers {
			wg.Go(func() {
				<-start
				errs[i] = co.PutIfAbsent(t.Context(), key, bytes.NewReader(body(i)))
			})
		}
		close(start)
		wg.Wait()

		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("%s: racers %d and %d both won", key, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, sinks.ErrExists):
				t.Errorf("%s: racer %d: %v, want nil or ErrExists", key, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("%s: no racer won", key)
		}
		wantBody(t, s, key, body(winner))
	}
}

// testPutIfAbsentFailed checks that a failed create leaves the key free.
func testPutIfAbsentFailed(t *testing.T, s sinks.Sink) {
	co := createOnly(t, s)
	errBoom := errors.New("reader failed")
	r := &failingReader{r: newGen(11, failedPutLen), err: errBoom}
	if err := co.PutIfAbsent(t.Context(), "lease", r); err == nil {
		t.Fatal("PutIfAbsent with a failing reader succeeded")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cr := &cancellingReader{r: newGen(12, failedPutLen), after: 1 << 20, cancel: cancel}
	err := co.PutIfAbsent(ctx, "lease", cr)
	cancel()
	if err == nil {
		t.Fatal("PutIfAbsent cancelled midway succeeded")
	}
	wantNotFound(t, s, "lease")
	wantList(t, s, "", nil)

	if err := co.PutIfAbsent(t.Context(), "lease", strings.NewReader("mine")); err != nil {
		t.Fatalf("PutIfAbsent after failed attempts: %v", err)
	}
	r = &failingReader{r: newGen(13, failedPutLen), err: errBoom}
	if err := co.PutIfAbsent(t.Context(), "lease", r); err == nil {
		t.Error("PutIfAbsent on a taken key with a failing reader succeeded")
	}
	wantBody(t, s, "lease", []byte("mine"))
}

func testStat(t *testing.T, s sinks.Sink) {
	st, ok := s.(sinks.Stater)
	if !ok {
		t.Skipf("%T does not implement sinks.Stater", s)
	}
	ctx := t.Context()
	stat := func(key string, want int64) {
		t.Helper()
		o, err := st.Stat(ctx, key)
		if err != nil {
			t.Fatalf("Stat(%s): %v", key, err)
		}
		if o.Key != key || o.Size != want {
			t.Errorf("Stat(%s) = {Key: %q, Size: %d}, want {Key: %q, Size: %d}", key, o.Key, o.Size, key, want)
		}
	}
	mustPut(t, s, "s/obj", genBytes(14, 1234))
	mustPut(t, s, "s/empty", nil)
	stat("s/obj", 1234)
	stat("s/empty", 0)
	mustPut(t, s, "s/obj", []byte("shorter"))
	stat("s/obj", 7)

	for _, key := range []string{"missing", "s/missing", "s"} {
		if _, err := st.Stat(ctx, key); !errors.Is(err, sinks.ErrNotFound) {
			t.Errorf("Stat(%s) = %v, want ErrNotFound", key, err)
		}
	}
	if err := s.Delete(ctx, "s/obj"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := st.Stat(ctx, "s/obj"); !errors.Is(err, sinks.ErrNotFound) {
		t.Errorf("Stat(deleted) = %v, want ErrNotFound", err)
	}
}
