package s3

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // Content-MD5 is an integrity check, not security
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hdc-export/hdc-export/sinks"
)

// MetaSHA256 is the user-metadata name (header x-amz-meta-sha256) under
// which Put records the hex SHA-256 of the bytes it stored.
const MetaSHA256 = "sha256"

// maxCopySize is the largest object CopyObject can rewrite in one call.
const maxCopySize = 5 << 30

// Put stores the whole of r under key, replacing any existing object
// atomically: S3 makes an object visible only once it is complete.
//
// Put reads r once, to EOF, and never rewinds it. A body shorter than
// PartSize is buffered and sent as one PutObject with Content-MD5. A longer
// one is streamed as a multipart upload through the transfer manager, with
// Content-MD5 on every part, holding at most about Concurrency+3 parts in
// memory (its part pool, its copy of the first part, and Put's own); it may
// have up to 10,000 parts (80 GiB at the default part size).
//
// Retries: the SDK retries each request (up to MaxRetries) from Put's own
// buffered copy of the body or part, so transient errors do not fail the
// Put. Put never retries a whole upload, because r cannot be re-read; a
// caller holding a rewindable body may call Put again. If the upload fails
// or ctx is cancelled, a multipart upload is aborted, on a fresh context,
// and the previous object, or its absence, remains. When a
// CompleteMultipartUpload fails, the transfer manager itself logs one line
// through the standard log package before Put returns the error.
//
// Integrity: after the upload, Put checks with HeadObject that the stored
// size equals the bytes read, and stores the SHA-256 of those bytes as user
// metadata (MetaSHA256). For multipart uploads the metadata is added
// afterwards by a server-side self-copy, because the hash is only known at
// the end of the stream; objects over 5 GiB, which CopyObject cannot
// rewrite, carry no SHA-256. If a concurrent Put replaces the object
// between the upload and these checks, the checks are skipped: the newer
// object wins, as with any overlapping Puts.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) error {
	return s.put(ctx, opPut, key, r)
}

// PutIfAbsent stores r under key only if no object exists there, using a
// conditional write (If-None-Match: *). If the key is taken it returns an
// error wrapping sinks.ErrExists and the stored object is untouched. A
// store without conditional writes fails with ErrNoConditionalWrites (call
// ProbeCreateOnly first); note that some older stores silently ignore the
// header, which only ProbeCreateOnly can detect. For bodies of PartSize or
// more the condition is checked when the multipart upload completes.
//
// A request whose answer was lost (the store acted, the connection broke)
// is retried, and the retry then finds the key taken by its own earlier
// attempt. So when a retried write is refused, PutIfAbsent succeeds if the
// key holds exactly the bytes it sent (same size, MD5 and SHA-256): bodies
// that must be told apart, such as lease records, need to differ.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	return s.put(ctx, opPutIfAbsent, key, r)
}

func (s *Store) put(ctx context.Context, op, key string, r io.Reader) error {
	if err := s.validateKey(key); err != nil {
		return fmt.Errorf("s3 %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3 %s %q: %w", op, key, err)
	}
	body := &hashingReader{r: r, h: sha256.New()}
	head, err := readHead(body, s.partSize)
	if err != nil {
		return fmt.Errorf("s3 %s %q: read body: %w", op, key, err)
	}

	multipart := int64(len(head)) >= s.partSize
	if multipart && op == opPutIfAbsent {
		if err := s.checkAbsent(ctx, key); err != nil {
			return err
		}
	}
	var etag string
	if multipart {
		etag, err = s.putMultipart(ctx, op, key, io.MultiReader(bytes.NewReader(head), body))
	} else {
		etag, err = s.putSingle(ctx, op, key, head, body.sum())
	}
	if err != nil {
		return mapErr(op, key, err)
	}
	return s.verify(ctx, op, key, etag, body.n, body.sum(), multipart)
}

// checkAbsent fails with sinks.ErrExists if key holds an object, so that a
// create-only put does not upload a large body in vain. It is only an
// early exit: the conditional CompleteMultipartUpload decides.
func (s *Store) checkAbsent(ctx context.Context, key string) error {
	_, err := s.head(ctx, key, "")
	switch {
	case err == nil:
		return fmt.Errorf("s3 %s %q: %w", opPutIfAbsent, key, sinks.ErrExists)
	case errors.Is(mapErr(opStat, key, err), sinks.ErrNotFound):
		return nil
	default:
		return mapErr(opPutIfAbsent, key, err)
	}
}

// putSingle uploads a buffered body with one PutObject and returns its ETag.
func (s *Store) putSingle(ctx context.Context, op, key string, data []byte, sha string) (string, error) {
	md5sum := md5.Sum(data) //nolint:gosec // integrity, not security
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.objectKey(key)),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(md5sum[:])),
		Metadata:      map[string]string{MetaSHA256: sha},
	}
	if op == opPutIfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	var a attempts
	out, err := s.client.PutObject(ctx, in, withOpt(s.callOpts, a.option)...)
	if err != nil {
		// An earlier attempt may have stored the object and lost its
		// answer, and the retry failed (a create-only one with 412 against
		// that very object): if the key holds these bytes, the put worked.
		if a.retried() {
			if etag, ok := s.ownSingle(ctx, key, data, sha); ok {
				return etag, nil
			}
		}
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// putMultipart streams body through the transfer manager and returns the
// ETag of the completed object. On failure the transfer manager aborts the
// upload (see abortTimeout).
func (s *Store) putMultipart(ctx context.Context, op, key string, body io.Reader) (string, error) {
	in := &transfermanager.UploadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
		Body:   body,
	}
	if op == opPutIfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := s.uploader.UploadObject(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// verify checks the stored object against what Put read, and for multipart
// uploads records the SHA-256 metadata. etag pins the checks to the object
// this Put wrote.
func (s *Store) verify(ctx context.Context, op, key, etag string, n int64, sha string, multipart bool) error {
	out, err := s.head(ctx, key, etag)
	if superseded(err) {
		return nil
	}
	if err != nil {
		return mapErr(op+": verify", key, err)
	}
	if size := aws.ToInt64(out.ContentLength); size != n {
		return fmt.Errorf("s3 %s %q: verify: store holds %d bytes, %d were sent", op, key, size, n)
	}
	if !multipart {
		if got := out.Metadata[MetaSHA256]; got != sha {
			return fmt.Errorf("s3 %s %q: verify: store did not keep the %s metadata", op, key, MetaSHA256)
		}
		return nil
	}
	if n > maxCopySize {
		return nil
	}
	return s.stampSHA256(ctx, op, key, etag, sha)
}

// stampSHA256 adds the SHA-256 metadata to a completed multipart object by
// copying it onto itself, if it is still the object with etag.
func (s *Store) stampSHA256(ctx context.Context, op, key, etag, sha string) error {
	objectKey := s.objectKey(key)
	in := &s3.CopyObjectInput{
		Bucket:            aws.String(s.bucket),
		Key:               aws.String(objectKey),
		CopySource:        aws.String(copySource(s.bucket, objectKey)),
		MetadataDirective: "REPLACE",
		Metadata:          map[string]string{MetaSHA256: sha},
	}
	if etag != "" {
		in.CopySourceIfMatch = aws.String(etag)
	}
	_, err := s.client.CopyObject(ctx, in, s.callOpts...)
	if superseded(err) {
		return nil
	}
	return mapErr(op+": record sha256", key, err)
}

// superseded reports whether err is a failed If-Match: another writer
// replaced the object since this Put wrote it.
func superseded(err error) bool {
	if err == nil {
		return false
	}
	code, status := errorCode(err)
	return code == "PreconditionFailed" || status == http.StatusPreconditionFailed
}

// copySource formats bucket/key for CopyObject, URL-encoding every byte of
// the key except unreserved characters and '/'.
func copySource(bucket, key string) string {
	const hexDigits = "0123456789ABCDEF"
	var b []byte
	b = append(b, bucket...)
	b = append(b, '/')
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '/':
			b = append(b, c)
		default:
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return string(b)
}

// readHead reads up to limit bytes from r, growing its buffer only as the
// data arrives (small bodies stay small) and never beyond limit. A result
// shorter than limit means r reached EOF.
func readHead(r io.Reader, limit int64) ([]byte, error) {
	buf := make([]byte, 0, min(limit, 64<<10))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= limit {
				return buf, nil
			}
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), limit))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// hashingReader counts and hashes the bytes read through it. The transfer
// manager reads its body from one goroutine, so no locking is needed.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashingReader) sum() string { return hex.EncodeToString(h.h.Sum(nil)) }
