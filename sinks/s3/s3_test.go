package s3_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

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
		}
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

func TestPutLifecycle(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	client := srv.Client()
	ctx := t.Context()

	// Another tool's rule must survive.
	other := srv.NewStore(t, bucket, "other")
	if err := other.PutLifecycle(ctx, 90); err != nil {
		t.Fatalf("PutLifecycle(other): %v", err)
	}
	s := srv.NewStore(t, bucket, "lake")
	if err := s.PutLifecycle(ctx, 0); err == nil {
		t.Error("PutLifecycle(0) succeeded")
	}
	for _, days := range []int{7, 30} { // the second call updates the rule
		if err := s.PutLifecycle(ctx, days); err != nil {
			t.Fatalf("PutLifecycle(%d): %v", days, err)
		}
	}
	out, err := client.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]string{}
	for _, r := range out.Rules {
		var prefix string
		if r.Filter != nil {
			prefix = aws.ToString(r.Filter.Prefix)
		}
		var abort int32
		if r.AbortIncompleteMultipartUpload != nil {
			abort = aws.ToInt32(r.AbortIncompleteMultipartUpload.DaysAfterInitiation)
		}
		rules[aws.ToString(r.ID)] = fmt.Sprintf("%s prefix=%s expire=%d abort=%d",
			r.Status, prefix, aws.ToInt32(r.Expiration.Days), abort)
	}
	// MinIO accepts AbortIncompleteMultipartUpload and drops it: it expires
	// stale multipart uploads on its own (api stale_uploads_expiry, 24 h).
	want := map[string]string{
		s.LifecycleRuleID():     "Enabled prefix=lake/ expire=30 abort=0",
		other.LifecycleRuleID(): "Enabled prefix=other/ expire=90 abort=0",
	}
	if fmt.Sprint(rules) != fmt.Sprint(want) {
		t.Errorf("lifecycle rules = %v, want %v", rules, want)
	}
}
