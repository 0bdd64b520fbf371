package s3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hdc-export/hdc-export/sinks"
)

// abortTimeout bounds the clean-up (AbortMultipartUpload) of a failed or
// cancelled multipart upload; it runs on a fresh context so that it still
// happens when the caller's context is already cancelled.
const abortTimeout = 30 * time.Second

// Store is a sinks.Sink over one S3 bucket and prefix. It is safe for
// concurrent use. Build it with New or NewWithClient.
type Store struct {
	client   *s3.Client
	uploader *transfermanager.Client
	bucket   string
	prefix   string // normalised: no leading or trailing slash; "" for none
	partSize int64
	// maxRetries bounds the resumes of a Get whose body breaks off.
	maxRetries int
	// callOpts apply the checksum mode to every call, so that a client
	// passed to NewWithClient behaves like one built by New.
	callOpts []func(*s3.Options)
}

// New validates cfg and builds a Store with its own S3 client.
//
// Credentials come from the SDK's standard chain: environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), the shared
// config and credentials files (AWS_PROFILE), web identity (IRSA), SSO, and
// the container or instance role. Config never holds them. optFns are
// applied after the Store's own settings and may override them; tests use
// config.WithCredentialsProvider to pass static keys. When the chain finds
// nothing, the error names the variables and roles that provide
// credentials (ErrNoCredentials), and is not retried. A refused connection
// is retried for at most Config.RefusedRetryFor.
//
// New does not contact the store.
func New(ctx context.Context, cfg Config, optFns ...func(*config.LoadOptions) error) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	mode, _ := cfg.checksumMode()

	maxAttempts := cfg.MaxRetries + 1
	retryer := func() aws.Retryer {
		return refusedRetryer{budget: cfg.RefusedRetryFor, RetryerV2: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			// The client-wide retry token bucket would fail requests
			// outright after a burst of errors; a batch exporter prefers
			// to keep backing off until MaxRetries is spent.
			o.RateLimiter = ratelimit.None
			// SlowDown is in the SDK's throttle list already; state it
			// so that a future SDK cannot silently drop it.
			o.Retryables = append(o.Retryables, retry.RetryableErrorCode{
				Codes: map[string]struct{}{"SlowDown": {}},
			})
		})}
	}

	httpClient := awshttp.NewBuildableClient()
	if cfg.InsecureSkipVerify {
		httpClient = httpClient.WithTransportOptions(func(tr *http.Transport) {
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{}
			}
			tr.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // explicit opt-in for test stores
		})
	}

	opts := append([]func(*config.LoadOptions) error{
		config.WithRegion(cfg.Region),
		config.WithRetryer(retryer),
		config.WithHTTPClient(httpClient),
		config.WithRequestChecksumCalculation(mode),
		config.WithResponseChecksumValidation(responseValidation(mode)),
	}, optFns...)
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	if awsCfg.Credentials != nil {
		awsCfg.Credentials = credentialsHint{awsCfg.Credentials}
	}

	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.PathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return newStore(client, cfg), nil
}

// NewWithClient builds a Store over an existing client, for tests and for
// callers that configure the SDK themselves. The client's own retryer,
// endpoint and credentials are used; cfg supplies the bucket, prefix,
// checksum mode and upload tuning, and is validated.
func NewWithClient(client *s3.Client, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("s3: nil client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newStore(client, cfg.withDefaults()), nil
}

func newStore(client *s3.Client, cfg Config) *Store {
	mode, _ := cfg.checksumMode()
	s := &Store{
		client:     client,
		bucket:     cfg.Bucket,
		prefix:     cfg.Prefix,
		partSize:   cfg.PartSize,
		maxRetries: cfg.MaxRetries,
		callOpts: []func(*s3.Options){func(o *s3.Options) {
			o.RequestChecksumCalculation = mode
			o.ResponseChecksumValidation = responseValidation(mode)
		}},
	}
	s.uploader = transfermanager.New(partMD5Client{client}, func(o *transfermanager.Options) {
		o.PartSizeBytes = cfg.PartSize
		// Put itself sends bodies shorter than PartSize as one PutObject,
		// so the transfer manager only sees multipart-sized bodies.
		o.MultipartUploadThreshold = cfg.PartSize
		o.Concurrency = cfg.Concurrency
		o.RequestChecksumCalculation = mode
		if mode == aws.RequestChecksumCalculationWhenSupported {
			o.ChecksumAlgorithm = tmtypes.ChecksumAlgorithmCrc32
		}
		// Abort on a fresh context, so cancellation still cleans up.
		o.FailTimeout = abortTimeout
	})
	return s
}

// responseValidation pairs response checksum validation with the request
// mode: stores that mishandle request checksums often return odd ones.
func responseValidation(mode aws.RequestChecksumCalculation) aws.ResponseChecksumValidation {
	if mode == aws.RequestChecksumCalculationWhenSupported {
		return aws.ResponseChecksumValidationWhenSupported
	}
	return aws.ResponseChecksumValidationWhenRequired
}

// String returns "s3://bucket/prefix" (or "s3://bucket"). It never includes
// the endpoint's credentials, which Config cannot hold anyway.
func (s *Store) String() string {
	if s.prefix == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + s.prefix
}

// validateKey checks key with sinks.ValidateKey, and that the object key
// it maps to fits S3's limit of sinks.MaxKeyLen bytes: under a prefix, the
// longest sink key is shorter by len(Prefix)+1.
func (s *Store) validateKey(key string) error {
	if err := sinks.ValidateKey(key); err != nil {
		return err
	}
	if n := len(s.objectKey(key)); n > sinks.MaxKeyLen {
		return fmt.Errorf("%w: %d bytes with the prefix %q; S3 keys are limited to %d",
			sinks.ErrInvalidKey, n, s.prefix, sinks.MaxKeyLen)
	}
	return nil
}

// objectKey maps a sink key (or list prefix) to the S3 object key.
func (s *Store) objectKey(key string) string {
	if s.prefix == "" {
		return key
	}
	return s.prefix + "/" + key
}

// partMD5Client is the client the transfer manager uploads through: it adds
// Content-MD5 to every UploadPart, an integrity check every S3-compatible
// store verifies, whatever the checksum mode. Parts are buffered, so the
// MD5 is computed over memory and the body rewound. It also settles
// multipart calls retried after a lost answer (see retried.go).
type partMD5Client struct{ *s3.Client }

// UploadPart appends to a copy of optFns: the transfer manager shares one
// slice between its part goroutines.
func (c partMD5Client) UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	return c.Client.UploadPart(ctx, in, append(optFns[:len(optFns):len(optFns)], withContentMD5)...)
}

var (
	_ sinks.Sink       = (*Store)(nil)
	_ sinks.CreateOnly = (*Store)(nil)
	_ sinks.Stater     = (*Store)(nil)
	_ sinks.Inventory  = (*Store)(nil)
	_ fmt.Stringer     = (*Store)(nil)
)
