package sinktest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hdc-export/hdc-export/sinks"
)

// mustPut stores body under key or fails the test.
func mustPut(t *testing.T, s sinks.Sink, key string, body []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(body)); err != nil {
		t.Fatalf("Put(%s): %v", short(key), err)
	}
}

// mustGet reads the whole object at key or fails the test.
func mustGet(t *testing.T, s sinks.Sink, key string) []byte {
	t.Helper()
	b, err := get(t, s, key)
	if err != nil {
		t.Fatalf("Get(%s): %v", short(key), err)
	}
	return b
}

// get reads the whole object at key. It is safe to call from any goroutine.
func get(t *testing.T, s sinks.Sink, key string) ([]byte, error) {
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", short(key), err)
	}
	return b, nil
}

// wantBody fails the test unless the object at key holds want.
func wantBody(t *testing.T, s sinks.Sink, key string, want []byte) {
	t.Helper()
	if got := mustGet(t, s, key); !bytes.Equal(got, want) {
		t.Errorf("Get(%s) = %s, want %s", short(key), describe(got), describe(want))
	}
}

// wantNotFound fails the test unless Get of key reports sinks.ErrNotFound.
func wantNotFound(t *testing.T, s sinks.Sink, key string) {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err == nil {
		rc.Close()
		t.Errorf("Get(%s) succeeded, want ErrNotFound", short(key))
		return
	}
	if !errors.Is(err, sinks.ErrNotFound) {
		t.Errorf("Get(%s) = %v, want ErrNotFound", short(key), err)
	}
}

// listAll returns the objects List reports for prefix, in its order.
func listAll(t *testing.T, s sinks.Sink, prefix string) []sinks.Object {
	t.Helper()
	var objs []sinks.Object
	err := s.List(t.Context(), prefix, func(o sinks.Object) error {
		objs = append(objs, o)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return objs
}

// wantList fails the test unless List(prefix) reports exactly the objects
// of want (key to size), each once, in ascending byte order of key.
func wantList(t *testing.T, s sinks.Sink, prefix string, want map[string]int64) {
	t.Helper()
	got := listAll(t, s, prefix)
	gotKeys := make([]string, len(got))
	for i, o := range got {
		gotKeys[i] = o.Key
	}
	wantKeys := make([]string, 0, len(want))
	for k := range want {
		wantKeys = append(wantKeys, k)
	}
	slices.Sort(wantKeys) // byte order
	if !slices.Equal(gotKeys, wantKeys) {
		t.Errorf("List(%q) keys:\n%s", prefix, diffKeys(gotKeys, wantKeys))
		return
	}
	for _, o := range got {
		if o.Size != want[o.Key] {
			t.Errorf("List(%q): %s has size %d, want %d", prefix, short(o.Key), o.Size, want[o.Key])
		}
	}
}

// sizes maps each key to the length of its body.
func sizes(bodies map[string][]byte) map[string]int64 {
	m := make(map[string]int64, len(bodies))
	for k, b := range bodies {
		m[k] = int64(len(b))
	}
	return m
}

// diffKeys describes how got differs from want, briefly.
func diffKeys(got, want []string) string {
	const maxShown = 20
	if len(got) > maxShown || len(want) > maxShown {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				return fmt.Sprintf("got %d keys, want %d; first difference at %d: got %s, want %s",
					len(got), len(want), i, short(got[i]), short(want[i]))
			}
		}
		return fmt.Sprintf("got %d keys, want %d", len(got), len(want))
	}
	return fmt.Sprintf("got  %q\nwant %q", got, want)
}

// describe summarises a body for failure messages without printing it.
func describe(b []byte) string {
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%d bytes (sha256 %x…)", len(b), sum[:6])
}

// short quotes key, abbreviated if long.
func short(key string) string {
	if len(key) > 60 {
		return fmt.Sprintf("%q…(%d bytes)", key[:40], len(key))
	}
	return fmt.Sprintf("%q", key)
}

// forEach calls fn(i) for every i in [0, n) from the given number of
// goroutines and fails the test with the errors fn returns.
func forEach(t *testing.T, n, workers int, fn func(i int) error) {
	t.Helper()
	var (
		next atomic.Int64
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d calls failed, first: %v", len(errs), n, errs[0])
	}
}

// genReader streams n deterministic pseudo-random bytes (xorshift64) from
// seed, without holding them in memory.
type genReader struct {
	n int64
	x uint64
}

func newGen(seed uint64, n int64) *genReader {
	return &genReader{n: n, x: seed | 1}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.n {
		p = p[:g.n]
	}
	x := g.x
	for i := range p {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p[i] = byte(x >> 32)
	}
	g.x = x
	g.n -= int64(len(p))
	return len(p), nil
}

// genBytes returns what newGen(seed, n) streams.
func genBytes(seed uint64, n int) []byte {
	b, _ := io.ReadAll(newGen(seed, int64(n)))
	return b
}

// onlyReader hides every method but Read (io.Seeker, io.WriterTo) so the
// sink sees a plain stream.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// failingReader yields the bytes of r and then, instead of io.EOF, err.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// cancellingReader streams r and calls cancel once more than after bytes
// have been read, then keeps streaming to io.EOF as if nothing happened.
type cancellingReader struct {
	r      io.Reader
	after  int64
	read   int64
	cancel func()
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += int64(n)
	if c.read > c.after {
		c.cancel()
	}
	return n, err
}

// gateReader yields head, closes reached, waits until release is closed,
// then yields tail. It lets a test look at a sink while a Put is midway.
type gateReader struct {
	head, tail io.Reader
	reached    chan struct{}
	release    chan struct{}
	once       sync.Once
}

func newGateReader(head, tail []byte) *gateReader {
	return &gateReader{
		head:    bytes.NewReader(head),
		tail:    bytes.NewReader(tail),
		reached: make(chan struct{}),
		release: make(chan struct{}),
	}
}

func (g *gateReader) Read(p []byte) (int, error) {
	n, err := g.head.Read(p)
	if n > 0 || err != io.EOF {
		return n, err
	}
	g.once.Do(func() { close(g.reached) })
	<-g.release
	return g.tail.Read(p)
}
