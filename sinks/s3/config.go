package s3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"

	"github.com/hdc-export/hdc-export/sinks"
)

// Defaults applied by Config.withDefaults.
const (
	DefaultRegion      = "us-east-1"
	DefaultPartSize    = 8 << 20 // 8 MiB
	DefaultConcurrency = 4
	DefaultMaxRetries  = 8

	// MinPartSize and MaxPartSize are S3's limits for a multipart part.
	MinPartSize = 5 << 20 // 5 MiB
	MaxPartSize = 5 << 30 // 5 GiB

	maxConcurrency = 64
	maxPrefixLen   = sinks.MaxKeyLen / 2
)

// Checksum modes accepted by Config.Checksum.
const (
	// ChecksumAuto lets the SDK add its CRC32 checksums where the store is
	// known to support them: on AWS (no Endpoint) it behaves as
	// ChecksumCRC32, on a custom endpoint as ChecksumOff.
	ChecksumAuto = "auto"
	// ChecksumCRC32 forces SDK CRC32 checksums on every upload request
	// ("required" is an alias).
	ChecksumCRC32 = "crc32"
	// ChecksumOff sends SDK checksums only where the S3 API requires them
	// ("when_required" is an alias). Content-MD5 on single-part uploads and
	// the size check still apply.
	ChecksumOff = "off"
)

// Config configures a Store. The zero value of every optional field means
// its default. Credentials are deliberately absent: they come from the SDK's
// standard chain (see New).
type Config struct {
	// Bucket is the bucket name. Required.
	Bucket string `yaml:"bucket"`
	// Prefix is prepended to every key as Prefix + "/" + key. No leading
	// slash; a trailing slash is ignored; empty means the bucket root.
	Prefix string `yaml:"prefix"`
	// Region is the signing region. Default "us-east-1".
	Region string `yaml:"region"`
	// Endpoint is the base URL of an S3-compatible store (MinIO, Ceph, R2…),
	// for example "http://127.0.0.1:9000". Empty means AWS.
	Endpoint string `yaml:"endpoint"`
	// PathStyle selects path-style addressing (https://host/bucket/key)
	// instead of virtual-hosted style. MinIO and most self-hosted stores
	// need it.
	PathStyle bool `yaml:"path_style"`
	// Checksum selects the SDK's request checksums: "auto" (default),
	// "crc32" (alias "required") or "off" (alias "when_required").
	//
	// Why "auto" is not simply the SDK default: since early 2025 the SDK
	// adds a CRC32 checksum to every upload, and over HTTPS sends it as an
	// aws-chunked trailer (Content-Encoding: aws-chunked,
	// x-amz-trailer). Several S3-compatible stores reject or mis-store such
	// requests, so against a custom Endpoint "auto" computes checksums only
	// where the operation requires them, and relies on Content-MD5 and the
	// post-upload size check. Against AWS, "auto" keeps the CRC32 checksums.
	Checksum string `yaml:"checksum"`
	// PartSize is the multipart part size in bytes, and the size from
	// which Put switches to a multipart upload. Default 8 MiB, minimum 5 MiB.
	PartSize int64 `yaml:"part_size"`
	// Concurrency is the number of parts uploaded in parallel. Default 4.
	Concurrency int `yaml:"concurrency"`
	// MaxRetries is how many times one request is retried after its first
	// attempt, with exponential backoff, on 5xx, SlowDown/503, throttling
	// and network errors. Default 8; negative disables retries.
	MaxRetries int `yaml:"max_retries"`
	// RefusedRetryFor bounds the retries of a request whose connection was
	// refused (nothing listens at the endpoint): short waits adding up to
	// at most this long, then the request fails. Default
	// DefaultRefusedRetryFor (10 s); negative means no retry.
	RefusedRetryFor time.Duration `yaml:"refused_retry_for"`
	// InsecureSkipVerify disables TLS certificate verification. Off by
	// default; use it only for a test store with a self-signed certificate.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// bucketName is the S3 bucket naming rule (general purpose buckets).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Validate reports every problem in c, each prefixed with its field path
// ("s3.bucket: ..."), joined with errors.Join. Zero values that have a
// default are valid.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("s3.%s: "+format, append([]any{field}, args...)...))
	}

	switch {
	case c.Bucket == "":
		bad("bucket", "required")
	case !bucketName.MatchString(c.Bucket) || strings.Contains(c.Bucket, ".."):
		bad("bucket", "%q is not a valid bucket name (3-63 characters: a-z, 0-9, '.', '-')", c.Bucket)
	}

	if p := strings.TrimSuffix(c.Prefix, "/"); p != "" {
		switch {
		case strings.HasPrefix(p, "/"):
			bad("prefix", "must not start with '/'")
		case len(p) > maxPrefixLen:
			bad("prefix", "%d bytes is longer than %d, leaving too little of S3's %d-byte key limit", len(p), maxPrefixLen, sinks.MaxKeyLen)
		default:
			if err := sinks.ValidateKey(p); err != nil {
				bad("prefix", "%v", err)
			}
		}
	}

	if c.Endpoint != "" {
		if err := validateEndpoint(c.Endpoint); err != nil {
			bad("endpoint", "%v", err)
		}
	}

	if _, err := c.checksumMode(); err != nil {
		bad("checksum", "%v", err)
	}

	if c.PartSize != 0 && (c.PartSize < MinPartSize || c.PartSize > MaxPartSize) {
		bad("part_size", "%d is outside [%d, %d] (5 MiB to 5 GiB)", c.PartSize, MinPartSize, MaxPartSize)
	}
	if c.Concurrency < 0 || c.Concurrency > maxConcurrency {
		bad("concurrency", "%d is outside [1, %d] (0 means the default, %d)", c.Concurrency, maxConcurrency, DefaultConcurrency)
	}
	return errors.Join(errs...)
}

// validateEndpoint accepts an absolute http(s) URL with a host and no
// credentials, query or fragment.
func validateEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		// url.Parse echoes the input, which could hold credentials.
		return errors.New("not a valid URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("scheme must be http or https")
	case u.Host == "":
		return errors.New("host is missing")
	case u.User != nil:
		return errors.New("must not contain credentials; use the SDK credential chain")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("must not contain a query or fragment")
	}
	return nil
}

// withDefaults returns c with defaults filled in and Prefix normalised.
func (c Config) withDefaults() Config {
	c.Prefix = strings.TrimSuffix(c.Prefix, "/")
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.Checksum == "" {
		c.Checksum = ChecksumAuto
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	switch {
	case c.RefusedRetryFor == 0:
		c.RefusedRetryFor = DefaultRefusedRetryFor
	case c.RefusedRetryFor < 0:
		c.RefusedRetryFor = 0
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	return c
}

// checksumMode resolves Checksum (with "auto" decided by Endpoint) to the
// SDK's request checksum setting.
func (c *Config) checksumMode() (aws.RequestChecksumCalculation, error) {
	switch strings.ToLower(c.Checksum) {
	case "", ChecksumAuto:
		if c.Endpoint == "" {
			return aws.RequestChecksumCalculationWhenSupported, nil
		}
		return aws.RequestChecksumCalculationWhenRequired, nil
	case ChecksumCRC32, "required", "when_supported":
		return aws.RequestChecksumCalculationWhenSupported, nil
	case ChecksumOff, "when_required":
		return aws.RequestChecksumCalculationWhenRequired, nil
	}
	return 0, fmt.Errorf("%q is not one of auto, crc32, required, off, when_required", c.Checksum)
}

// WithSlog sends the AWS SDK's own messages (such as its checksum and
// retry warnings, which it would print as plain lines on stderr) to log:
// pass it to New. Warnings stay warnings; anything else is debug.
func WithSlog(log *slog.Logger) func(*config.LoadOptions) error {
	return config.WithLogger(logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		level := slog.LevelDebug
		if c == logging.Warn {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "aws sdk: "+fmt.Sprintf(format, v...))
	}))
}
