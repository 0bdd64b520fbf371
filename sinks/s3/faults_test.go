package s3_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hdc-export/hdc-export/sinks"
	s3sink "github.com/hdc-export/hdc-export/sinks/s3"
	"github.com/hdc-export/hdc-export/sinks/s3/miniotest"
	"github.com/hdc-export/hdc-export/sinks/s3/s3faulttest"
)

// faultRates are the per-request fault probabilities of the fault tests:
// 30% of all requests fail one way or another.
var faultRates = s3faulttest.Rates{InternalError: 0.06, SlowDown: 0.06, Reset: 0.06, LostResponse: 0.06, Cut: 0.06}

// fastBackoff caps the sink's retry backoff at 20 ms, keeping the sink's
// own retryer (attempts, retryable codes) otherwise as it is. It must come
// after the sink's options, which s3.New guarantees for its optFns.
func fastBackoff(o *config.LoadOptions) error {
	base := o.Retryer
	if base == nil {
		return errors.New("fastBackoff: the sink set no retryer")
	}
	o.Retryer = func() aws.Retryer { return retry.AddWithMaxBackoffDelay(base(), 20*time.Millisecond) }
	return nil
}

// newFaultyStore builds a Store that reaches srv through the fault proxy p,
// with 5 MiB parts and maxRetries (0: the default, 8).
func newFaultyStore(t *testing.T, srv *miniotest.Server, p *s3faulttest.Proxy, bucket, prefix string, maxRetries int) *s3sink.Store {
	t.Helper()
	cfg := srv.Config(bucket, prefix)
	cfg.Endpoint = p.URL
	cfg.PartSize = s3sink.MinPartSize
	cfg.Concurrency = 2
	cfg.MaxRetries = maxRetries
	s, err := s3sink.New(t.Context(), cfg, config.WithCredentialsProvider(srv.Credentials()), fastBackoff)
	if err != nil {
		t.Fatalf("s3.New through the fault proxy: %v", err)
	}
	return s
}

// version is one body a key may hold.
type version struct {
	data []byte
	sum  string
}

func newVersion(seed uint64, n int64) version {
	b, _ := io.ReadAll(gen(seed, n))
	return version{data: b, sum: sumOf(b)}
}

func sumOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// absent is the state of a key that holds no object.
const absent = "<absent>"

// directState reads key straight from MinIO (never through the proxy) and
// returns the SHA-256 of its bytes, or absent. It is safe to call from any
// goroutine: a failed read is reported with t.Errorf and returns a state
// that matches no version.
func directState(t testing.TB, direct *s3sink.Store, key string) string {
	t.Helper()
	rc, err := direct.Get(t.Context(), key)
	if errors.Is(err, sinks.ErrNotFound) {
		return absent
	}
	if err != nil {
		t.Errorf("direct Get(%s): %v", key, err)
		return "<unreadable>"
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Errorf("direct read of %s: %v", key, err)
		return "<unreadable>"
	}
	return hex.EncodeToString(h.Sum(nil))
}

// directSHA256Meta returns the x-amz-meta-sha256 of an object, read
// straight from MinIO; safe from any goroutine.
func directSHA256Meta(t testing.TB, srv *miniotest.Server, bucket, objectKey string) string {
	t.Helper()
	out, err := srv.Client().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(objectKey)})
	if err != nil {
		t.Errorf("HeadObject(%s): %v", objectKey, err)
		return ""
	}
	return out.Metadata[s3sink.MetaSHA256]
}

// tally counts the outcomes of operations under faults.
type tally struct {
	mu       sync.Mutex
	ok, fail map[string]int
	// acted counts failed writes whose new version is nevertheless
	// stored: the store acted on a request whose answer was lost.
	acted map[string]int
}

func newTally() *tally {
	return &tally{ok: map[string]int{}, fail: map[string]int{}, acted: map[string]int{}}
}

func (c *tally) add(op string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.ok[op]++
	} else {
		c.fail[op]++
	}
}

func (c *tally) addActed(op string) {
	c.mu.Lock()
	c.acted[op]++
	c.mu.Unlock()
}

func (c *tally) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ops []string
	for op := range c.ok {
		ops = append(ops, op)
	}
	for op := range c.fail {
		if _, ok := c.ok[op]; !ok {
			ops = append(ops, op)
		}
	}
	slices.Sort(ops)
	var b bytes.Buffer
	for _, op := range ops {
		fmt.Fprintf(&b, "\n  %-28s %4d trials: %4d ok, %3d failed", op, c.ok[op]+c.fail[op], c.ok[op], c.fail[op])
		if n := c.acted[op]; n > 0 {
			fmt.Fprintf(&b, " (%d of them after the new version was stored whole)", n)
		}
	}
	return b.String()
}

// checkPut asserts the outcome of one write of want over prev (a SHA-256
// or absent): after success the key holds exactly want; after a failure it
// holds prev, or want if the store acted on a request whose answer was
// lost. Anything else, a partial object above all, fails the test.
func checkPut(t *testing.T, c *tally, direct *s3sink.Store, op, key string, err error, prev, want string) {
	t.Helper()
	c.add(op, err)
	got := directState(t, direct, key)
	switch {
	case err == nil && got != want:
		t.Errorf("%s %s succeeded, but the store holds %.12s, want %.12s", op, key, got, want)
	case err != nil && errors.Is(err, sinks.ErrPermanent):
		t.Errorf("%s %s: a transient fault became a permanent error: %v", op, key, err)
	case err != nil && got == want && want != prev:
		c.addActed(op)
	case err != nil && got != prev:
		t.Errorf("%s %s failed (%v) and left %.12s, neither the previous %.12s nor the new %.12s", op, key, err, got, prev, want)
	}
}

// each runs fn(i) for i in [0, n) on workers goroutines.
func each(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// TestStorageFaults drives every sink operation through a proxy that
// answers 500 and 503 SlowDown, resets connections before and after the
// store acted, and cuts uploads and downloads midway. With the default
// retries every operation must succeed; with a single retry some fail, and
// then the key must hold its previous complete version (or, when only the
// answer was lost, the new one). No partial object, no incomplete upload.
func TestStorageFaults(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	proxy := s3faulttest.Start(t, srv.Endpoint, 20261121)
	direct := srv.NewStore(t, bucket, "faults")
	patient := newFaultyStore(t, srv, proxy, bucket, "faults", 0)
	impatient := newFaultyStore(t, srv, proxy, bucket, "faults", 1)
	proxy.SetRates(faultRates)
	c := newTally()
	rng := rand.New(rand.NewPCG(1, 2))

	// Single-part puts: two versions over each key, through a patient
	// store (must succeed) and an impatient one (may fail cleanly).
	type twoVersions struct {
		key    string
		v1, v2 version
	}
	const smallKeys = 120
	small := make([]twoVersions, smallKeys)
	for i := range small {
		small[i] = twoVersions{
			key: fmt.Sprintf("small/date=2026-11-%02d/part-%05d.bin", 1+i%28, i),
			v1:  newVersion(uint64(2*i), rng.Int64N(200<<10)),
			v2:  newVersion(uint64(2*i+1), 1+rng.Int64N(200<<10)),
		}
	}
	each(smallKeys, 8, func(i int) {
		k := small[i]
		s, op := patient, "put single-part"
		if i%2 == 1 {
			s, op = impatient, "put single-part (1 retry)"
		}
		for _, v := range []version{k.v1, k.v2} {
			prev := directState(t, direct, k.key)
			err := s.Put(t.Context(), k.key, bytes.NewReader(v.data))
			if s == patient && err != nil {
				t.Errorf("%s %s with 8 retries: %v", op, k.key, err)
			}
			checkPut(t, c, direct, op, k.key, err, prev, v.sum)
		}
	})

	// Multipart puts: 2 and 3 parts of 5 MiB, two versions per key.
	big := []twoVersions{
		{"big/two-parts.bin", newVersion(101, s3sink.MinPartSize+12345), newVersion(102, 2*s3sink.MinPartSize-1)},
		{"big/three-parts.bin", newVersion(103, 2*s3sink.MinPartSize+1), newVersion(104, 3*s3sink.MinPartSize-7)},
		{"big/one-retry.bin", newVersion(105, s3sink.MinPartSize+1), newVersion(106, 2*s3sink.MinPartSize+99)},
	}
	each(len(big), len(big), func(i int) {
		k := big[i]
		s, op := patient, "put multipart"
		if i == 2 {
			s, op = impatient, "put multipart (1 retry)"
		}
		for _, v := range []version{k.v1, k.v2} {
			prev := directState(t, direct, k.key)
			err := s.Put(t.Context(), k.key, bytes.NewReader(v.data))
			if s == patient && err != nil {
				t.Errorf("%s %s with 8 retries: %v", op, k.key, err)
			}
			checkPut(t, c, direct, op, k.key, err, prev, v.sum)
			if err == nil {
				if got := directSHA256Meta(t, srv, bucket, "faults/"+k.key); got != v.sum {
					t.Errorf("%s %s: x-amz-meta-sha256 = %q, want %s", op, k.key, got, v.sum)
				}
			}
		}
	})

	// Create-only puts: the first to a fresh key wins, the second finds
	// it taken; both decide correctly despite lost answers and retries.
	const createKeys = 60
	each(createKeys, 8, func(i int) {
		key := fmt.Sprintf("lease/%010d.json", i)
		first, second := newVersion(uint64(1000+i), 200), newVersion(uint64(2000+i), 200)
		err := patient.PutIfAbsent(t.Context(), key, bytes.NewReader(first.data))
		if err != nil {
			t.Errorf("PutIfAbsent(%s) on a fresh key: %v", key, err)
		}
		checkPut(t, c, direct, "put-if-absent (fresh)", key, err, absent, first.sum)
		err = patient.PutIfAbsent(t.Context(), key, bytes.NewReader(second.data))
		c.add("put-if-absent (taken)", err)
		if !errors.Is(err, sinks.ErrExists) {
			t.Errorf("PutIfAbsent(%s) on a taken key = %v, want ErrExists", key, err)
		}
		if got := directState(t, direct, key); got != first.sum {
			t.Errorf("PutIfAbsent(%s) on a taken key replaced it: %.12s, want %.12s", key, got, first.sum)
		}
	})
	bigCreate := newVersion(3000, 2*s3sink.MinPartSize+5)
	err := patient.PutIfAbsent(t.Context(), "lease/big.bin", bytes.NewReader(bigCreate.data))
	if err != nil {
		t.Errorf("multipart PutIfAbsent on a fresh key: %v", err)
	}
	checkPut(t, c, direct, "put-if-absent multipart", "lease/big.bin", err, absent, bigCreate.sum)

	// The create-only probe must not mistake a retried write for a store
	// that ignores If-None-Match.
	for range 20 {
		ok, err := patient.ProbeCreateOnly(t.Context())
		c.add("probe create-only", err)
		if !ok || err != nil {
			t.Errorf("ProbeCreateOnly through faults = %v, %v; want true", ok, err)
		}
	}

	// Reads: Get either fails (opening or reading) or yields exact bytes.
	want := map[string]string{}
	for _, k := range small {
		want[k.key] = directState(t, direct, k.key)
	}
	for _, k := range big {
		want[k.key] = directState(t, direct, k.key)
	}
	keys := slices.Sorted(maps.Keys(want))
	each(len(keys), 8, func(i int) {
		key := keys[i]
		for _, s := range []*s3sink.Store{patient, impatient} {
			op := "get"
			if s == impatient {
				op = "get (1 retry)"
			}
			rc, err := s.Get(t.Context(), key)
			if want[key] == absent {
				if !errors.Is(err, sinks.ErrNotFound) {
					t.Errorf("Get(%s) of an absent key = %v, want ErrNotFound", key, err)
				}
				continue
			}
			if err == nil {
				var b []byte
				b, err = io.ReadAll(rc)
				rc.Close()
				if err == nil && sumOf(b) != want[key] {
					t.Errorf("Get(%s) returned %d bytes hashing to %.12s without an error, want %.12s", key, len(b), sumOf(b), want[key])
				}
			}
			if s == patient && err != nil {
				t.Errorf("Get(%s) with 8 retries: %v", key, err)
			}
			c.add(op, err)
		}
	})

	// Listings: complete and in order, or an error.
	wantList := listKeys(t, direct, "")
	for range 20 {
		var got []string
		err := patient.List(t.Context(), "", func(o sinks.Object) error {
			got = append(got, o.Key)
			return nil
		})
		c.add("list", err)
		if err != nil {
			t.Errorf("List with 8 retries: %v", err)
		} else if !slices.Equal(got, wantList) {
			t.Errorf("List returned %d keys, want %d", len(got), len(wantList))
		}
	}

	// Deletes: half the small keys in batches, a few one by one.
	var gone []string
	for i, k := range small {
		if i%2 == 0 {
			gone = append(gone, k.key)
		}
	}
	for batch := range slices.Chunk(gone, 10) {
		err := patient.Delete(t.Context(), batch...)
		c.add("delete (batch of 10)", err)
		if err != nil {
			t.Errorf("Delete with 8 retries: %v", err)
		}
	}
	for _, k := range big[:2] {
		err := impatient.Delete(t.Context(), k.key)
		c.add("delete (1 retry)", err)
		if err != nil {
			if got := directState(t, direct, k.key); got != want[k.key] && got != absent {
				t.Errorf("failed Delete(%s) left %.12s", k.key, got)
			}
			err = patient.Delete(t.Context(), k.key)
			c.add("delete", err)
		}
		gone = append(gone, k.key)
	}
	for _, key := range gone {
		if got := directState(t, direct, key); got != absent {
			t.Errorf("%s still holds %.12s after Delete", key, got)
		}
	}

	proxy.SetRates(s3faulttest.Rates{})
	if ups := incompleteUploads(t, srv, bucket); len(ups) != 0 {
		t.Errorf("incomplete multipart uploads left: %q", ups)
	}
	counts := proxy.Counts()
	if missing := counts.Unfired(); len(missing) > 0 {
		t.Errorf("fault kinds never injected: %v (%v)", missing, counts)
	}
	t.Logf("proxy: %v\noperations:%v", counts, c)
}

// TestStorageFaultsReaderSeesWholeVersions alternates two versions of a
// multipart key and of a single-part key through the fault proxy while
// readers fetch both keys straight from MinIO: every read must yield one
// complete version (or nothing, before the first put lands).
func TestStorageFaultsReaderSeesWholeVersions(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	proxy := s3faulttest.Start(t, srv.Endpoint, 7)
	direct := srv.NewStore(t, bucket, "")
	writer := newFaultyStore(t, srv, proxy, bucket, "", 1)
	proxy.SetRates(faultRates)

	keys := []struct {
		key  string
		vers [2]version
	}{
		{"multipart.bin", [2]version{newVersion(1, 2*s3sink.MinPartSize+77), newVersion(2, s3sink.MinPartSize+5)}},
		{"single.bin", [2]version{newVersion(3, 300<<10), newVersion(4, 123)}},
	}
	const puts = 16
	var (
		done           = make(chan struct{})
		reads, absents atomic.Int64
		wg             sync.WaitGroup
	)
	for _, k := range keys {
		for range 2 {
			wg.Go(func() {
				valid := map[string]bool{absent: true, k.vers[0].sum: true, k.vers[1].sum: true}
				for {
					select {
					case <-done:
						return
					default:
					}
					got := directState(t, direct, k.key)
					if !valid[got] {
						t.Errorf("reader saw %s hashing to %.12s: not a complete version", k.key, got)
						return
					}
					if got == absent {
						absents.Add(1)
					} else {
						valid[absent] = false // once there, a key never disappears
					}
					reads.Add(1)
				}
			})
		}
	}
	c := newTally()
	each(len(keys), len(keys), func(i int) {
		k := keys[i]
		for n := range puts {
			err := writer.Put(t.Context(), k.key, bytes.NewReader(k.vers[n%2].data))
			c.add("put "+k.key, err)
		}
	})
	close(done)
	wg.Wait()

	proxy.SetRates(s3faulttest.Rates{})
	if ups := incompleteUploads(t, srv, bucket); len(ups) != 0 {
		t.Errorf("incomplete multipart uploads left: %q", ups)
	}
	t.Logf("%d direct reads (%d before the first put landed), all whole versions; proxy: %v\nputs (1 retry):%v",
		reads.Load(), absents.Load(), proxy.Counts(), c)
}

// firstN returns a proxy filter that matches the first n requests of the
// S3 operation op.
func firstN(op string, n int) func(*http.Request) bool {
	return func(r *http.Request) bool {
		if s3faulttest.Operation(r) != op || n == 0 {
			return false
		}
		n--
		return true
	}
}

// TestLostAnswersAreSettled loses, deterministically, the answer to the
// first attempt of each write that is not idempotent, after the store
// acted on it. The SDK's retry then meets the store in the state the
// first attempt left, and the sink must still report the truth: success,
// the exact bytes, and no stray multipart upload.
func TestLostAnswersAreSettled(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	proxy := s3faulttest.Start(t, srv.Endpoint, 3)
	direct := srv.NewStore(t, bucket, "")
	s := newFaultyStore(t, srv, proxy, bucket, "", 0)
	proxy.SetRates(s3faulttest.Rates{LostResponse: 1})
	big := newVersion(9, 2*s3sink.MinPartSize+3)
	small := newVersion(10, 1000)

	for _, c := range []struct {
		name, op string
		put      func(key string) error
		want     version
	}{
		{"create-only PutObject", "PutObject",
			func(key string) error { return s.PutIfAbsent(t.Context(), key, bytes.NewReader(small.data)) }, small},
		{"CompleteMultipartUpload", "CompleteMultipartUpload",
			func(key string) error { return s.Put(t.Context(), key, bytes.NewReader(big.data)) }, big},
		{"create-only CompleteMultipartUpload", "CompleteMultipartUpload",
			func(key string) error { return s.PutIfAbsent(t.Context(), key, bytes.NewReader(big.data)) }, big},
		{"CreateMultipartUpload", "CreateMultipartUpload",
			func(key string) error { return s.Put(t.Context(), key, bytes.NewReader(big.data)) }, big},
		{"CopyObject (sha256 stamp)", "CopyObject",
			func(key string) error { return s.Put(t.Context(), key, bytes.NewReader(big.data)) }, big},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := "lost/" + strings.ReplaceAll(c.name, " ", "-")
			before := proxy.Counts().LostResponse
			proxy.SetFilter(firstN(c.op, 2))
			err := c.put(key)
			proxy.SetFilter(func(*http.Request) bool { return false })
			if n := proxy.Counts().LostResponse - before; n != 2 {
				t.Fatalf("%d answers lost, want 2", n)
			}
			if err != nil {
				t.Fatalf("write whose first two answers were lost: %v", err)
			}
			if got := directState(t, direct, key); got != c.want.sum {
				t.Errorf("store holds %.12s, want %.12s", got, c.want.sum)
			}
			if got := directSHA256Meta(t, srv, bucket, key); got != c.want.sum {
				t.Errorf("x-amz-meta-sha256 = %q, want %s", got, c.want.sum)
			}
			if ups := incompleteUploads(t, srv, bucket); len(ups) != 0 {
				t.Errorf("incomplete multipart uploads left: %q", ups)
			}
		})
	}

	// A failed multipart upload is aborted even by a store configured
	// without retries, and even if the abort itself first fails.
	t.Run("AbortMultipartUpload", func(t *testing.T) {
		once := newFaultyStore(t, srv, proxy, bucket, "", -1)
		aborts := firstN("AbortMultipartUpload", 3)
		proxy.SetFilter(func(r *http.Request) bool {
			return s3faulttest.Operation(r) == "UploadPart" || aborts(r)
		})
		proxy.SetRates(s3faulttest.Rates{InternalError: 1})
		err := once.Put(t.Context(), "lost/aborted", bytes.NewReader(big.data))
		proxy.SetFilter(func(*http.Request) bool { return false })
		if err == nil || errors.Is(err, sinks.ErrPermanent) {
			t.Fatalf("Put with every part failing = %v, want a transient error", err)
		}
		if got := directState(t, direct, "lost/aborted"); got != absent {
			t.Errorf("failed Put left %.12s", got)
		}
		if ups := incompleteUploads(t, srv, bucket); len(ups) != 0 {
			t.Errorf("incomplete multipart uploads left: %q", ups)
		}
	})
}

// TestGetResumesBrokenBody cuts the first downloads of an object midway,
// after the SDK handed the body over: Get's reader resumes with ranged
// requests and yields exactly the object. If the object is replaced
// between the break and the resume, the read fails rather than mixing
// two versions.
func TestGetResumesBrokenBody(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	proxy := s3faulttest.Start(t, srv.Endpoint, 5)
	direct := srv.NewStore(t, bucket, "")
	s := newFaultyStore(t, srv, proxy, bucket, "", 0)
	v1, v2 := newVersion(1, 3<<20), newVersion(2, 3<<20)
	if err := direct.Put(t.Context(), "obj", bytes.NewReader(v1.data)); err != nil {
		t.Fatal(err)
	}
	proxy.SetRates(s3faulttest.Rates{Cut: 1})

	proxy.SetFilter(firstN("GetObject", 3))
	rc, err := s.Get(t.Context(), "obj")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || sumOf(b) != v1.sum {
		t.Errorf("read %d bytes hashing to %.12s, err %v; want %d bytes %.12s", len(b), sumOf(b), err, len(v1.data), v1.sum)
	}
	if n := proxy.Counts().Cut; n != 3 {
		t.Errorf("%d downloads cut, want 3", n)
	}

	proxy.SetFilter(firstN("GetObject", 1))
	rc, err = s.Get(t.Context(), "obj")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	if err := direct.Put(t.Context(), "obj", bytes.NewReader(v2.data)); err != nil {
		t.Fatal(err)
	}
	b, err = io.ReadAll(rc)
	switch {
	case err != nil && strings.Contains(err.Error(), "replaced while it was read"):
	case err == nil && sumOf(b) == v1.sum:
		t.Log("the download broke before Get returned, so the SDK retried it whole: no resume to test")
	default:
		t.Errorf("read %d bytes hashing to %.12s, err %v; want an error for the replaced object", len(b), sumOf(b), err)
	}
}
