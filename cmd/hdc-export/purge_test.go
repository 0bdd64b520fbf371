package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hdc-export/hdc-export/pipeline"
	"github.com/hdc-export/hdc-export/sinks/s3/miniotest"
)

// prodConfig is a config for the real Dev Center: purge must run with it
// although no client secret is set.
const prodConfig = "../../configs/production.yaml"

// purgeJSON runs `purge --check --json` and decodes the report.
func purgeJSON(t *testing.T, vars map[string]string, args ...string) (int, pipeline.PurgeReport, string) {
	t.Helper()
	code, out, stderr := runCLI(t, vars, append([]string{"purge", "--check", "--json", "--config", prodConfig}, args...)...)
	var rep pipeline.PurgeReport
	if out != "" {
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("--json printed no report (%v):\n%s\n%s", err, out, stderr)
		}
	}
	return code, rep, stderr
}

func plant(t *testing.T, lake, key string) {
	t.Helper()
	p := filepath.Join(lake, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestPurgeCheckExitCodesAndJSON: `purge --check` separates clean (0),
// stale found (1), cannot destroy (6) and could not check (7), with a JSON
// report that says which; it needs no Dev Center credentials; and a purge
// job writes its outcome for the textfile collector.
func TestPurgeCheckExitCodesAndJSON(t *testing.T) {
	lake := t.TempDir()
	vars := map[string]string{"HDC_SINK_URL": lake}
	today := time.Now().UTC().Format(time.DateOnly)
	plant(t, lake, "ihv_driver/date="+today+"/part-00000.parquet")

	code, rep, stderr := purgeJSON(t, vars)
	if code != exitOK || rep.Verdict != pipeline.VerdictClean || !rep.Store.Complete || rep.Scanned.Objects != 1 {
		t.Fatalf("clean lake: exit %d, %+v\n%s", code, rep, stderr)
	}

	plant(t, lake, "ihv_driver/date=2020-1-2/part-00000.parquet")
	code, rep, stderr = purgeJSON(t, vars)
	if code != exitStale || rep.Verdict != pipeline.VerdictStale || rep.Objects != 1 || rep.Prefixes["ihv_driver/date=2020-1-2"] != 1 || rep.OldestDate != "2020-01-02" {
		t.Fatalf("stale lake: exit %d, %+v\n%s", code, rep, stderr)
	}
	if !strings.Contains(stderr, "older than the window") {
		t.Errorf("stale: the error does not say what was found: %s", stderr)
	}

	plant(t, lake, "ihv_driver/date=yesterday/part-00000.parquet")
	code, rep, stderr = purgeJSON(t, vars)
	if code != exitCannotDestroy || rep.Verdict != pipeline.VerdictCannotDestroy || rep.Unrecognised != 1 ||
		len(rep.UnrecognisedKeys) != 1 || rep.UnrecognisedKeys[0] != `"ihv_driver/date=yesterday/part-00000.parquet"` {
		t.Fatalf("unrecognised key: exit %d, %+v\n%s", code, rep, stderr)
	}
	if !strings.Contains(stderr, "cannot destroy: 1 unrecognised objects") {
		t.Errorf("cannot destroy: %s", stderr)
	}

	// A purge destroys what it can date and still reports what it cannot.
	metricsFile := filepath.Join(t.TempDir(), "hdc.prom")
	code, _, stderr = runCLI(t, vars, "purge", "--config", prodConfig, "--metrics-file", metricsFile)
	if code != exitCannotDestroy {
		t.Fatalf("purge with an unrecognised key: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(lake, "ihv_driver", "date=2020-1-2")); !os.IsNotExist(err) {
		t.Error("the datable stale partition survived")
	}
	prom, err := os.ReadFile(metricsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`hdc_retention_check_ok{command="purge"} 0` + "\n", `hdc_retention_unrecognised_items{command="purge"} 1` + "\n",
		`hdc_retention_stale_items{command="purge"} 0` + "\n", `hdc_objects_purged_total{command="purge"} 1` + "\n",
		`hdc_purge_items_total{command="purge",outcome="kept",reason="unrecognised"} 1` + "\n", `hdc_retention_check_timestamp_seconds{command="purge"} 1.`} {
		if !strings.Contains(string(prom), want) {
			t.Errorf("metrics file lacks %q:\n%s", want, prom)
		}
	}
	if err := os.RemoveAll(filepath.Join(lake, "ihv_driver", "date=yesterday")); err != nil {
		t.Fatal(err)
	}
	if code, rep, stderr = purgeJSON(t, vars); code != exitOK || rep.Verdict != pipeline.VerdictClean {
		t.Fatalf("after purge: exit %d, %+v\n%s", code, rep, stderr)
	}

	// A store that cannot be read proves nothing.
	srv := miniotest.Shared(t)
	s3vars := s3Vars(t, srv, "s3://no-such-bucket/lake")
	code, _, stderr = runCLI(t, s3vars, "purge", "--check", "--config", prodConfig)
	if code != exitCouldNotCheck || !strings.Contains(stderr, "could not check") {
		t.Fatalf("missing bucket: exit %d\n%s", code, stderr)
	}
}

// s3Vars points the CLI at MinIO (credentials through the SDK's
// environment chain, as in production).
func s3Vars(t *testing.T, srv *miniotest.Server, url string) map[string]string {
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return map[string]string{"HDC_SINK_URL": url, "HDC_S3_ENDPOINT": srv.Endpoint, "HDC_S3_REGION": miniotest.Region}
}

// TestPurgeLockedBucket: on a bucket whose default retention locks every
// object for a day, a stale object cannot be destroyed. --check exits with
// "cannot destroy", naming the count and the date; purge destroys nothing
// it may not and says so; doctor warns.
func TestPurgeLockedBucket(t *testing.T) {
	srv := miniotest.Shared(t)
	client := srv.Client()
	bucket := lockedBucket(t, srv)
	if _, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket),
		Key: aws.String("lake/ihv_driver/date=2020-01-01/part-00000.parquet"), Body: strings.NewReader("PAR1")}); err != nil {
		t.Fatal(err)
	}
	vars := s3Vars(t, srv, "s3://"+bucket+"/lake")
	code, rep, stderr := purgeJSON(t, vars)
	until := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	if code != exitCannotDestroy || rep.Locked != 1 || !strings.HasPrefix(rep.LockedUntil, until) || !rep.Store.ObjectLock || rep.Store.Versioning != "Enabled" {
		t.Fatalf("check: exit %d, %+v\n%s", code, rep, stderr)
	}
	if !strings.Contains(stderr, "cannot destroy: 1 objects locked until "+until) {
		t.Errorf("check does not name the count and the date: %s", stderr)
	}
	code, _, stderr = runCLI(t, vars, "purge", "--config", prodConfig)
	if code != exitCannotDestroy || !strings.Contains(stderr, "locked until "+until) {
		t.Fatalf("purge: exit %d\n%s", code, stderr)
	}
	code, out, _ := runCLI(t, vars, "doctor", "--config", "../../configs/demo.yaml") // the emulator's Dev Center
	if code == exitOK || !strings.Contains(out, "WARN  sink: object lock") || !strings.Contains(out, "GOVERNANCE 1 days") {
		t.Errorf("doctor on a locked bucket: exit %d\n%s", code, out)
	}
}

// lockedBucket creates a bucket with object lock and a default retention
// of GOVERNANCE, one day.
func lockedBucket(t *testing.T, srv *miniotest.Server) string {
	t.Helper()
	client := srv.Client()
	name := strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + "-" + time.Now().Format("150405.000")
	name = strings.ReplaceAll(name, ".", "-")
	if _, err := client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(name), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutObjectLockConfiguration(t.Context(), &s3.PutObjectLockConfigurationInput{Bucket: aws.String(name),
		ObjectLockConfiguration: &types.ObjectLockConfiguration{ObjectLockEnabled: types.ObjectLockEnabledEnabled,
			Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{Mode: types.ObjectLockRetentionModeGovernance, Days: aws.Int32(1)}}}}); err != nil {
		t.Fatal(err)
	}
	return name
}
