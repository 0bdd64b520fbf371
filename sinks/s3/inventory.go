package s3

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/hdc-export/hdc-export/sinks"
)

// Settings reads the bucket's versioning state (GetBucketVersioning) and
// object lock configuration (GetObjectLockConfiguration). A store that
// answers NotImplemented has no versioning, or no object lock; a bucket
// without an object lock configuration has no object lock.
func (s *Store) Settings(ctx context.Context) (sinks.Settings, error) {
	versioning, err := s.versioning(ctx, opSettings)
	if err != nil {
		return sinks.Settings{}, err
	}
	st := sinks.Settings{Versioning: versioning}
	out, err := s.client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{
		Bucket: aws.String(s.bucket),
	}, s.callOpts...)
	switch {
	case err == nil:
	case noLock(err) || notImplemented(err):
		return st, nil
	default:
		return sinks.Settings{}, mapErr(opSettings+" (object lock)", "", err)
	}
	cfg := out.ObjectLockConfiguration
	if cfg == nil || cfg.ObjectLockEnabled != types.ObjectLockEnabledEnabled {
		return st, nil
	}
	st.ObjectLock = true
	if cfg.Rule != nil && cfg.Rule.DefaultRetention != nil {
		r := cfg.Rule.DefaultRetention
		st.DefaultRetention = sinks.Retention{
			Mode: string(r.Mode),
			Days: int(aws.ToInt32(r.Days)) + 365*int(aws.ToInt32(r.Years)),
		}
	}
	return st, nil
}

// versioning returns the bucket's versioning status: "" if versioning was
// never enabled (or the store does not implement it), else
// sinks.VersioningEnabled or sinks.VersioningSuspended. Errors name op.
func (s *Store) versioning(ctx context.Context, op string) (string, error) {
	out, err := s.client.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{
		Bucket: aws.String(s.bucket),
	}, s.callOpts...)
	switch {
	case err == nil:
		return string(out.Status), nil
	case notImplemented(err):
		return "", nil
	}
	return "", mapErr(op+" (versioning)", "", err)
}

// Walk calls fn for everything stored under the Store's prefix, with keys
// relative to it and exactly as stored: keys List skips (empty, ending in a
// slash, with backslashes, control characters or bytes that are not UTF-8)
// are reported too.
//
// It reads the bucket's versioning state first. On a bucket that is or was
// versioned it pages through ListObjectVersions: a current version is a
// sinks.ItemObject, a noncurrent one a sinks.ItemVersion, each with its
// version id, and every delete marker a sinks.ItemDeleteMarker. On a
// bucket never versioned it pages through ListObjectsV2, whose objects are
// sinks.ItemObject without a version id. Then it pages through the
// multipart uploads in progress: each is a sinks.ItemUpload, with the
// upload's initiation time as ModTime and Size 0.
//
// Listings ask for URL-encoded keys (encoding-type=url) and decode them:
// XML 1.0 cannot carry most control characters or bytes that are not
// UTF-8. A store would otherwise replace them (with U+FFFD), so that the
// key reported could not delete the object, or write them as they are, as
// MinIO does, so that no XML parser reads the listing.
//
// Uploads are listed for the whole bucket and filtered by prefix: MinIO
// takes the prefix of ListMultipartUploads for an exact object name, and
// would report none of the uploads under a prefix.
func (s *Store) Walk(ctx context.Context, fn func(sinks.Item) error) error {
	versioning, err := s.versioning(ctx, opWalk)
	if err != nil {
		return err
	}
	root := s.objectKey("")
	if versioning != "" {
		err = s.walkVersions(ctx, root, fn)
	} else {
		err = s.walkObjects(ctx, root, fn)
	}
	if err != nil {
		return err
	}
	return s.walkUploads(ctx, root, fn)
}

// walkObjects reports the objects of a bucket that was never versioned.
func (s *Store) walkObjects(ctx context.Context, root string, fn func(sinks.Item) error) error {
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket:       aws.String(s.bucket),
		Prefix:       aws.String(root),
		EncodingType: types.EncodingTypeUrl,
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx, s.callOpts...)
		if err != nil {
			return mapErr(opWalk, root, err)
		}
		for _, obj := range page.Contents {
			key, err := relativeKey(root, page.EncodingType, obj.Key)
			if err != nil {
				return err
			}
			err = fn(sinks.Item{
				Key:     key,
				Kind:    sinks.ItemObject,
				Latest:  true,
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

// walkVersions reports the versions and delete markers of a versioned
// bucket. It pages by hand: the SDK's paginator would send back the
// URL-encoded key marker as if it were a key.
func (s *Store) walkVersions(ctx context.Context, root string, fn func(sinks.Item) error) error {
	in := &s3.ListObjectVersionsInput{
		Bucket:       aws.String(s.bucket),
		Prefix:       aws.String(root),
		EncodingType: types.EncodingTypeUrl,
	}
	for {
		page, err := s.client.ListObjectVersions(ctx, in, s.callOpts...)
		if err != nil {
			return mapErr(opWalk, root, err)
		}
		for _, v := range page.Versions {
			key, err := relativeKey(root, page.EncodingType, v.Key)
			if err != nil {
				return err
			}
			it := sinks.Item{
				Key:       key,
				Kind:      sinks.ItemVersion,
				VersionID: aws.ToString(v.VersionId),
				Latest:    aws.ToBool(v.IsLatest),
				Size:      aws.ToInt64(v.Size),
				ModTime:   aws.ToTime(v.LastModified),
			}
			if it.Latest {
				it.Kind = sinks.ItemObject
			}
			if err := fn(it); err != nil {
				return err
			}
		}
		for _, m := range page.DeleteMarkers {
			key, err := relativeKey(root, page.EncodingType, m.Key)
			if err != nil {
				return err
			}
			err = fn(sinks.Item{
				Key:       key,
				Kind:      sinks.ItemDeleteMarker,
				VersionID: aws.ToString(m.VersionId),
				Latest:    aws.ToBool(m.IsLatest),
				ModTime:   aws.ToTime(m.LastModified),
			})
			if err != nil {
				return err
			}
		}
		if !aws.ToBool(page.IsTruncated) {
			return nil
		}
		if in.KeyMarker, in.VersionIdMarker, err = nextMarkers(page.EncodingType, page.NextKeyMarker, page.NextVersionIdMarker,
			in.KeyMarker, in.VersionIdMarker, root); err != nil {
			return err
		}
	}
}

// nextMarkers decodes the markers of a truncated listing's next page (a
// key, and a version or upload id) and checks that the store moved on
// from the markers of the page just read.
func nextMarkers(enc types.EncodingType, nextKey, nextID, key, id *string, root string) (*string, *string, error) {
	marker, err := decodeKey(enc, aws.ToString(nextKey))
	if err != nil {
		return nil, nil, fmt.Errorf("s3 %s %q: next key marker: %w", opWalk, root, err)
	}
	if marker == aws.ToString(key) && aws.ToString(nextID) == aws.ToString(id) {
		return nil, nil, fmt.Errorf("s3 %s %q: the store repeated the page after key marker %q", opWalk, root, marker)
	}
	return aws.String(marker), aws.String(aws.ToString(nextID)), nil
}

// walkUploads reports the multipart uploads in progress under root. It
// lists the whole bucket's uploads (see Walk) and pages by hand, like
// walkVersions.
func (s *Store) walkUploads(ctx context.Context, root string, fn func(sinks.Item) error) error {
	in := &s3.ListMultipartUploadsInput{
		Bucket:       aws.String(s.bucket),
		EncodingType: types.EncodingTypeUrl,
	}
	for {
		page, err := s.client.ListMultipartUploads(ctx, in, s.callOpts...)
		if err != nil {
			return mapErr(opWalk+" (multipart uploads)", root, err)
		}
		for _, u := range page.Uploads {
			full, err := decodeKey(page.EncodingType, aws.ToString(u.Key))
			if err != nil {
				return fmt.Errorf("s3 %s %q: upload key: %w", opWalk, root, err)
			}
			key, ok := strings.CutPrefix(full, root)
			if !ok {
				continue // another prefix's upload
			}
			err = fn(sinks.Item{
				Key:      key,
				Kind:     sinks.ItemUpload,
				UploadID: aws.ToString(u.UploadId),
				ModTime:  aws.ToTime(u.Initiated),
			})
			if err != nil {
				return err
			}
		}
		if !aws.ToBool(page.IsTruncated) {
			return nil
		}
		if in.KeyMarker, in.UploadIdMarker, err = nextMarkers(page.EncodingType, page.NextKeyMarker, page.NextUploadIdMarker,
			in.KeyMarker, in.UploadIdMarker, root); err != nil {
			return err
		}
	}
}

// decodeKey undoes encoding-type=url on a key from a listing, when the
// store says it applied it (a store that ignores the request answers
// without EncodingType, with keys as they are). S3 encodes a space as '+'
// and a '+' as "%2B", as url.QueryEscape does.
func decodeKey(enc types.EncodingType, key string) (string, error) {
	if !strings.EqualFold(string(enc), string(types.EncodingTypeUrl)) {
		return key, nil
	}
	return url.QueryUnescape(key)
}

// relativeKey decodes a listed object key and makes it relative to root.
func relativeKey(root string, enc types.EncodingType, objectKey *string) (string, error) {
	full, err := decodeKey(enc, aws.ToString(objectKey))
	if err != nil {
		return "", fmt.Errorf("s3 %s %q: listed key %q: %w", opWalk, root, aws.ToString(objectKey), err)
	}
	key, ok := strings.CutPrefix(full, root)
	if !ok {
		return "", fmt.Errorf("s3 %s %q: the store listed %q, which is outside the prefix", opWalk, root, full)
	}
	return key, nil
}

// Destroy removes items that Walk returned, for good (see
// sinks.Inventory). Objects, versions and delete markers go in
// DeleteObjects batches of 1000 with Content-MD5, by version id when the
// item has one; an upload is aborted. A key that XML cannot carry (a
// control character, bytes that are not UTF-8) is deleted on its own with
// DeleteObject, which sends it in the URL: in a DeleteObjects body the SDK
// would replace such characters with U+FFFD, and the store would delete
// another key and report success. Keys are used as stored: they are not checked
// with sinks.ValidateKey, but an item must name a non-empty object key, a
// version or delete marker its version id, and an upload its upload id.
//
// A version id names a version for good, except S3's "null": it names
// whatever null version the key holds when Destroy runs, so on a bucket
// with versioning suspended a write after Walk is destroyed in its place,
// as on an unversioned bucket, where an object is deleted by key.
//
// A missing key, version or upload is not a failure. Any other per-item
// error is a sinks.Failure; on a bucket with object lock, the item's lock
// is read (LockOf), and if it holds the failure's Err is a
// *sinks.LockedError. Destroy never bypasses governance retention.
//
// The error is for the call as a whole: a cancelled context, a batch that
// failed as a whole, or a store that cannot be reached or refuses the
// credentials or the bucket. Destroy goes on with the next batch after a
// batch failure that is not permanent.
func (s *Store) Destroy(ctx context.Context, items []sinks.Item) ([]sinks.Failure, error) {
	d := destroyer{s: s, ctx: ctx}
	var batch, single, uploads []int
	for i, it := range items {
		if err := s.checkItem(it); err != nil {
			d.fail(it, err)
			continue
		}
		switch {
		case it.Kind == sinks.ItemUpload:
			uploads = append(uploads, i)
		case xmlSafe(s.objectKey(it.Key)):
			batch = append(batch, i)
		default:
			single = append(single, i)
		}
	}

	var errs []error
	for start := 0; start < len(batch); start += deleteBatch {
		if err := ctx.Err(); err != nil {
			return d.failures, errors.Join(append(errs, fmt.Errorf("s3 %s: %w", opDestroy, err))...)
		}
		idx := batch[start:min(start+deleteBatch, len(batch))]
		if err := d.deleteBatch(items, idx); err != nil {
			errs = append(errs, err)
			if errors.Is(err, sinks.ErrPermanent) {
				return d.failures, errors.Join(errs...)
			}
		}
	}
	for _, i := range single {
		if err := d.deleteOne(items[i]); err != nil {
			return d.failures, errors.Join(append(errs, err)...)
		}
	}
	for _, i := range uploads {
		if err := d.abort(items[i]); err != nil {
			return d.failures, errors.Join(append(errs, err)...)
		}
	}
	return d.failures, errors.Join(errs...)
}

// checkItem refuses items that Destroy cannot act on without doing
// something else than destroying them: without a version id, deleting a
// version or delete marker would add a delete marker instead.
func (s *Store) checkItem(it sinks.Item) error {
	switch {
	case s.objectKey(it.Key) == "":
		return fmt.Errorf("s3 %s: %w: an empty key at the bucket root names no object", opDestroy, sinks.ErrInvalidKey)
	case it.Kind == sinks.ItemUpload && it.UploadID == "":
		return fmt.Errorf("s3 %s %q: upload without an upload id", opDestroy, it.Key)
	case (it.Kind == sinks.ItemVersion || it.Kind == sinks.ItemDeleteMarker) && it.VersionID == "":
		return fmt.Errorf("s3 %s %q: %s without a version id", opDestroy, it.Key, it.Kind)
	case it.Kind > sinks.ItemUpload:
		return fmt.Errorf("s3 %s %q: a bucket holds no %s", opDestroy, it.Key, it.Kind)
	}
	return nil
}

// xmlSafe reports whether key survives a trip through an XML body and
// back unchanged: valid UTF-8 without control characters (XML 1.0 cannot
// carry most of them, and parsers normalise a carriage return to a line
// feed), the line separators that the SDK escapes, or the noncharacters
// U+FFFE and U+FFFF, which XML excludes.
func xmlSafe(key string) bool {
	if !utf8.ValidString(key) {
		return false
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0xfffe || r == 0xffff {
			return false
		}
	}
	return true
}

// destroyer holds the state of one Destroy call.
type destroyer struct {
	s        *Store
	ctx      context.Context
	failures []sinks.Failure
	// lockRead and locking cache whether the bucket has object lock,
	// read on the first per-item failure.
	lockRead, locking bool
}

func (d *destroyer) fail(it sinks.Item, err error) {
	d.failures = append(d.failures, sinks.Failure{Item: it, Err: err})
}

// deleteBatch deletes the items at idx with one DeleteObjects request. It
// returns an error only when the request failed as a whole.
func (d *destroyer) deleteBatch(items []sinks.Item, idx []int) error {
	s := d.s
	ids := make([]types.ObjectIdentifier, len(idx))
	byID := make(map[versionKey][]int, len(idx))
	for n, i := range idx {
		it := items[i]
		ids[n] = types.ObjectIdentifier{Key: aws.String(s.objectKey(it.Key))}
		if it.VersionID != "" {
			ids[n].VersionId = aws.String(it.VersionID)
		}
		vk := versionKey{s.objectKey(it.Key), it.VersionID}
		byID[vk] = append(byID[vk], i)
	}
	opts := append(s.callOpts[:len(s.callOpts):len(s.callOpts)], withContentMD5)
	out, err := s.client.DeleteObjects(d.ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(s.bucket),
		Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
	}, opts...)
	if err != nil {
		return mapErr(fmt.Sprintf("%s (batch of %d from)", opDestroy, len(idx)), items[idx[0]].Key, err)
	}
	var unmatched []error
	for _, e := range out.Errors {
		code := aws.ToString(e.Code)
		if gone(code) {
			continue
		}
		vk := versionKey{aws.ToString(e.Key), aws.ToString(e.VersionId)}
		storeErr := &objectError{code: code, message: aws.ToString(e.Message)}
		matched := byID[vk]
		if len(matched) == 0 {
			unmatched = append(unmatched, mapErr(opDestroy, vk.key, storeErr))
		}
		for _, i := range matched {
			d.fail(items[i], d.itemError(items[i], storeErr))
		}
	}
	if len(unmatched) > 0 {
		return fmt.Errorf("s3 %s: the store reported errors for keys it was not asked to delete: %w",
			opDestroy, errors.Join(unmatched...))
	}
	return nil
}

// versionKey names one object version in a DeleteObjects request.
type versionKey struct{ key, versionID string }

// deleteOne deletes one item with DeleteObject. It returns an error only
// when the failure concerns the whole call (see callError).
func (d *destroyer) deleteOne(it sinks.Item) error {
	s := d.s
	in := &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(it.Key)),
	}
	if it.VersionID != "" {
		in.VersionId = aws.String(it.VersionID)
	}
	_, err := s.client.DeleteObject(d.ctx, in, s.callOpts...)
	return d.settle(it, err)
}

// abort aborts one multipart upload. It returns an error only when the
// failure concerns the whole call (see callError).
func (d *destroyer) abort(it sinks.Item) error {
	s := d.s
	_, err := s.client.AbortMultipartUpload(d.ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(s.bucket),
		Key:      aws.String(s.objectKey(it.Key)),
		UploadId: aws.String(it.UploadID),
	}, s.callOpts...)
	return d.settle(it, err)
}

// settle records the outcome of a single-item call: nothing for success or
// an item already gone, a failure for a per-item error, and an error to
// return for a failure of the whole call.
func (d *destroyer) settle(it sinks.Item, err error) error {
	if err == nil {
		return nil
	}
	if code, _ := errorCode(err); gone(code) {
		return nil
	}
	if callError(err) {
		return mapErr(opDestroy, it.Key, err)
	}
	d.fail(it, d.itemError(it, err))
	return nil
}

// gone reports whether an error code means that the item is already gone.
func gone(code string) bool {
	return code == "NoSuchKey" || code == "NoSuchVersion" || code == "NoSuchUpload"
}

// callError reports whether err concerns the whole Destroy call rather
// than one item: a cancelled context, a store that could not be reached
// (no S3 error code nor HTTP status), or a permanent error other than
// access denied (which object lock gives for one version).
func callError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	code, status := errorCode(err)
	if code == "" && status == 0 {
		return true
	}
	return permanentCodes[code] && code != "AccessDenied"
}

// itemError maps the store's per-item error, and on a bucket with object
// lock reads the item's lock: if the lock holds, the error is a
// *sinks.LockedError. Stores word the refusal differently (AWS:
// AccessDenied; MinIO: InvalidRequest, "Object is WORM protected"), so
// the lock itself decides, not the error code.
func (d *destroyer) itemError(it sinks.Item, storeErr error) error {
	err := mapErr(opDestroy, it.Key, storeErr)
	if it.Kind == sinks.ItemUpload || it.Kind == sinks.ItemDeleteMarker || !d.lockEnabled() {
		return err
	}
	lock, lerr := d.s.LockOf(d.ctx, it)
	if lerr != nil {
		return fmt.Errorf("%w (its object lock could not be read: %v)", err, lerr)
	}
	if lock.Holds(time.Now()) {
		return &sinks.LockedError{Lock: lock, Err: err}
	}
	return err
}

// lockEnabled reports whether the bucket has object lock, reading it once
// per Destroy call. If it cannot be read, it answers true: LockOf then
// tells for each item.
func (d *destroyer) lockEnabled() bool {
	if !d.lockRead {
		d.lockRead = true
		out, err := d.s.client.GetObjectLockConfiguration(d.ctx, &s3.GetObjectLockConfigurationInput{
			Bucket: aws.String(d.s.bucket),
		}, d.s.callOpts...)
		switch {
		case err == nil:
			d.locking = out.ObjectLockConfiguration != nil &&
				out.ObjectLockConfiguration.ObjectLockEnabled == types.ObjectLockEnabledEnabled
		default:
			d.locking = !noLock(err) && !notImplemented(err)
		}
	}
	return d.locking
}

// LockOf reads the object lock on an item (GetObjectRetention and
// GetObjectLegalHold, by version id when it has one). An object without
// retention or legal hold, or a bucket without object lock, has the zero
// Lock. Delete markers and uploads cannot be locked: their Lock is zero
// without asking the store.
func (s *Store) LockOf(ctx context.Context, it sinks.Item) (sinks.Lock, error) {
	if it.Kind != sinks.ItemObject && it.Kind != sinks.ItemVersion {
		return sinks.Lock{}, nil
	}
	key := s.objectKey(it.Key)
	if key == "" {
		return sinks.Lock{}, fmt.Errorf("s3 %s: %w: an empty key at the bucket root names no object", opLock, sinks.ErrInvalidKey)
	}
	var version *string
	if it.VersionID != "" {
		version = aws.String(it.VersionID)
	}

	var lock sinks.Lock
	ret, err := s.client.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), VersionId: version,
	}, s.callOpts...)
	switch {
	case err == nil:
		if r := ret.Retention; r != nil {
			lock.Mode = string(r.Mode)
			lock.Until = aws.ToTime(r.RetainUntilDate)
		}
	case noLock(err) || notImplemented(err):
	default:
		return sinks.Lock{}, mapErr(opLock, it.Key, err)
	}

	hold, err := s.client.GetObjectLegalHold(ctx, &s3.GetObjectLegalHoldInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), VersionId: version,
	}, s.callOpts...)
	switch {
	case err == nil:
		lock.LegalHold = hold.LegalHold != nil && hold.LegalHold.Status == types.ObjectLockLegalHoldStatusOn
	case noLock(err) || notImplemented(err):
	default:
		return sinks.Lock{}, mapErr(opLock, it.Key, err)
	}
	return lock, nil
}

// noLock reports whether err means that no object lock applies: the bucket
// has no object lock configuration, or the object no retention or legal
// hold. For an object's retention in a bucket without object lock, AWS
// answers InvalidRequest "Bucket is missing Object Lock Configuration" and
// MinIO InvalidRequest "Bucket is missing ObjectLockConfiguration".
func noLock(err error) bool {
	code, _ := errorCode(err)
	switch code {
	case "ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration":
		return true
	case "InvalidRequest":
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) {
			return false
		}
		msg := strings.ToLower(strings.ReplaceAll(apiErr.ErrorMessage(), " ", ""))
		return strings.Contains(msg, "missingobjectlockconfiguration")
	}
	return false
}

// notImplemented reports whether the store does not implement the call.
func notImplemented(err error) bool {
	code, status := errorCode(err)
	return code == "NotImplemented" || status == 501
}
