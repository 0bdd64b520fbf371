package sinktest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/hdc-export/hdc-export/sinks"
)

func testLargeBody(t *testing.T, s sinks.Sink) {
	const size = 24 << 20
	want := sha256.New()
	if _, err := io.Copy(want, newGen(42, size)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "large/body.bin", onlyReader{newGen(42, size)}); err != nil {
		t.Fatalf("Put(%d bytes): %v", size, err)
	}
	rc, err := s.Get(t.Context(), "large/body.bin")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	got := sha256.New()
	n, err := io.Copy(got, rc)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Errorf("Get returned %d bytes, sha256 %x; want %d bytes, sha256 %x", n, got.Sum(nil), size, want.Sum(nil))
	}
	wantList(t, s, "", map[string]int64{"large/body.bin": size})
}

// testConcurrentPuts puts distinct keys and one shared key from several
// goroutines while others read the shared key: every read and the final
// state must be one complete body.
func testConcurrentPuts(t *testing.T, s sinks.Sink) {
	const writers, puts, readers = 8, 32, 4
	// Bodies differ in byte and length, so a mix of two is detectable.
	body := func(i int) []byte { return bytes.Repeat([]byte{byte('A' + i)}, 64<<10+i*1013) }
	isBody := func(b []byte) bool {
		for w := range writers {
			if bytes.Equal(b, body(w)) {
				return true
			}
		}
		return false
	}
	mustPut(t, s, "shared", body(0))

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		readErrs []error
		stop     = make(chan struct{})
	)
	for range readers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				b, err := get(t, s, "shared")
				if err == nil && !isBody(b) {
					err = fmt.Errorf("read a body that was never put: %s", describe(b))
				}
				if err != nil {
					mu.Lock()
					readErrs = append(readErrs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	forEach(t, puts, writers, func(i int) error {
		if err := s.Put(t.Context(), fmt.Sprintf("distinct/%02d", i), bytes.NewReader(body(i%writers))); err != nil {
			return err
		}
		return s.Put(t.Context(), "shared", bytes.NewReader(body(i%writers)))
	})
	close(stop)
	wg.Wait()
	for _, err := range readErrs {
		t.Errorf("concurrent Get(shared): %v", err)
	}

	want := make(map[string]int64, puts+1)
	for i := range puts {
		k := fmt.Sprintf("distinct/%02d", i)
		wantBody(t, s, k, body(i%writers))
		want[k] = int64(len(body(i % writers)))
	}
	shared := mustGet(t, s, "shared")
	if !isBody(shared) {
		t.Errorf("shared holds %s, not one of the bodies put", describe(shared))
	}
	want["shared"] = int64(len(shared))
	wantList(t, s, "", want)
}
