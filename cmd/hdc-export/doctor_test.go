package main

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestDoctorRefusedS3FailsFast: doctor against an S3 endpoint that
// refuses connections (a wrong port) reports the failure within seconds,
// not the minutes the standard retry backoff would take.
func TestDoctorRefusedS3FailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	vars := map[string]string{"HDC_SINK_URL": "s3://hdc-test/lake", "HDC_S3_ENDPOINT": "http://" + addr}
	start := time.Now()
	code, out, stderr := runCLI(t, vars, "doctor", "--config", "../../configs/demo.yaml")
	took := time.Since(start)
	t.Logf("doctor took %v, exit %d\n%s", took, code, out)
	if code == exitOK || !strings.Contains(out, "FAIL  sink: write") || !strings.Contains(out, "connection refused") {
		t.Fatalf("doctor on a refused endpoint: exit %d\n%s%s", code, out, stderr)
	}
	if took > 20*time.Second { // about 2 s per S3 check that fails
		t.Errorf("doctor took %v, want seconds", took)
	}
}
