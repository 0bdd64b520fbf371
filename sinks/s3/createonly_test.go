package s3_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hdc-export/hdc-export/sinks"
	s3sink "github.com/hdc-export/hdc-export/sinks/s3"
	"github.com/hdc-export/hdc-export/sinks/s3/miniotest"
)

func TestPutIfAbsent(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	cfg := srv.Config(bucket, "lease")
	cfg.PartSize = s3sink.MinPartSize
	s := srv.NewStoreWith(t, cfg)
	ctx := t.Context()

	if err := s.PutIfAbsent(ctx, "owner", strings.NewReader("first")); err != nil {
		t.Fatal(err)
	}
	err := s.PutIfAbsent(ctx, "owner", strings.NewReader("second"))
	if !errors.Is(err, sinks.ErrExists) || errors.Is(err, sinks.ErrPermanent) {
		t.Errorf("second PutIfAbsent = %v, want ErrExists", err)
	}
	if !strings.Contains(err.Error(), "412") {
		t.Errorf("error %q does not show MinIO's 412", err)
	}

	// Multipart: the condition is checked at CompleteMultipartUpload.
	err = s.PutIfAbsent(ctx, "owner", gen(5, 2*s3sink.MinPartSize+1))
	if !errors.Is(err, sinks.ErrExists) {
		t.Errorf("multipart PutIfAbsent over an object = %v, want ErrExists", err)
	}
	if got := mustRead(t, s, "owner"); got != "first" {
		t.Errorf("owner = %q, want first", got)
	}
	if ups := incompleteUploads(t, srv, bucket); len(ups) != 0 {
		t.Errorf("incomplete multipart uploads left: %q", ups)
	}
	const big = 2*s3sink.MinPartSize + 1
	if err := s.PutIfAbsent(ctx, "big", gen(6, big)); err != nil {
		t.Fatalf("multipart PutIfAbsent on a free key: %v", err)
	}
	want, _ := sha256Hex(t, gen(6, big))
	if got, _ := getSHA256(t, s, "big"); got != want {
		t.Errorf("big sha256 = %s, want %s", got, want)
	}

	ok, err := s.ProbeCreateOnly(ctx)
	if err != nil || !ok {
		t.Errorf("ProbeCreateOnly = %v, %v; want true (MinIO honours If-None-Match)", ok, err)
	}
	root := srv.NewStore(t, bucket, "")
	if keys := listKeys(t, root, "lease/_hdc/"); len(keys) != 0 {
		t.Errorf("probe left objects: %q", keys)
	}
}

// TestPutIfAbsentMultipartRace has another writer take the key while a
// create-only multipart upload is in flight: the conditional
// CompleteMultipartUpload fails with 412, Put reports ErrExists, the other
// writer's object stays, and the upload is aborted.
func TestPutIfAbsentMultipartRace(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	raw := srv.Client()
	rec := newRecorder()
	var once sync.Once
	rec.inject = func(r *http.Request) (*http.Response, error) {
		if _, ok := r.URL.Query()["uploads"]; ok && r.Method == http.MethodPost {
			once.Do(func() {
				_, err := raw.PutObject(r.Context(), &s3.PutObjectInput{
					Bucket: aws.String(bucket), Key: aws.String("lease"), Body: strings.NewReader("other writer"),
				})
				if err != nil {
					t.Errorf("competing PutObject: %v", err)
				}
			})
		}
		return nil, nil
	}
	cfg := srv.Config(bucket, "")
	cfg.PartSize = s3sink.MinPartSize
	s := newStoreVia(t, srv, cfg, rec)
	err := s.PutIfAbsent(t.Context(), "lease", gen(11, 2*s3sink.MinPartSize+7))
	if !errors.Is(err, sinks.ErrExists) {
		t.Errorf("PutIfAbsent losing the race at completion = %v, want ErrExists", err)
	}
	if got := mustRead(t, s, "lease"); got != "other writer" {
		t.Errorf("lease = %q, want the other writer's body", got)
	}
	if ups := incompleteUploads(t, srv, bucket); len(ups) != 0 {
		t.Errorf("incomplete multipart uploads left: %q", ups)
	}
}

// TestPutIfAbsentNotImplemented fakes a store that answers 501 to
// conditional writes.
func TestPutIfAbsentNotImplemented(t *testing.T) {
	srv := miniotest.Shared(t)
	rec := newRecorder()
	rec.inject = func(r *http.Request) (*http.Response, error) {
		if r.Header.Get("If-None-Match") != "" {
			return s3Error(r, http.StatusNotImplemented, "NotImplemented"), nil
		}
		return nil, nil
	}
	s := newStoreVia(t, srv, srv.Config(srv.NewBucket(t), ""), rec)
	err := s.PutIfAbsent(t.Context(), "lease", strings.NewReader("x"))
	if !errors.Is(err, s3sink.ErrNoConditionalWrites) || !errors.Is(err, sinks.ErrPermanent) {
		t.Errorf("PutIfAbsent on a store without conditional writes = %v", err)
	}
	if ok, err := s.ProbeCreateOnly(t.Context()); ok || err != nil {
		t.Errorf("ProbeCreateOnly = %v, %v; want false, nil", ok, err)
	}

}

// TestProbeDetectsIgnoredCondition fakes a store that accepts If-None-Match
// and ignores it (it overwrites): PutIfAbsent cannot tell, the probe can.
func TestProbeDetectsIgnoredCondition(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	raw := srv.Client()
	rec := newRecorder()
	rec.inject = func(r *http.Request) (*http.Response, error) {
		if r.Header.Get("If-None-Match") == "" {
			return nil, nil
		}
		// Store the object unconditionally, as such a store would.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		key := strings.TrimPrefix(r.URL.Path, "/"+bucket+"/")
		out, err := raw.PutObject(r.Context(), &s3.PutObjectInput{
			Bucket:   aws.String(bucket),
			Key:      aws.String(key),
			Body:     bytes.NewReader(body),
			Metadata: map[string]string{s3sink.MetaSHA256: r.Header.Get("X-Amz-Meta-Sha256")},
		})
		if err != nil {
			return nil, err
		}
		return &http.Response{StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Etag": {aws.ToString(out.ETag)}}, Request: r,
			Body: http.NoBody}, nil
	}
	s := newStoreVia(t, srv, srv.Config(bucket, ""), rec)
	if ok, err := s.ProbeCreateOnly(t.Context()); ok || err != nil {
		t.Errorf("ProbeCreateOnly on a store ignoring If-None-Match = %v, %v; want false, nil", ok, err)
	}
	if keys := listKeys(t, s, ""); len(keys) != 0 {
		t.Errorf("probe left objects: %q", keys)
	}
}
