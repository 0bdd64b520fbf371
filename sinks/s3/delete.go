package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/hdc-export/hdc-export/sinks"
)

// deleteBatch is the most keys one DeleteObjects call accepts.
const deleteBatch = 1000

// Delete removes the objects at keys, in DeleteObjects batches of 1000. A
// missing key is not an error. Every key is validated before anything is
// deleted. Per-key failures are mapped like any other error and joined;
// deletion continues with the next batch unless ctx is done or a batch
// fails as a whole with a permanent error.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	for _, key := range keys {
		if err := s.validateKey(key); err != nil {
			return fmt.Errorf("s3 %s: %w", opDelete, err)
		}
	}
	var errs []error
	for start := 0; start < len(keys); start += deleteBatch {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("s3 %s: %w", opDelete, err))
			break
		}
		batch := keys[start:min(start+deleteBatch, len(keys))]
		err := s.deleteBatch(ctx, batch)
		if err != nil {
			errs = append(errs, err)
			if errors.Is(err, sinks.ErrPermanent) && !isPerKey(err) {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// perKeyError marks errors that concern one key of a batch that otherwise
// succeeded, so Delete keeps going.
type perKeyError struct{ error }

func (e perKeyError) Unwrap() error { return e.error }

func isPerKey(err error) bool {
	var pk perKeyError
	return errors.As(err, &pk)
}

func (s *Store) deleteBatch(ctx context.Context, keys []string) error {
	ids := make([]types.ObjectIdentifier, len(keys))
	for i, key := range keys {
		ids[i] = types.ObjectIdentifier{Key: aws.String(s.objectKey(key))}
	}
	// Content-MD5 as well as the SDK's CRC32: several S3-compatible stores
	// still insist on Content-MD5 for DeleteObjects.
	opts := append(s.callOpts[:len(s.callOpts):len(s.callOpts)], withContentMD5)
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(s.bucket),
		Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
	}, opts...)
	if err != nil {
		return mapErr(fmt.Sprintf("%s (batch of %d from)", opDelete, len(keys)), keys[0], err)
	}
	var errs []error
	for _, e := range out.Errors {
		code := aws.ToString(e.Code)
		if code == "NoSuchKey" {
			continue
		}
		key, _ := strings.CutPrefix(aws.ToString(e.Key), s.objectKey(""))
		errs = append(errs, perKeyError{mapErr(opDelete, key, &objectError{code: code, message: aws.ToString(e.Message)})})
	}
	return errors.Join(errs...)
}

// withContentMD5 adds a Content-MD5 header to an operation with a small,
// seekable body.
func withContentMD5(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, smithyhttp.AddContentChecksumMiddleware)
}
