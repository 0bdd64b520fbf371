package s3_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hdc-export/hdc-export/sinks"
	s3sink "github.com/hdc-export/hdc-export/sinks/s3"
	"github.com/hdc-export/hdc-export/sinks/s3/miniotest"
)

// gen returns a reader of n deterministic pseudo-random bytes (fast enough
// for GiB bodies) that is neither a Seeker nor a WriterTo.
func gen(seed uint64, n int64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return struct{ io.Reader }{io.LimitReader(rand.NewChaCha8(s), n)}
}

// sha256Hex hashes a whole reader.
func sha256Hex(t testing.TB, r io.Reader) (string, int64) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// getSHA256 reads the object at key and hashes it.
func getSHA256(t testing.TB, s *s3sink.Store, key string) (string, int64) {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer rc.Close()
	return sha256Hex(t, rc)
}

// cancellingReader cancels a context once after bytes have been read.
type cancellingReader struct {
	r      io.Reader
	after  int64
	cancel context.CancelFunc
	n      int64
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n >= c.after && c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	return n, err
}

// failingReader returns err once after bytes have been read.
type failingReader struct {
	r     io.Reader
	after int64
	err   error
	n     int64
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n >= f.after {
		return 0, f.err
	}
	p = p[:min(int64(len(p)), f.after-f.n)]
	n, err := f.r.Read(p)
	f.n += int64(n)
	return n, err
}

// recorder is an HTTP client that records every request and can answer
// some of them itself (fault injection) instead of passing them on.
type recorder struct {
	mu     sync.Mutex
	reqs   []recorded
	inject func(r *http.Request) (*http.Response, error) // nil: pass on
	base   http.RoundTripper
}

type recorded struct {
	method, query string
	header        http.Header
}

func newRecorder() *recorder { return &recorder{base: http.DefaultTransport.(*http.Transport).Clone()} }

func (c *recorder) Do(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, recorded{method: r.Method, query: r.URL.RawQuery, header: r.Header.Clone()})
	inject := c.inject
	c.mu.Unlock()
	if inject != nil {
		if resp, err := inject(r); resp != nil || err != nil {
			if r.Body != nil {
				r.Body.Close()
			}
			return resp, err
		}
	}
	return c.base.RoundTrip(r)
}

// requests returns the recorded requests with method whose query contains
// part, such as "x-id=PutObject", "x-id=UploadPart" or "delete".
func (c *recorder) requests(method, part string) []recorded {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []recorded
	for _, r := range c.reqs {
		if r.method == method && strings.Contains(r.query, part) {
			out = append(out, r)
		}
	}
	return out
}

// s3Error builds an S3 XML error response.
func s3Error(r *http.Request, status int, code string) *http.Response {
	body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code +
		`</Code><Message>injected by the test</Message><RequestId>test</RequestId></Error>`
	return &http.Response{
		Status:        http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/xml"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}
}

// newStoreVia builds a Store whose requests go through client.
//
// It clears AWS_CA_BUNDLE for the test: with a CA bundle the SDK insists on
// its own HTTP client type, and the test store speaks plain HTTP anyway.
func newStoreVia(t *testing.T, srv *miniotest.Server, cfg s3sink.Config, client *recorder) *s3sink.Store {
	t.Helper()
	t.Setenv("AWS_CA_BUNDLE", "")
	s, err := s3sink.New(t.Context(), cfg,
		config.WithCredentialsProvider(srv.Credentials()),
		config.WithHTTPClient(client))
	if err != nil {
		t.Fatalf("s3.New: %v", err)
	}
	return s
}

// incompleteUploads lists the bucket's multipart uploads in progress.
func incompleteUploads(t testing.TB, srv *miniotest.Server, bucket string) []string {
	t.Helper()
	out, err := srv.Client().ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{
		Bucket: aws.String(bucket),
	})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

// headMeta returns the user metadata of an object, by its full S3 key.
func headMeta(t testing.TB, srv *miniotest.Server, bucket, objectKey string) (map[string]string, int64) {
	t.Helper()
	out, err := srv.Client().HeadObject(t.Context(), &s3.HeadObjectInput{
		Bucket: aws.String(bucket),
		Key:    aws.String(objectKey),
	})
	if err != nil {
		t.Fatalf("HeadObject(%s): %v", objectKey, err)
	}
	return out.Metadata, aws.ToInt64(out.ContentLength)
}

func listKeys(t testing.TB, s *s3sink.Store, prefix string) []string {
	t.Helper()
	var keys []string
	err := s.List(t.Context(), prefix, func(o sinks.Object) error {
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys
}

func mustRead(t testing.TB, s *s3sink.Store, key string) string {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return string(b)
}

func putKeys(t testing.TB, s *s3sink.Store, keys []string) {
	t.Helper()
	sem := make(chan struct{}, 16)
	errs := make(chan error, len(keys))
	for _, k := range keys {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- s.Put(t.Context(), k, strings.NewReader(k))
		}()
	}
	for range keys {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func equal(a, b []string) bool {
	return fmt.Sprintf("%q", a) == fmt.Sprintf("%q", b)
}

func getErr(ctx context.Context, s *s3sink.Store, key string) error {
	rc, err := s.Get(ctx, key)
	if err == nil {
		rc.Close()
	}
	return err
}
