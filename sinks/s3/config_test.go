package s3

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestValidate(t *testing.T) {
	ok := Config{Bucket: "hdc-lake"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	for _, c := range []struct {
		name string
		cfg  Config
		want []string // substrings, one per expected problem
	}{
		{"empty", Config{}, []string{"s3.bucket: required"}},
		{"bucket", Config{Bucket: "Hdc_Lake"}, []string{"s3.bucket: \"Hdc_Lake\" is not a valid bucket name"}},
		{"bucket short", Config{Bucket: "ab"}, []string{"s3.bucket:"}},
		{"bucket dots", Config{Bucket: "a..b"}, []string{"s3.bucket:"}},
		{"prefix slash", Config{Bucket: "b-1", Prefix: "/lake"}, []string{"s3.prefix: must not start with '/'"}},
		{"prefix dotdot", Config{Bucket: "b-1", Prefix: "lake/../x"}, []string{"s3.prefix: invalid object key"}},
		{"prefix long", Config{Bucket: "b-1", Prefix: strings.Repeat("p", 600)}, []string{"s3.prefix: 600 bytes"}},
		{"endpoint scheme", Config{Bucket: "b-1", Endpoint: "ftp://host"}, []string{"s3.endpoint: scheme must be http or https"}},
		{"endpoint host", Config{Bucket: "b-1", Endpoint: "http://"}, []string{"s3.endpoint: host is missing"}},
		{"endpoint creds", Config{Bucket: "b-1", Endpoint: "https://user:hunter2@minio:9000"}, []string{"s3.endpoint: must not contain credentials"}},
		{"checksum", Config{Bucket: "b-1", Checksum: "md5"}, []string{`s3.checksum: "md5" is not one of`}},
		{"part size", Config{Bucket: "b-1", PartSize: 1 << 20}, []string{"s3.part_size: 1048576 is outside"}},
		{"concurrency", Config{Bucket: "b-1", Concurrency: -1}, []string{"s3.concurrency: -1 is outside"}},
		{"all at once", Config{Prefix: "/x", Checksum: "x", PartSize: 1, Concurrency: 1000}, []string{
			"s3.bucket", "s3.prefix", "s3.checksum", "s3.part_size", "s3.concurrency",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if err == nil {
				t.Fatal("Validate() = nil")
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Validate() = %q, want it to mention %q", msg, w)
				}
			}
			if lines := strings.Count(msg, "\n") + 1; lines != len(c.want) {
				t.Errorf("Validate() reported %d problems, want %d:\n%s", lines, len(c.want), msg)
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("Validate() leaks a secret: %q", msg)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{Bucket: "b-1", Prefix: "lake/"}.withDefaults()
	if c.Prefix != "lake" || c.Region != DefaultRegion || c.PartSize != DefaultPartSize ||
		c.Concurrency != DefaultConcurrency || c.MaxRetries != DefaultMaxRetries || c.Checksum != ChecksumAuto {
		t.Errorf("withDefaults() = %+v", c)
	}
	if c := (Config{MaxRetries: -1}).withDefaults(); c.MaxRetries != 0 {
		t.Errorf("MaxRetries -1 → %d, want 0 (no retries)", c.MaxRetries)
	}
}

func TestChecksumMode(t *testing.T) {
	const (
		supported = aws.RequestChecksumCalculationWhenSupported
		required  = aws.RequestChecksumCalculationWhenRequired
	)
	for _, c := range []struct {
		checksum, endpoint string
		want               aws.RequestChecksumCalculation
	}{
		{"", "", supported},
		{"auto", "", supported},
		{"", "http://minio:9000", required},
		{"AUTO", "https://r2.example", required},
		{"crc32", "http://minio:9000", supported},
		{"required", "http://minio:9000", supported},
		{"off", "", required},
		{"when_required", "", required},
	} {
		cfg := Config{Checksum: c.checksum, Endpoint: c.endpoint}
		if got, err := cfg.checksumMode(); err != nil || got != c.want {
			t.Errorf("checksum %q endpoint %q: %v, %v; want %v", c.checksum, c.endpoint, got, err, c.want)
		}
	}
}
