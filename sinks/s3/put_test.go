package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hdc-export/hdc-export/sinks"
	s3sink "github.com/hdc-export/hdc-export/sinks/s3"
	"github.com/hdc-export/hdc-export/sinks/s3/miniotest"
)

// TestChecksumModes round-trips single-part and multipart bodies and a
// batch delete in every checksum mode, and checks which integrity headers
// went out.
func TestChecksumModes(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	for _, c := range []struct {
		mode     string
		wantCRC  bool // SDK CRC32 on PutObject and UploadPart
		wantNote string
	}{
		{"", false, "auto against a custom endpoint = when_required"},
		{"auto", false, "auto against a custom endpoint = when_required"},
		{"off", false, ""},
		{"when_required", false, ""},
		{"crc32", true, ""},
		{"required", true, ""},
	} {
		t.Run("mode="+c.mode, func(t *testing.T) {
			cfg := srv.Config(bucket, "checksum/"+c.mode)
			cfg.Checksum = c.mode
			cfg.PartSize = s3sink.MinPartSize
			rec := newRecorder()
			s := newStoreVia(t, srv, cfg, rec)
			ctx := t.Context()

			small := []byte("small body")
			if err := s.Put(ctx, "small", bytes.NewReader(small)); err != nil {
				t.Fatalf("Put(small): %v", err)
			}
			const bigLen = 2*s3sink.MinPartSize + 12345
			if err := s.Put(ctx, "big", gen(1, bigLen)); err != nil {
				t.Fatalf("Put(big): %v", err)
			}
			if got := mustRead(t, s, "small"); got != string(small) {
				t.Errorf("small = %q", got)
			}
			wantSum, _ := sha256Hex(t, gen(1, bigLen))
			if got, n := getSHA256(t, s, "big"); got != wantSum || n != bigLen {
				t.Errorf("big: %d bytes sha256 %s, want %d bytes %s", n, got, bigLen, wantSum)
			}
			if err := s.Delete(ctx, "small", "big"); err != nil {
				t.Fatalf("Delete: %v", err)
			}

			puts := rec.requests(http.MethodPut, "x-id=PutObject")
			parts := rec.requests(http.MethodPut, "x-id=UploadPart")
			if len(puts) != 1 || len(parts) != 3 {
				t.Fatalf("saw %d PutObject and %d UploadPart requests, want 1 and 3", len(puts), len(parts))
			}
			for _, r := range append(puts, parts...) {
				if r.header.Get("Content-Md5") == "" {
					t.Errorf("%s ?%s: no Content-MD5", r.method, r.query)
				}
				if got := r.header.Get("X-Amz-Checksum-Crc32") != "" || r.header.Get("X-Amz-Trailer") != ""; got != c.wantCRC {
					t.Errorf("%s ?%s: CRC32 checksum sent = %v, want %v", r.method, r.query, got, c.wantCRC)
				}
			}
			for _, r := range rec.requests(http.MethodPost, "delete") {
				if r.header.Get("Content-Md5") == "" {
					t.Errorf("DeleteObjects: no Content-MD5")
				}
			}
		})
	}
}

// TestChecksumAutoOnAWS checks that "auto" without an endpoint (AWS) keeps
// the SDK's CRC32 checksums: the store is MinIO, but the mode is resolved
// from the config before the endpoint is swapped in by the test.
func TestChecksumAutoOnAWS(t *testing.T) {
	srv := miniotest.Shared(t)
	cfg := srv.Config(srv.NewBucket(t), "")
	cfg.Endpoint = ""
	client := s3.New(s3.Options{
		Region:       miniotest.Region,
		BaseEndpoint: aws.String(srv.Endpoint),
		UsePathStyle: true,
		Credentials:  srv.Credentials(),
		HTTPClient:   newRecorder(),
	})
	s, err := s3sink.NewWithClient(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := client.Options().HTTPClient.(*recorder)
	if err := s.Put(t.Context(), "k", strings.NewReader("v")); err != nil {
		t.Fatal(err)
	}
	puts := rec.requests(http.MethodPut, "x-id=PutObject")
	if len(puts) != 1 || puts[0].header.Get("X-Amz-Checksum-Crc32") == "" {
		t.Errorf("auto on AWS: PutObject without x-amz-checksum-crc32: %v", puts)
	}
}

func TestSHA256Metadata(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	cfg := srv.Config(bucket, "meta")
	cfg.PartSize = s3sink.MinPartSize
	s := srv.NewStoreWith(t, cfg)
	for _, size := range []int64{0, 1000, s3sink.MinPartSize - 1, s3sink.MinPartSize, 3*s3sink.MinPartSize + 1} {
		// Characters that CopyObject's source header must encode.
		key := fmt.Sprintf("date=2026-11-20/a b+c&ü%%20?#-%d.bin", size)
		if err := s.Put(t.Context(), key, gen(uint64(size), size)); err != nil {
			t.Fatalf("Put(%d bytes): %v", size, err)
		}
		want, _ := sha256Hex(t, gen(uint64(size), size))
		meta, n := headMeta(t, srv, bucket, "meta/"+key)
		if n != size || meta[s3sink.MetaSHA256] != want {
			t.Errorf("%d bytes: stored %d bytes, x-amz-meta-sha256 %q, want %s", size, n, meta[s3sink.MetaSHA256], want)
		}
	}
}

func TestMultipart64MiB(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	cfg := srv.Config(bucket, "mp")
	cfg.PartSize = s3sink.MinPartSize
	cfg.Concurrency = 3
	rec := newRecorder()
	s := newStoreVia(t, srv, cfg, rec)

	const size = 64 << 20
	if err := s.Put(t.Context(), "big.bin", gen(64, size)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	want, _ := sha256Hex(t, gen(64, size))
	if got, n := getSHA256(t, s, "big.bin"); got != want || n != size {
		t.Errorf("Get: %d bytes sha256 %s, want %d bytes %s", n, got, size, want)
	}
	if parts := len(rec.requests(http.MethodPut, "x-id=UploadPart")); parts != 13 {
		t.Errorf("%d UploadPart requests, want 13 (64 MiB in 5 MiB parts)", parts)
	}
	st, err := s.Stat(t.Context(), "big.bin")
	if err != nil || st.Size != size || st.Key != "big.bin" || st.ModTime.IsZero() {
		t.Errorf("Stat = %+v, %v", st, err)
	}
	if meta, _ := headMeta(t, srv, bucket, "mp/big.bin"); meta[s3sink.MetaSHA256] != want {
		t.Errorf("x-amz-meta-sha256 = %q, want %s", meta[s3sink.MetaSHA256], want)
	}
}

// TestFailedMultipartLeavesNothing cancels, and separately breaks the body
// of, multipart uploads midway: no object may appear, the old object must
// stay, and no incomplete upload may be left behind.
func TestFailedMultipartLeavesNothing(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	cfg := srv.Config(bucket, "")
	cfg.PartSize = s3sink.MinPartSize
	s := srv.NewStoreWith(t, cfg)
	if err := s.Put(t.Context(), "existing", strings.NewReader("old")); err != nil {
		t.Fatal(err)
	}

	errBoom := errors.New("body failed")
	for _, key := range []string{"fresh", "existing"} {
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancellingReader{r: gen(2, 64<<20), after: 20 << 20, cancel: cancel}
		err := s.Put(ctx, key, r)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Put(%s) cancelled after 20 MiB = %v, want context.Canceled", key, err)
		}

		err = s.Put(t.Context(), key, &failingReader{r: gen(3, 64<<20), after: 17 << 20, err: errBoom})
		if !errors.Is(err, errBoom) {
			t.Errorf("Put(%s) with a body failing after 17 MiB = %v, want the body's error", key, err)
		}
	}
	if _, err := s.Stat(t.Context(), "fresh"); !errors.Is(err, sinks.ErrNotFound) {
		t.Errorf("Stat(fresh) = %v, want ErrNotFound", err)
	}
	if got := mustRead(t, s, "existing"); got != "old" {
		t.Errorf("existing = %q, want the old body", got)
	}
	if ups := incompleteUploads(t, srv, bucket); len(ups) != 0 {
		t.Errorf("incomplete multipart uploads left: %q", ups)
	}
}

// TestRetries injects SlowDown (503), 500 and connection resets, including
// into a part of a streaming upload, and expects the SDK's retryer to
// absorb them; with retries exhausted the error must not be permanent.
func TestRetries(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	cfg := srv.Config(bucket, "")
	cfg.PartSize = s3sink.MinPartSize

	type fault func(*http.Request) (*http.Response, error)
	var (
		slowDown  fault = func(r *http.Request) (*http.Response, error) { return s3Error(r, 503, "SlowDown"), nil }
		internal  fault = func(r *http.Request) (*http.Response, error) { return s3Error(r, 500, "InternalError"), nil }
		connReset fault = func(*http.Request) (*http.Response, error) {
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
		}
		mu      sync.Mutex
		pending []fault // answered, in order, to PutObject and part 2
	)
	setFaults := func(fs ...fault) {
		mu.Lock()
		defer mu.Unlock()
		pending = fs
	}
	rec := newRecorder()
	rec.inject = func(r *http.Request) (*http.Response, error) {
		q := r.URL.Query()
		if r.Method != http.MethodPut || (q.Get("x-id") != "PutObject" && q.Get("partNumber") != "2") {
			return nil, nil
		}
		mu.Lock()
		defer mu.Unlock()
		if len(pending) == 0 {
			return nil, nil
		}
		f := pending[0]
		pending = pending[1:]
		return f(r)
	}
	s := newStoreVia(t, srv, cfg, rec)

	// One fault per Put: each retry waits up to 2 s of jittered backoff.
	for _, f := range []fault{slowDown, internal} {
		setFaults(f)
		if err := s.Put(t.Context(), "small", strings.NewReader("survives")); err != nil {
			t.Fatalf("Put with a transient fault: %v", err)
		}
	}
	setFaults(connReset)
	const size = 3 * s3sink.MinPartSize
	if err := s.Put(t.Context(), "big", gen(9, size)); err != nil {
		t.Fatalf("multipart Put with a connection reset on part 2: %v", err)
	}
	want, _ := sha256Hex(t, gen(9, size))
	if got, _ := getSHA256(t, s, "big"); got != want {
		t.Errorf("big sha256 = %s, want %s", got, want)
	}

	cfg.MaxRetries = 1
	s = newStoreVia(t, srv, cfg, rec)
	setFaults(slowDown, slowDown)
	err := s.Put(t.Context(), "small", strings.NewReader("fails"))
	if err == nil || errors.Is(err, sinks.ErrPermanent) || !strings.Contains(err.Error(), "SlowDown") {
		t.Errorf("Put with retries exhausted = %v, want a non-permanent SlowDown error", err)
	}
	if got := mustRead(t, s, "small"); got != "survives" {
		t.Errorf("small = %q", got)
	}
}
