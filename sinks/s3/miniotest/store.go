package miniotest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	s3sink "github.com/hdc-export/hdc-export/sinks/s3"
)

// Credentials returns a provider of the server's root credentials.
func (s *Server) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")
}

// Config returns an s3 sink configuration for bucket and prefix on this
// server (path-style, default checksum mode).
func (s *Server) Config(bucket, prefix string) s3sink.Config {
	return s3sink.Config{
		Bucket:    bucket,
		Prefix:    prefix,
		Region:    Region,
		Endpoint:  s.Endpoint,
		PathStyle: true,
	}
}

// NewStore builds a Store for bucket and prefix with the server's
// credentials, or fails t.
func (s *Server) NewStore(t testing.TB, bucket, prefix string) *s3sink.Store {
	t.Helper()
	return s.NewStoreWith(t, s.Config(bucket, prefix))
}

// NewStoreWith builds a Store from cfg with the server's credentials, or
// fails t. cfg usually starts from Config.
func (s *Server) NewStoreWith(t testing.TB, cfg s3sink.Config) *s3sink.Store {
	t.Helper()
	store, err := s3sink.New(t.Context(), cfg, config.WithCredentialsProvider(s.Credentials()))
	if err != nil {
		t.Fatalf("miniotest: s3.New: %v", err)
	}
	return store
}

// Client returns a plain SDK client for the server, for assertions the
// sink does not expose (ListMultipartUploads, HeadObject metadata).
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  s.Credentials(),
	})
}

var bucketSeq atomic.Int64

// NewBucket creates an empty bucket named after t and removes it, with its
// contents, when t finishes.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := bucketName(t.Name(), bucketSeq.Add(1))
	client := s.Client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("miniotest: create bucket %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// MinIO's force delete removes the bucket with its objects and
		// incomplete uploads in one call.
		_, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)},
			s3.WithAPIOptions(smithyhttp.AddHeaderValue("x-minio-force-delete", "true")))
		if err != nil {
			t.Logf("miniotest: remove bucket %s: %v", name, err)
		}
	})
	return name
}

var notBucketChar = regexp.MustCompile(`[^a-z0-9-]+`)

// bucketName derives a valid, unique bucket name (3-63 characters of
// a-z, 0-9 and '-') from a test name.
func bucketName(testName string, seq int64) string {
	base := strings.Trim(notBucketChar.ReplaceAllString(strings.ToLower(testName), "-"), "-")
	suffix := fmt.Sprintf("-%d-%s", seq, randomHex(3))
	if room := 63 - len(suffix); len(base) > room {
		base = strings.TrimRight(base[:room], "-")
	}
	if base == "" {
		base = "t"
	}
	return base + suffix
}
