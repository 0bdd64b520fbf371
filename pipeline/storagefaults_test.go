package pipeline_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hdc-export/hdc-export/pipeline"
	"github.com/hdc-export/hdc-export/sinks"
	s3sink "github.com/hdc-export/hdc-export/sinks/s3"
	"github.com/hdc-export/hdc-export/sinks/s3/miniotest"
	"github.com/hdc-export/hdc-export/sinks/s3/s3faulttest"
)

// TestStorageFaultsLakeMatchesCleanRun exports the emulator's demo account
// (reports and cabs) into MinIO through a proxy that answers 500 and 503
// SlowDown, resets connections before and after MinIO acted, and cuts
// uploads and downloads midway, as the CLI does: lease, cycle, release.
// If the cycle fails, one more cycle must finish the work. The lake must
// then equal, key for key and byte for byte, a clean export into another
// prefix of the same bucket, hold no object whose bytes differ from the
// SHA-256 the sink recorded (no partial object), leave no incomplete
// multipart upload, and match the emulator's ground truth.
func TestStorageFaultsLakeMatchesCleanRun(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	proxy := s3faulttest.Start(t, srv.Endpoint, 20261121)

	// The whole 30-day window takes about 15 s (35 s with -race); -short
	// exports the emulator's 7 days.
	opts := cabOptions()
	if testing.Short() {
		opts = fewDays()
	}
	clean := newCabHarness(t, opts, nil)
	useStore(clean.harness, newS3Store(t, srv, srv.Endpoint, bucket, "clean"))
	if _, err := leasedCycle(clean.harness); err != nil {
		t.Fatalf("clean cycle: %v", err)
	}

	faulty := newCabHarness(t, opts, nil)
	useStore(faulty.harness, newS3Store(t, srv, proxy.URL, bucket, "faulty"))
	proxy.SetRates(s3faulttest.Rates{InternalError: 0.05, SlowDown: 0.05, Reset: 0.05, LostResponse: 0.05, Cut: 0.05})
	cycles := 1
	sum, err := leasedCycle(faulty.harness)
	if err != nil {
		t.Logf("first cycle under faults failed, as it may: %v", err)
		cycles++
		if sum, err = leasedCycle(faulty.harness); err != nil {
			t.Fatalf("second cycle under faults: %v", err)
		}
	}
	proxy.SetRates(s3faulttest.Rates{})
	counts := proxy.Counts()

	want := s3Lake(t, srv, bucket, "clean")
	got := s3Lake(t, srv, bucket, "faulty")
	if len(want) == 0 {
		t.Fatal("the clean run wrote nothing")
	}
	for key, sum := range want {
		if got[key].sum != sum.sum {
			t.Errorf("%s: faulty lake holds %.12q, clean lake %.12s", key, got[key].sum, sum.sum)
		}
	}
	for key := range got {
		if _, ok := want[key]; !ok {
			t.Errorf("%s: in the faulty lake only", key)
		}
	}
	for key, o := range got {
		if o.meta != o.sum {
			t.Errorf("%s: %d bytes hash to %.12s, but the sink recorded sha256 %.12q: a partial object", key, o.size, o.sum, o.meta)
		}
	}
	for _, prefix := range []string{"clean/", "faulty/"} {
		if ups := multipartUploads(t, srv, bucket, prefix); len(ups) != 0 {
			t.Errorf("incomplete multipart uploads left: %q", ups)
		}
	}

	download(t, srv, bucket, "faulty", faulty.lakeDir)
	checkAgainstTruth(t, faulty.harness)
	if missing := counts.Unfired(); len(missing) > 0 {
		t.Errorf("fault kinds never injected: %v (%v)", missing, counts)
	}
	t.Logf("%d objects, identical to the clean run's, after %d cycle(s) (last: %d runs ingested, %d cabs); proxy: %v",
		len(got), cycles, sum.RunsIngested, sum.CabsMirrored, counts)
}

// useStore makes the harness write through s.
func useStore(h *harness, s sinks.Sink) {
	h.sink = s
	h.runner.Sink = s
}

// newS3Store builds an S3 sink for bucket and prefix at endpoint (MinIO
// itself, or a fault proxy in front of it) with the sink's default
// retries, their backoff capped at 20 ms to keep the test fast.
func newS3Store(t *testing.T, srv *miniotest.Server, endpoint, bucket, prefix string) *s3sink.Store {
	t.Helper()
	cfg := srv.Config(bucket, prefix)
	cfg.Endpoint = endpoint
	fastBackoff := func(o *config.LoadOptions) error {
		base := o.Retryer
		if base == nil {
			return errors.New("the sink set no retryer")
		}
		o.Retryer = func() aws.Retryer { return retry.AddWithMaxBackoffDelay(base(), 20*time.Millisecond) }
		return nil
	}
	s, err := s3sink.New(t.Context(), cfg, config.WithCredentialsProvider(srv.Credentials()), fastBackoff)
	if err != nil {
		t.Fatalf("s3.New: %v", err)
	}
	return s
}

// leasedCycle runs one cycle the way the CLI does: take the lake's lease,
// fence every commit with it, run, release.
func leasedCycle(h *harness) (*pipeline.Summary, error) {
	ctx := context.Background()
	lease, err := pipeline.AcquireLease(ctx, h.sink, "storage-faults-test", time.Hour, h.clock.Now)
	if err != nil {
		return &pipeline.Summary{}, fmt.Errorf("acquire lease: %w", err)
	}
	h.runner.Fence = lease.Check
	sum, err := h.runner.Run(ctx)
	return sum, errors.Join(err, lease.Release(ctx))
}

// s3Object is what the test knows of a stored object, read straight from
// MinIO.
type s3Object struct {
	sum  string // SHA-256 of its bytes
	meta string // the SHA-256 the sink recorded (x-amz-meta-sha256)
	size int64
}

// s3Lake reads every object under prefix straight from MinIO, by key
// relative to the prefix.
func s3Lake(t *testing.T, srv *miniotest.Server, bucket, prefix string) map[string]s3Object {
	t.Helper()
	client := srv.Client()
	out := map[string]s3Object{}
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix + "/")})
	for pages.HasMorePages() {
		page, err := pages.NextPage(t.Context())
		if err != nil {
			t.Fatalf("list %s: %v", prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			obj, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				t.Fatalf("get %s: %v", key, err)
			}
			h := sha256.New()
			n, err := io.Copy(h, obj.Body)
			obj.Body.Close()
			if err != nil {
				t.Fatalf("read %s: %v", key, err)
			}
			out[key[len(prefix)+1:]] = s3Object{sum: hex.EncodeToString(h.Sum(nil)), meta: obj.Metadata[s3sink.MetaSHA256], size: n}
		}
	}
	return out
}

// multipartUploads lists the incomplete multipart uploads under prefix.
func multipartUploads(t *testing.T, srv *miniotest.Server, bucket, prefix string) []string {
	t.Helper()
	out, err := srv.Client().ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

// download copies every object under prefix into dir, for the checks that
// read a local lake.
func download(t *testing.T, srv *miniotest.Server, bucket, prefix, dir string) {
	t.Helper()
	store := srv.NewStore(t, bucket, prefix)
	err := store.List(t.Context(), "", func(o sinks.Object) error {
		rc, err := store.Get(t.Context(), o.Key)
		if err != nil {
			return err
		}
		defer rc.Close()
		path := filepath.Join(dir, filepath.FromSlash(o.Key))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, rc); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	if err != nil {
		t.Fatalf("download %s: %v", prefix, err)
	}
}
