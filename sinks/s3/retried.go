package s3

import (
	"context"
	"crypto/md5" //nolint:gosec // S3's multipart ETag is an MD5 of MD5s
	"encoding/hex"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
)

// A write whose answer is lost (the connection resets after the store
// acted) is retried by the SDK, and the retry meets the store in the state
// the first attempt left. Most S3 writes are idempotent, but three are not,
// and this file settles them:
//
//   - a create-only PutObject (If-None-Match: *) answers 412 to its own
//     earlier attempt;
//   - a CompleteMultipartUpload answers NoSuchUpload (or 412 when
//     create-only) once an earlier attempt completed the upload;
//   - a CreateMultipartUpload starts a second upload, orphaning the first.
//
// When a retried PutObject or CompleteMultipartUpload fails, for these or
// any other reasons, the key is checked for exactly the object this put
// sent (ownSingle; the multipart ETag of the parts): if it is there, the
// write succeeded. Orphaned uploads are aborted. Each check runs only when
// the operation took more than one attempt, so a single attempt's answer
// is never second-guessed.

// strayMargin widens the window in which a retried CreateMultipartUpload
// may have started uploads of its own, for clock skew between this host
// and the store.
const strayMargin = time.Minute

// abortAttempts is the least number of attempts an AbortMultipartUpload
// gets, whatever MaxRetries says: an abort that gives up leaves an
// incomplete upload behind, which costs storage until a lifecycle rule
// removes it.
const abortAttempts = DefaultMaxRetries + 1

// attempts counts the attempts, retries included, of the operations it is
// passed to as an option.
type attempts struct{ n atomic.Int32 }

// option installs the counter after the retry middleware, so it sees
// every attempt.
func (a *attempts) option(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("hdcCountAttempts",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				a.n.Add(1)
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	})
}

// retried reports whether the operation took more than one attempt, so
// that an earlier attempt may have acted without its answer arriving.
func (a *attempts) retried() bool { return a.n.Load() > 1 }

// withOpt returns optFns with opt appended, never writing into the
// caller's backing array (the transfer manager shares one slice between
// goroutines).
func withOpt(optFns []func(*s3.Options), opt func(*s3.Options)) []func(*s3.Options) {
	return append(optFns[:len(optFns):len(optFns)], opt)
}

// ownSingle reports whether key holds the single-part object a retried
// PutObject sent: same MD5 (the ETag), size and SHA-256 metadata. It
// returns the object's ETag when it does.
func (s *Store) ownSingle(ctx context.Context, key string, data []byte, sha string) (string, bool) {
	sum := md5.Sum(data) //nolint:gosec // integrity, not security
	out, err := s.head(ctx, key, "")
	if err != nil || aws.ToInt64(out.ContentLength) != int64(len(data)) ||
		out.Metadata[MetaSHA256] != sha || trimETag(out.ETag) != hex.EncodeToString(sum[:]) {
		return "", false
	}
	return aws.ToString(out.ETag), true
}

// CompleteMultipartUpload completes an upload; if a retried completion
// fails (typically NoSuchUpload, or 412 for a create-only upload), it
// checks whether an earlier attempt completed it: the key then holds an
// object with the multipart ETag of exactly these parts, and the
// completion succeeded.
func (c partMD5Client) CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	var a attempts
	out, err := c.Client.CompleteMultipartUpload(ctx, in, withOpt(optFns, a.option)...)
	if err == nil || !a.retried() {
		return out, err
	}
	want := multipartETag(in.MultipartUpload)
	head, herr := c.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: in.Bucket, Key: in.Key})
	if want == "" || herr != nil || trimETag(head.ETag) != want {
		return out, err
	}
	return &s3.CompleteMultipartUploadOutput{Bucket: in.Bucket, Key: in.Key, ETag: head.ETag}, nil
}

// multipartETag is the ETag S3 gives the object completed from parts: the
// MD5 of the parts' binary MD5s, a dash and the number of parts. It is ""
// when a part's ETag is not a plain MD5 (encrypted stores).
func multipartETag(u *types.CompletedMultipartUpload) string {
	if u == nil || len(u.Parts) == 0 {
		return ""
	}
	h := md5.New() //nolint:gosec // the store's definition, not security
	for _, p := range u.Parts {
		b, err := hex.DecodeString(trimETag(p.ETag))
		if err != nil || len(b) != md5.Size {
			return ""
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(u.Parts))
}

// CreateMultipartUpload starts an upload; if that took more than one
// attempt, an earlier attempt may have started an upload whose ID never
// arrived, and such strays of the same key are aborted (see abortStrays).
func (c partMD5Client) CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	var a attempts
	start := time.Now()
	out, err := c.Client.CreateMultipartUpload(ctx, in, withOpt(optFns, a.option)...)
	if a.retried() {
		ours := ""
		if err == nil {
			ours = aws.ToString(out.UploadId)
		}
		c.abortStrays(ctx, aws.ToString(in.Bucket), aws.ToString(in.Key), ours, start.Add(-strayMargin), time.Now().Add(strayMargin))
	}
	return out, err
}

// abortStrays aborts, best effort, the incomplete uploads of exactly key
// other than ours that were initiated between from and to. Under the
// lake's lease no other writer uploads the same key at the same time; if
// one did, its Put would fail cleanly and leave the previous object.
func (c partMD5Client) abortStrays(ctx context.Context, bucket, key, ours string, from, to time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	list, err := c.Client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{
		Bucket: aws.String(bucket),
		Prefix: aws.String(key),
	}, persistent)
	if err != nil {
		return
	}
	for _, u := range list.Uploads {
		t := aws.ToTime(u.Initiated)
		if aws.ToString(u.Key) != key || aws.ToString(u.UploadId) == ours || t.Before(from) || t.After(to) {
			continue
		}
		_, _ = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket:   aws.String(bucket),
			Key:      aws.String(key),
			UploadId: u.UploadId,
		})
	}
}

// AbortMultipartUpload aborts an upload with at least abortAttempts
// attempts.
func (c partMD5Client) AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	return c.Client.AbortMultipartUpload(ctx, in, withOpt(optFns, persistent)...)
}

// persistent gives an operation of the clean-up at least abortAttempts
// attempts.
func persistent(o *s3.Options) {
	if o.Retryer != nil && o.Retryer.MaxAttempts() < abortAttempts {
		o.Retryer = retry.AddWithMaxAttempts(o.Retryer, abortAttempts)
	}
}

// trimETag returns an ETag without its quotes.
func trimETag(etag *string) string { return strings.Trim(aws.ToString(etag), `"`) }
