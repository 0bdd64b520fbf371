package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hdc-export/hdc-export/sinks"
)

// Get opens the object at key. A missing key returns an error wrapping
// sinks.ErrNotFound. The caller closes the reader.
//
// The SDK retries opening the object, but not reading its body. So if the
// connection breaks while the body is read, the reader resumes where it
// stopped with a ranged GET pinned to the object's ETag (If-Match), up to
// MaxRetries times per Get. If the object was replaced meanwhile, the read
// fails instead of mixing two versions.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := s.validateKey(key); err != nil {
		return nil, fmt.Errorf("s3 %s: %w", opGet, err)
	}
	out, err := s.getObject(ctx, key, "", 0)
	if err != nil {
		return nil, mapErr(opGet, key, err)
	}
	size := int64(-1)
	if out.ContentLength != nil {
		size = *out.ContentLength
	}
	return &resumingReader{s: s, ctx: ctx, key: key, body: out.Body,
		etag: aws.ToString(out.ETag), size: size, left: s.maxRetries}, nil
}

// getObject issues GetObject for a sink key; from offset and pinned to
// etag when they are set.
func (s *Store) getObject(ctx context.Context, key, etag string, offset int64) (*s3.GetObjectOutput, error) {
	in := &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	}
	if etag != "" {
		in.IfMatch = aws.String(etag)
	}
	if offset > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	return s.client.GetObject(ctx, in, s.callOpts...)
}

// resumingReader is the body of a Get; it resumes after a broken
// connection (see Get).
type resumingReader struct {
	s    *Store
	ctx  context.Context
	key  string
	etag string
	size int64 // the whole object's size, or -1 if unknown
	body io.ReadCloser
	n    int64 // bytes delivered so far
	left int   // resumes left
	err  error // final
}

func (r *resumingReader) Read(p []byte) (int, error) {
	for r.err == nil {
		n, err := r.body.Read(p)
		r.n += int64(n)
		switch {
		case err == nil || errors.Is(err, io.EOF):
			return n, err
		case r.left > 0 && r.etag != "" && r.ctx.Err() == nil:
			r.resume()
		default:
			r.err = err
		}
		if n > 0 {
			return n, nil
		}
	}
	return 0, r.err
}

// resume replaces the broken body with the rest of the same object, or
// sets r.err.
func (r *resumingReader) resume() {
	r.body.Close()
	r.body = io.NopCloser(strings.NewReader(""))
	r.left--
	if r.size >= 0 && r.n >= r.size {
		return // everything arrived before the connection broke
	}
	out, err := r.s.getObject(r.ctx, r.key, r.etag, r.n)
	switch {
	case superseded(err):
		r.err = fmt.Errorf("s3 %s %q: the object was replaced while it was read: %w", opGet, r.key, err)
	case err != nil:
		r.err = mapErr(opGet+" (resume at byte "+strconv.FormatInt(r.n, 10)+")", r.key, err)
	default:
		r.body = out.Body
	}
}

func (r *resumingReader) Close() error { return r.body.Close() }

// Stat returns the size and modification time of the object at key, or an
// error wrapping sinks.ErrNotFound.
func (s *Store) Stat(ctx context.Context, key string) (sinks.Object, error) {
	if err := s.validateKey(key); err != nil {
		return sinks.Object{}, fmt.Errorf("s3 %s: %w", opStat, err)
	}
	out, err := s.head(ctx, key, "")
	if err != nil {
		return sinks.Object{}, mapErr(opStat, key, err)
	}
	return sinks.Object{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ModTime: aws.ToTime(out.LastModified),
	}, nil
}

// head issues HeadObject for a sink key, conditional on etag when set.
func (s *Store) head(ctx context.Context, key, etag string) (*s3.HeadObjectOutput, error) {
	in := &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	}
	if etag != "" {
		in.IfMatch = aws.String(etag)
	}
	return s.client.HeadObject(ctx, in, s.callOpts...)
}

// List calls fn for every object whose key starts with prefix, in ascending
// byte order, with keys relative to the Store's prefix. It pages through
// ListObjectsV2 (1000 keys a page); S3 returns keys in UTF-8 binary order,
// which is byte order. Objects whose relative key is not a valid sink key
// (folder markers such as "dir/", keys with empty segments or control
// characters written by other tools) are skipped. Keys are listed
// URL-encoded (encoding-type=url) and decoded: MinIO writes a control
// character into the XML listing as it is, which no XML parser accepts, so
// one such key would otherwise break the whole listing.
func (s *Store) List(ctx context.Context, prefix string, fn func(sinks.Object) error) error {
	if err := sinks.ValidatePrefix(prefix); err != nil {
		return fmt.Errorf("s3 %s %q: %w", opList, prefix, err)
	}
	root := s.objectKey("")
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket:       aws.String(s.bucket),
		Prefix:       aws.String(root + prefix),
		EncodingType: types.EncodingTypeUrl,
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx, s.callOpts...)
		if err != nil {
			return mapErr(opList, prefix, err)
		}
		for _, obj := range page.Contents {
			full, err := decodeKey(page.EncodingType, aws.ToString(obj.Key))
			if err != nil {
				return fmt.Errorf("s3 %s %q: listed key %q: %w", opList, prefix, aws.ToString(obj.Key), err)
			}
			key, ok := strings.CutPrefix(full, root)
			if !ok || sinks.ValidateKey(key) != nil {
				continue
			}
			err = fn(sinks.Object{
				Key:     key,
				Size:    aws.ToInt64(obj.Size),
				ModTime: aws.ToTime(obj.LastModified),
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}
