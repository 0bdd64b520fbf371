package s3_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hdc-export/hdc-export/sinks"
	"github.com/hdc-export/hdc-export/sinks/s3/miniotest"
	"github.com/hdc-export/hdc-export/sinks/sinktest"
)

// TestMain shares one MinIO server between the package's tests.
func TestMain(m *testing.M) { miniotest.Main(m) }

// TestConformance runs the sinks contract against MinIO, each subtest on
// its own prefix of one bucket.
//
// The Keys case is skipped here (TestConformanceBucketRoot runs it): it
// stores a key of exactly sinks.MaxKeyLen bytes, and S3's 1024-byte limit
// applies to the whole object key, prefix included, so under a prefix
// the Store rightly rejects that key with sinks.ErrInvalidKey
// (TestKeyLengthUnderPrefix).
func TestConformance(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	var n atomic.Int64
	sinktest.Run(t, func(t *testing.T) sinks.Sink {
		if strings.HasSuffix(t.Name(), "/Keys") {
			t.Skip("a sinks.MaxKeyLen key cannot fit under a prefix; covered by TestConformanceBucketRoot")
		}
		return srv.NewStore(t, bucket, fmt.Sprintf("conformance/%03d", n.Add(1)))
	})
}

// TestConformanceBucketRoot runs the contract with no prefix, each subtest
// on a bucket of its own.
func TestConformanceBucketRoot(t *testing.T) {
	srv := miniotest.Shared(t)
	sinktest.Run(t, func(t *testing.T) sinks.Sink {
		return srv.NewStore(t, srv.NewBucket(t), "")
	})
}
