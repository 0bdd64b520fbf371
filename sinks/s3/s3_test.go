package s3_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hdc-export/hdc-export/sinks"
	s3sink "github.com/hdc-export/hdc-export/sinks/s3"
	"github.com/hdc-export/hdc-export/sinks/s3/miniotest"
)

func TestPrefixIsolation(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	a := srv.NewStore(t, bucket, "tenant")
	b := srv.NewStore(t, bucket, "tenant2/") // trailing slash is ignored
	root := srv.NewStore(t, bucket, "")
	ctx := t.Context()

	for _, put := range []struct {
		s   *s3sink.Store
		key string
	}{{a, "x/1"}, {a, "shared"}, {b, "y/2"}, {b, "shared"}} {
		if err := put.s.Put(ctx, put.key, strings.NewReader(put.s.String())); err != nil {
			t.Fatalf("Put(%s, %s): %v", put.s, put.key, err)
		}
	}

	if got, want := listKeys(t, a, ""), []string{"shared", "x/1"}; !equal(got, want) {
		t.Errorf("%s lists %q, want %q", a, got, want)
	}
	if got, want := listKeys(t, b, ""), []string{"shared", "y/2"}; !equal(got, want) {
		t.Errorf("%s lists %q, want %q", b, got, want)
	}
	if got, want := listKeys(t, root, ""), []string{"tenant/shared", "tenant/x/1", "tenant2/shared", "tenant2/y/2"}; !equal(got, want) {
		t.Errorf("bucket root lists %q, want %q", got, want)
	}
	if got := mustRead(t, a, "shared"); got != a.String() {
		t.Errorf("%s shared = %q", a, got)
	}
	if err := a.Delete(ctx, "shared", "x/1"); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, b, "shared"); got != b.String() {
		t.Errorf("after deleting in %s, %s shared = %q", a, b, got)
	}
	if a.String() != "s3://"+bucket+"/tenant" || b.String() != "s3://"+bucket+"/tenant2" || root.String() != "s3://"+bucket {
		t.Errorf("String() = %s, %s, %s", a, b, root)
	}
}

func TestKeyLengthUnderPrefix(t *testing.T) {
	srv := miniotest.Shared(t)
	s := srv.NewStore(t, srv.NewBucket(t), "p") // object key = "p/" + key
	// MinIO limits each segment to 255 bytes, like a file name.
	fits := strings.Repeat(strings.Repeat("k", 99)+"/", 10) + strings.Repeat("z", sinks.MaxKeyLen-2-1000)
	if err := s.Put(t.Context(), fits, strings.NewReader("x")); err != nil {
		t.Fatalf("Put(%d-byte key): %v", len(fits), err)
	}
	tooLong := fits + "k"
	if err := s.Put(t.Context(), tooLong, strings.NewReader("x")); !errors.Is(err, sinks.ErrInvalidKey) {
		t.Errorf("Put(%d-byte key under a prefix) = %v, want ErrInvalidKey", len(tooLong), err)
	}
}

func TestErrorMapping(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	ctx := t.Context()
	good := srv.NewStore(t, bucket, "")
	if err := good.Put(ctx, "k", strings.NewReader("v")); err != nil {
		t.Fatal(err)
	}

	noBucket := srv.NewStore(t, "no-such-bucket-here", "")
	wrongSecret, err := s3sink.New(ctx, srv.Config(bucket, ""), config.WithCredentialsProvider(
		credentials.NewStaticCredentialsProvider(srv.AccessKey, "wrong-secret-value", "")))
	if err != nil {
		t.Fatal(err)
	}
	unknownKey, err := s3sink.New(ctx, srv.Config(bucket, ""), config.WithCredentialsProvider(
		credentials.NewStaticCredentialsProvider("no-such-access-key", srv.SecretKey, "")))
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		s    *s3sink.Store
	}{{"missing bucket", noBucket}, {"wrong secret", wrongSecret}, {"unknown access key", unknownKey}} {
		ops := map[string]error{
			"Put":          c.s.Put(ctx, "k", strings.NewReader("v")),
			"PutIfAbsent":  c.s.PutIfAbsent(ctx, "new", strings.NewReader("v")),
			"Put(big)":     c.s.Put(ctx, "big", gen(1, s3sink.DefaultPartSize+1)),
			"Get":          getErr(ctx, c.s, "k"),
			"List":         c.s.List(ctx, "", func(sinks.Object) error { return nil }),
			"Delete":       c.s.Delete(ctx, "k"),
			"PutLifecycle": c.s.PutLifecycle(ctx, 30),
			"Walk":         c.s.Walk(ctx, func(sinks.Item) error { return nil }),
		}
		_, ops["Settings"] = c.s.Settings(ctx)
		_, ops["Destroy"] = c.s.Destroy(ctx, []sinks.Item{{Key: "k"}, {Key: "u", Kind: sinks.ItemUpload, UploadID: "x"}})
		if c.s != noBucket { // MinIO answers "Bucket is missing ObjectLockConfiguration": no lock
			_, ops["LockOf"] = c.s.LockOf(ctx, sinks.Item{Key: "k"})
		}
		_, ops["LifecycleRules"] = c.s.LifecycleRules(ctx)
		if _, err := c.s.Stat(ctx, "k"); c.s != noBucket {
			ops["Stat"] = err // HEAD has no body: a missing bucket reads as a missing key
		} else if !errors.Is(err, sinks.ErrNotFound) {
			t.Errorf("%s: Stat = %v, want ErrNotFound", c.name, err)
		}
		for op, err := range ops {
			if !errors.Is(err, sinks.ErrPermanent) {
				t.Errorf("%s: %s = %v, want ErrPermanent", c.name, op, err)
			} else if strings.Contains(err.Error(), srv.SecretKey) || strings.Contains(err.Error(), "wrong-secret-value") {
				t.Errorf("%s: %s error shows a secret: %v", c.name, op, err)
			}
		}
	}

	_, err = good.Get(ctx, "missing")
	if !errors.Is(err, sinks.ErrNotFound) || errors.Is(err, sinks.ErrPermanent) {
		t.Errorf("Get(missing) = %v, want ErrNotFound only", err)
	}
	if !strings.Contains(err.Error(), `s3 get "missing"`) || !strings.Contains(err.Error(), "NoSuchKey") {
		t.Errorf("Get(missing) error %q lacks the operation, key or code", err)
	}
}

// TestPutLifecycle installs the managed rules on a bucket, never
// versioned and versioned, beside another Store's and another tool's, and
// reads them back with LifecycleRules.
func TestPutLifecycle(t *testing.T) {
	srv := miniotest.Shared(t)
	for _, versioning := range versioningStates[:2] {
		t.Run(name(versioning), func(t *testing.T) {
			testPutLifecycle(t, srv, newBucketWith(t, srv, versioning))
		})
	}
}

func testPutLifecycle(t *testing.T, srv *miniotest.Server, bucket string) {
	client := srv.Client()
	ctx := t.Context()

	// Another tool's rule, inside the Store's prefix, must survive.
	_, err := client.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
		Bucket: aws.String(bucket),
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{{
			ID:         aws.String("foreign"),
			Status:     types.ExpirationStatusEnabled,
			Filter:     &types.LifecycleRuleFilter{Prefix: aws.String("lake/tmp/")},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(3)},
		}}},
	})
	if err != nil {
		t.Fatalf("PutBucketLifecycleConfiguration(foreign): %v", err)
	}
	other := srv.NewStore(t, bucket, "other")
	if err := other.PutLifecycle(ctx, 90); err != nil {
		t.Fatalf("PutLifecycle(other): %v", err)
	}
	s := srv.NewStore(t, bucket, "lake")
	if err := s.PutLifecycle(ctx, 0); err == nil {
		t.Error("PutLifecycle(0) succeeded")
	}
	for _, days := range []int{7, 30} { // the second call updates the rules
		if err := s.PutLifecycle(ctx, days); err != nil {
			t.Fatalf("PutLifecycle(%d): %v", days, err)
		}
	}

	// MinIO accepts AbortIncompleteMultipartUpload and drops it: it expires
	// stale multipart uploads on its own (api stale_uploads_expiry, 24 h).
	rules := func(s *s3sink.Store, prefix string, days int) []string {
		return []string{
			fmt.Sprintf("%s: prefix %q, Enabled: expire %d days after write; noncurrent versions 1 day after", s.LifecycleRuleID(), prefix, days),
			fmt.Sprintf("%s-markers: prefix %q, Enabled: remove expired delete markers", s.LifecycleRuleID(), prefix),
		}
	}
	foreign := `foreign: prefix "lake/tmp/", Enabled: expire 3 days after write`
	root := srv.NewStore(t, bucket, "")
	for _, c := range []struct {
		s    *s3sink.Store
		want []string
	}{
		{s, append(rules(s, "lake/", 30), foreign)},
		{other, rules(other, "other/", 90)},
		{root, append(append(rules(s, "lake/", 30), foreign), rules(other, "other/", 90)...)},
	} {
		got, err := c.s.LifecycleRules(ctx)
		if err != nil {
			t.Fatalf("%s: LifecycleRules: %v", c.s, err)
		}
		slices.Sort(got)
		slices.Sort(c.want)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: LifecycleRules:\ngot  %q\nwant %q", c.s, got, c.want)
		}
	}
}
