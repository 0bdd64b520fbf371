package s3_test

import (
	"bytes"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/hdc-export/hdc-export/sinks"
	s3sink "github.com/hdc-export/hdc-export/sinks/s3"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestRefusedEndpointFailsFast: a store whose endpoint refuses
// connections (a wrong port) fails after RefusedRetryFor, having retried
// with short waits, instead of the standard backoff's minute and a half.
func TestRefusedEndpointFailsFast(t *testing.T) {
	cfg := s3sink.Config{Bucket: "hdc-test", Endpoint: "http://" + closedPort(t), PathStyle: true, RefusedRetryFor: time.Second}
	s, err := s3sink.New(t.Context(), cfg, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("key", "secret", "")))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.Put(t.Context(), "a/b", bytes.NewReader([]byte("x")))
	took := time.Since(start)
	t.Logf("refused endpoint failed after %v: %v", took, err)
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "refused_retry_for") {
		t.Fatalf("err = %v, want a refused connection naming s3.refused_retry_for", err)
	}
	// Waits of 250 ms and 500 ms fit the 1 s budget, the next 1 s does not.
	if took < 700*time.Millisecond || took > 10*time.Second {
		t.Errorf("failed after %v, want about 0.75 s (retried briefly, then stopped)", took)
	}
}

// TestMissingCredentialsMessage: with no credentials anywhere, the error
// names the variables, the profile and the role options instead of the
// SDK's instance-metadata message, is permanent, and comes quickly. No
// network is used: the instance metadata service is disabled, or pointed
// at a closed loopback port.
func TestMissingCredentialsMessage(t *testing.T) {
	for name, imds := range map[string][2]string{
		"imds disabled":    {"AWS_EC2_METADATA_DISABLED", "true"},
		"imds unreachable": {"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://" + closedPort(t)},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
				"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
				"AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT"} {
				t.Setenv(v, "")
			}
			t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
			t.Setenv(imds[0], imds[1])
			s, err := s3sink.New(t.Context(), s3sink.Config{Bucket: "hdc-test", Endpoint: "http://" + closedPort(t), PathStyle: true})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = s.Put(t.Context(), "a/b", bytes.NewReader([]byte("x")))
			took := time.Since(start)
			t.Logf("after %v: %v", took, err)
			if !errors.Is(err, s3sink.ErrNoCredentials) || !errors.Is(err, sinks.ErrPermanent) {
				t.Fatalf("err = %v, want ErrNoCredentials and sinks.ErrPermanent", err)
			}
			msg := err.Error()
			for _, want := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "instance profile", "IRSA", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message does not name %s: %s", want, msg)
				}
			}
			if strings.Contains(msg, "IMDS role") || strings.Contains(msg, "ec2imds") {
				t.Errorf("message shows the SDK's instance-metadata error: %s", msg)
			}
			if took > 10*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}
