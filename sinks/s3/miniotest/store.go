package miniotest

import (
	"context"
	"errors"
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
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
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
	return s.newBucket(t, false)
}

// NewLockBucket creates an empty bucket with object lock enabled (which
// also enables versioning) and removes it, with its contents, when t
// finishes. MinIO refuses to force-delete such a bucket (MethodNotAllowed),
// so the clean-up first deletes every version with
// BypassGovernanceRetention: test clean-up is the one place that may
// bypass a lock. Give test objects GOVERNANCE retention only: COMPLIANCE
// retention cannot be bypassed, and its bucket stays until the server
// stops.
func (s *Server) NewLockBucket(t testing.TB) string {
	t.Helper()
	return s.newBucket(t, true)
}

func (s *Server) newBucket(t testing.TB, lock bool) string {
	t.Helper()
	name := bucketName(t.Name(), bucketSeq.Add(1))
	client := s.Client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if lock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	if _, err := client.CreateBucket(ctx, in); err != nil {
		t.Fatalf("miniotest: create bucket %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// MinIO's force delete removes the bucket with its objects and
		// incomplete uploads in one call, but it answers MethodNotAllowed
		// for a bucket with object lock, even an empty one.
		force := s3.WithAPIOptions(smithyhttp.AddHeaderValue("x-minio-force-delete", "true"))
		if lock {
			force = func(*s3.Options) {}
			if err := emptyLockBucket(ctx, client, name); err != nil {
				t.Logf("miniotest: empty bucket %s: %v", name, err)
			}
		}
		_, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)}, force)
		if err != nil {
			t.Logf("miniotest: remove bucket %s: %v", name, err)
		}
	})
	return name
}

// emptyLockBucket deletes every version and delete marker of bucket,
// lifting legal holds and bypassing governance retention, and aborts its
// incomplete uploads.
func emptyLockBucket(ctx context.Context, client *s3.Client, bucket string) error {
	var errs []error
	versions := s3.NewListObjectVersionsPaginator(client, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for versions.HasMorePages() {
		page, err := versions.NextPage(ctx)
		if err != nil {
			return err
		}
		var ids []types.ObjectIdentifier
		for _, v := range page.Versions {
			ids = append(ids, types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
			_, _ = client.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{
				Bucket: aws.String(bucket), Key: v.Key, VersionId: v.VersionId,
				LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOff},
			})
		}
		for _, m := range page.DeleteMarkers {
			ids = append(ids, types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		for _, id := range ids {
			_, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{
				Bucket: aws.String(bucket), Key: id.Key, VersionId: id.VersionId,
				BypassGovernanceRetention: aws.Bool(true),
			})
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	uploads, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, u := range uploads.Uploads {
		_, err := client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId,
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
