package miniotest

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestStartStop(t *testing.T) {
	srv := Start(t)
	if !strings.HasPrefix(srv.Endpoint, "http://127.0.0.1:") {
		t.Errorf("Endpoint = %q", srv.Endpoint)
	}
	// Not NewBucket: its clean-up would find the server stopped.
	if _, err := srv.Client().CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("b-1")}); err != nil {
		t.Fatal(err)
	}
	store := srv.NewStore(t, "b-1", "p")
	if err := store.Put(t.Context(), "k", strings.NewReader("v")); err != nil {
		t.Fatalf("Put: %v", err)
	}

	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-srv.done:
	case <-time.After(time.Second):
		t.Error("minio still running after Stop")
	}
	if _, err := os.Stat(srv.dir); !os.IsNotExist(err) {
		t.Errorf("data folder %s left behind: %v", srv.dir, err)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if resp, err := http.Get(srv.Endpoint + "/minio/health/live"); err == nil {
		resp.Body.Close()
		t.Error("server still answers after Stop")
	}
}

func TestNewBucketIsolated(t *testing.T) {
	srv := Start(t)
	a, b := srv.NewBucket(t), srv.NewBucket(t)
	if a == b {
		t.Fatalf("NewBucket returned %q twice", a)
	}
	out, err := srv.Client().ListBuckets(t.Context(), &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, bk := range out.Buckets {
		names = append(names, aws.ToString(bk.Name))
	}
	if len(names) != 2 {
		t.Errorf("buckets = %q, want %q and %q", names, a, b)
	}
}

// TestNewLockBucketIsRemoved checks that the clean-up of a bucket with
// object lock removes it although its objects are retained, held, or
// still being uploaded.
func TestNewLockBucketIsRemoved(t *testing.T) {
	srv := Start(t)
	client := srv.Client()
	var name string
	t.Run("locked", func(t *testing.T) {
		name = srv.NewLockBucket(t)
		ctx := t.Context()
		if _, err := client.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{
			Bucket: aws.String(name),
			ObjectLockConfiguration: &types.ObjectLockConfiguration{
				ObjectLockEnabled: types.ObjectLockEnabledEnabled,
				Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{
					Mode: types.ObjectLockRetentionModeGovernance, Days: aws.Int32(1),
				}},
			},
		}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(name), Key: aws.String("k"),
				Body: strings.NewReader("v"), ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(name), Key: aws.String("k")}); err != nil {
			t.Fatal(err)
		}
		if _, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(name), Key: aws.String("u")}); err != nil {
			t.Fatal(err)
		}
	})
	out, err := client.ListBuckets(t.Context(), &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range out.Buckets {
		if aws.ToString(b.Name) == name {
			t.Errorf("bucket %s with object lock left behind", name)
		}
	}
}

func TestBucketName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	for _, name := range []string{
		"TestX",
		"TestConformance/PutIfAbsentRace",
		"Test_Weird.Name/with spaces/and-ünïcode",
		strings.Repeat("TestVeryLongName", 10),
		"///",
	} {
		got := bucketName(name, 12345)
		if !valid.MatchString(got) {
			t.Errorf("bucketName(%q) = %q, not a valid bucket name", name, got)
		}
	}
}

// fakeTB records Skipf and Fatalf instead of ending the real test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func callRequireBinary(t *testing.T) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		requireBinary(f)
	}()
	<-done
	return f
}

func TestMissingBinary(t *testing.T) {
	t.Setenv(BinEnv, "/nonexistent/minio")

	t.Setenv("CI", "")
	if f := callRequireBinary(t); f.skipped == "" || f.failed != "" || !strings.Contains(f.skipped, "install-minio.sh") {
		t.Errorf("outside CI: skipped %q, failed %q; want a skip with the install command", f.skipped, f.failed)
	}
	t.Setenv("CI", "true")
	if f := callRequireBinary(t); f.failed == "" || f.skipped != "" || !strings.Contains(f.failed, BinEnv) {
		t.Errorf("in CI: skipped %q, failed %q; want a failure", f.skipped, f.failed)
	}
}

func TestParentEnvDropsMinioSettings(t *testing.T) {
	t.Setenv("MINIO_REGION", "mars-1")
	t.Setenv("HDC_MINIO_TEST_KEEP", "yes")
	env := strings.Join(parentEnv(), "\n")
	if strings.Contains(env, "MINIO_REGION") || !strings.Contains(env, "HDC_MINIO_TEST_KEEP=yes") {
		t.Errorf("parentEnv() passes MINIO_* or drops others:\n%s", env)
	}
}
