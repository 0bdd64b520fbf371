package s3

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hdc-export/hdc-export/sinks"
)

// Get opens the object at key. A missing key returns an error wrapping
// sinks.ErrNotFound. The caller closes the reader.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := s.validateKey(key); err != nil {
		return nil, fmt.Errorf("s3 %s: %w", opGet, err)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	}, s.callOpts...)
	if err != nil {
		return nil, mapErr(opGet, key, err)
	}
	return out.Body, nil
}

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
// (folder markers such as "dir/", keys with empty segments written by
// other tools) are skipped.
func (s *Store) List(ctx context.Context, prefix string, fn func(sinks.Object) error) error {
	if err := sinks.ValidatePrefix(prefix); err != nil {
		return fmt.Errorf("s3 %s %q: %w", opList, prefix, err)
	}
	root := s.objectKey("")
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(root + prefix),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx, s.callOpts...)
		if err != nil {
			return mapErr(opList, prefix, err)
		}
		for _, obj := range page.Contents {
			key, ok := strings.CutPrefix(aws.ToString(obj.Key), root)
			if !ok || sinks.ValidateKey(key) != nil {
				continue
			}
			err := fn(sinks.Object{
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
