package s3_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hdc-export/hdc-export/sinks"
	s3sink "github.com/hdc-export/hdc-export/sinks/s3"
	"github.com/hdc-export/hdc-export/sinks/s3/miniotest"
	"github.com/hdc-export/hdc-export/sinks/sinktest"
)

// versioningStates are the bucket states the inventory tests run on: never
// versioned, enabled, and suspended after having been enabled.
var versioningStates = []string{"", sinks.VersioningEnabled, sinks.VersioningSuspended}

// newBucketWith creates a bucket in the given versioning state.
func newBucketWith(t *testing.T, srv *miniotest.Server, versioning string) string {
	t.Helper()
	bucket := srv.NewBucket(t)
	if versioning == "" {
		return bucket
	}
	// A suspended bucket has been enabled first, as in real life.
	for _, status := range []types.BucketVersioningStatus{types.BucketVersioningStatusEnabled, types.BucketVersioningStatus(versioning)} {
		_, err := srv.Client().PutBucketVersioning(t.Context(), &s3.PutBucketVersioningInput{
			Bucket:                  aws.String(bucket),
			VersioningConfiguration: &types.VersioningConfiguration{Status: status},
		})
		if err != nil {
			t.Fatalf("PutBucketVersioning(%s): %v", status, err)
		}
	}
	return bucket
}

// name labels a versioning state in subtest names.
func name(versioning string) string {
	if versioning == "" {
		return "Unversioned"
	}
	return versioning
}

// TestInventoryConformance runs the sinks.Inventory contract on buckets
// with versioning enabled and suspended (TestConformance runs it on an
// unversioned bucket), each subtest on its own prefix.
func TestInventoryConformance(t *testing.T) {
	srv := miniotest.Shared(t)
	for _, versioning := range versioningStates[1:] {
		t.Run(name(versioning), func(t *testing.T) {
			bucket := newBucketWith(t, srv, versioning)
			var n atomic.Int64
			sinktest.RunInventory(t, func(t *testing.T) sinks.Sink {
				s := srv.NewStore(t, bucket, fmt.Sprintf("inv/%03d", n.Add(1)))
				if st := settings(t, s); st.Versioning != versioning {
					t.Fatalf("Settings().Versioning = %q, want %q", st.Versioning, versioning)
				}
				return s
			})
		})
	}
}

func settings(t *testing.T, s *s3sink.Store) sinks.Settings {
	t.Helper()
	st, err := s.Settings(t.Context())
	if err != nil {
		t.Fatalf("Settings: %v", err)
	}
	return st
}

func walk(t *testing.T, s *s3sink.Store) []sinks.Item {
	t.Helper()
	var items []sinks.Item
	if err := s.Walk(t.Context(), func(it sinks.Item) error {
		items = append(items, it)
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return items
}

func destroy(t *testing.T, s *s3sink.Store, items []sinks.Item) {
	t.Helper()
	failures, err := s.Destroy(t.Context(), items)
	for _, f := range failures {
		t.Errorf("Destroy: %q %s %q: %v", f.Item.Key, f.Item.Kind, f.Item.VersionID, f.Err)
	}
	if err != nil {
		t.Fatalf("Destroy: %v", err)
	}
}

// rawVersions lists every version and delete marker under prefix with the
// plain SDK client (encoding-type=url, decoded), as "key@version".
func rawVersions(t *testing.T, srv *miniotest.Server, bucket, prefix string) []string {
	t.Helper()
	out, err := srv.Client().ListObjectVersions(t.Context(), &s3.ListObjectVersionsInput{
		Bucket: aws.String(bucket), Prefix: aws.String(prefix), EncodingType: types.EncodingTypeUrl,
	})
	if err != nil {
		t.Fatalf("ListObjectVersions: %v", err)
	}
	var left []string
	for _, v := range out.Versions {
		left = append(left, aws.ToString(v.Key)+"@"+aws.ToString(v.VersionId))
	}
	for _, m := range out.DeleteMarkers {
		left = append(left, aws.ToString(m.Key)+"@"+aws.ToString(m.VersionId)+" (marker)")
	}
	return left
}

func rawPut(t *testing.T, srv *miniotest.Server, bucket, key, body string) error {
	t.Helper()
	_, err := srv.Client().PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body),
	})
	return err
}

// TestInventoryOddKeys plants keys that the sink never writes and List
// skips, directly with the SDK: Walk must report each exactly as stored,
// and Destroy must remove each, leaving no version behind.
func TestInventoryOddKeys(t *testing.T) {
	srv := miniotest.Shared(t)
	odd := []string{
		"t/date=2026-10-01/back\\slash.parquet",
		"t/date=2026-10-01/ctl\x01.parquet",
		"t/date=2026-10-01/cr\rlf\n.parquet",
		"t/date=2026-10-01/",     // a folder marker
		"",                       // the prefix's own folder marker, "lake/"
		"t/sp ace+plus%41&<é>\t", // changed by URL encoding: '+', '%', space
		"t/x\u0085\u2028y",       // escaped by the SDK's XML writer
	}
	for _, versioning := range versioningStates {
		t.Run(name(versioning), func(t *testing.T) {
			bucket := newBucketWith(t, srv, versioning)
			s := srv.NewStore(t, bucket, "lake")
			for _, key := range odd {
				if err := rawPut(t, srv, bucket, "lake/"+key, "odd"); err != nil {
					t.Fatalf("PutObject(%q): %v", "lake/"+key, err)
				}
			}
			// MinIO refuses names that are not UTF-8 (the SDK signs the
			// raw bytes; MinIO rejects them): Walk's decoding of such
			// keys is tested with an injected listing instead.
			if err := rawPut(t, srv, bucket, "lake/t/bad\xff\xfe", "odd"); err == nil {
				odd = append(odd, "t/bad\xff\xfe")
			}
			if err := rawPut(t, srv, bucket, "lakeside/other", "not ours"); err != nil {
				t.Fatal(err)
			}

			items := walk(t, s)
			var keys []string
			for _, it := range items {
				keys = append(keys, it.Key)
				if it.Kind != sinks.ItemObject || it.Size != 3 {
					t.Errorf("Walk: %q is a %s of %d bytes, want an object of 3", it.Key, it.Kind, it.Size)
				}
			}
			want := slices.Clone(odd)
			slices.Sort(want)
			slices.Sort(keys)
			if !slices.Equal(keys, want) {
				t.Errorf("Walk keys:\ngot  %q\nwant %q", keys, want)
			}
			var valid []string // List shows the odd keys that are valid sink keys
			for _, k := range want {
				if sinks.ValidateKey(k) == nil {
					valid = append(valid, k)
				}
			}
			if got := listKeys(t, s, ""); !equal(got, valid) {
				t.Errorf("List = %q, want %q", got, valid)
			}

			destroy(t, s, items)
			if left := rawVersions(t, srv, bucket, "lake/"); len(left) > 0 {
				t.Errorf("left after Destroy: %q", left)
			}
			if left := rawVersions(t, srv, bucket, "lakeside/"); len(left) != 1 {
				t.Errorf("another prefix's objects: %q, want one", left)
			}
		})
	}
}

// TestInventoryNullVersions destroys versions whose id is "null" (written
// while versioning was off or suspended) beside real versions, and the
// null delete marker that a delete adds on a suspended bucket.
func TestInventoryNullVersions(t *testing.T) {
	srv := miniotest.Shared(t)
	client := srv.Client()
	bucket := srv.NewBucket(t)
	s := srv.NewStore(t, bucket, "n")
	ctx := t.Context()
	setVersioning := func(status types.BucketVersioningStatus) {
		t.Helper()
		if _, err := client.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
			Bucket: aws.String(bucket), VersioningConfiguration: &types.VersioningConfiguration{Status: status},
		}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(key, body string) {
		t.Helper()
		if err := s.Put(ctx, key, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	put("before", "written before versioning") // null version
	put("mixed", "null")
	setVersioning(types.BucketVersioningStatusEnabled)
	put("mixed", "a real version")
	setVersioning(types.BucketVersioningStatusSuspended)
	put("suspended", "null too")
	if err := s.Delete(ctx, "suspended"); err != nil { // a null delete marker
		t.Fatal(err)
	}

	items := walk(t, s)
	var nulls []string
	for _, it := range items {
		if it.VersionID == "null" {
			nulls = append(nulls, it.Key+" "+it.Kind.String())
		}
	}
	slices.Sort(nulls)
	if want := []string{"before object", "mixed version", "suspended delete marker"}; !slices.Equal(nulls, want) {
		t.Errorf("null version ids: %q, want %q", nulls, want)
	}
	destroy(t, s, items)
	if left := rawVersions(t, srv, bucket, ""); len(left) > 0 {
		t.Errorf("left after Destroy: %q", left)
	}
}

// TestInventoryUpload checks that an incomplete multipart upload under the
// prefix is walked and aborted, and that another prefix's is not.
func TestInventoryUpload(t *testing.T) {
	srv := miniotest.Shared(t)
	client := srv.Client()
	bucket := srv.NewBucket(t)
	s := srv.NewStore(t, bucket, "lake")
	ctx := t.Context()
	start := func(key string) string {
		t.Helper()
		up, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("CreateMultipartUpload(%s): %v", key, err)
		}
		if _, err := client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(1), Body: strings.NewReader("a part of personal data"),
		}); err != nil {
			t.Fatalf("UploadPart(%s): %v", key, err)
		}
		return aws.ToString(up.UploadId)
	}
	id := start("lake/t/date=2026-10-01/part-0.parquet")
	start("other/t/part-0.parquet")

	items := walk(t, s)
	if len(items) != 1 {
		t.Fatalf("Walk = %v, want one upload", items)
	}
	it := items[0]
	if it.Kind != sinks.ItemUpload || it.Key != "t/date=2026-10-01/part-0.parquet" || it.UploadID != id ||
		time.Since(it.ModTime).Abs() > time.Hour {
		t.Errorf("Walk = %+v, want the upload %s of t/date=2026-10-01/part-0.parquet", it, id)
	}
	destroy(t, s, items)
	if got := incompleteUploads(t, srv, bucket); !equal(got, []string{"other/t/part-0.parquet"}) {
		t.Errorf("uploads after Destroy: %q, want only other's", got)
	}
	destroy(t, s, items) // already aborted: NoSuchUpload is success
	if items := walk(t, s); len(items) > 0 {
		t.Errorf("Walk after Destroy = %v", items)
	}
}

// TestWalkPaging pages through ListObjectVersions and ListMultipartUploads
// answers (injected: MinIO pages versions only after 1000, and lists the
// uploads of a whole bucket in one page) whose next key marker is
// URL-encoded: Walk must send it back decoded.
func TestWalkPaging(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	rec := newRecorder()
	rec.inject = func(r *http.Request) (*http.Response, error) {
		q := r.URL.Query()
		if r.Method != http.MethodGet {
			return nil, nil
		}
		switch {
		case q.Has("versioning"):
			return xmlResponse(r, `<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`), nil
		case q.Has("versions") && q.Get("key-marker") == "" && q.Get("version-id-marker") == "":
			return xmlResponse(r, `<ListVersionsResult><Name>`+bucket+`</Name><EncodingType>url</EncodingType>`+
				`<IsTruncated>true</IsTruncated><NextKeyMarker>lake/k+1%25</NextKeyMarker><NextVersionIdMarker>vm</NextVersionIdMarker>`+
				`<Version><Key>lake/k+1%25</Key><VersionId>v1</VersionId><IsLatest>true</IsLatest><Size>4</Size></Version>`+
				`</ListVersionsResult>`), nil
		case q.Has("versions") && q.Get("key-marker") == "lake/k 1%" && q.Get("version-id-marker") == "vm":
			return xmlResponse(r, `<ListVersionsResult><Name>`+bucket+`</Name><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>`+
				`<DeleteMarker><Key>lake/z</Key><VersionId>m1</VersionId><IsLatest>true</IsLatest></DeleteMarker>`+
				`</ListVersionsResult>`), nil
		case q.Has("uploads") && q.Get("key-marker") == "" && q.Get("upload-id-marker") == "":
			return xmlResponse(r, `<ListMultipartUploadsResult><Bucket>`+bucket+`</Bucket><EncodingType>url</EncodingType>`+
				`<IsTruncated>true</IsTruncated><NextKeyMarker>lake/u+1</NextKeyMarker><NextUploadIdMarker>u1</NextUploadIdMarker>`+
				`<Upload><Key>lake/u+1</Key><UploadId>u1</UploadId></Upload>`+
				`</ListMultipartUploadsResult>`), nil
		case q.Has("uploads") && q.Get("key-marker") == "lake/u 1" && q.Get("upload-id-marker") == "u1":
			return xmlResponse(r, `<ListMultipartUploadsResult><Bucket>`+bucket+`</Bucket><EncodingType>url</EncodingType>`+
				`<IsTruncated>false</IsTruncated>`+
				`<Upload><Key>lakeside/x</Key><UploadId>u2</UploadId></Upload>`+
				`<Upload><Key>lake/u2</Key><UploadId>u3</UploadId></Upload>`+
				`</ListMultipartUploadsResult>`), nil
		}
		return s3Error(r, http.StatusBadRequest, "TestUnexpectedRequest"), nil
	}
	s := newStoreVia(t, srv, srv.Config(bucket, "lake"), rec)
	var got []string
	for _, it := range walk(t, s) {
		got = append(got, fmt.Sprintf("%s %s %s%s", it.Key, it.Kind, it.VersionID, it.UploadID))
	}
	want := []string{"k 1% object v1", "z delete marker m1", "u 1 upload u1", "u2 upload u3"}
	if !slices.Equal(got, want) {
		t.Errorf("Walk:\ngot  %q\nwant %q", got, want)
	}
}

// TestInventoryObjectLock checks a bucket with object lock and a default
// GOVERNANCE retention of a day: Settings reports it, Destroy refuses a
// retained version with a *sinks.LockedError (it never bypasses
// governance), LockOf reports the lock, and delete markers, which cannot
// be locked, are destroyed.
func TestInventoryObjectLock(t *testing.T) {
	srv := miniotest.Shared(t)
	client := srv.Client()
	bucket := srv.NewLockBucket(t)
	ctx := t.Context()
	if _, err := client.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{
		Bucket: aws.String(bucket),
		ObjectLockConfiguration: &types.ObjectLockConfiguration{
			ObjectLockEnabled: types.ObjectLockEnabledEnabled,
			Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{
				Mode: types.ObjectLockRetentionModeGovernance, Days: aws.Int32(1),
			}},
		},
	}); err != nil {
		t.Fatalf("PutObjectLockConfiguration: %v", err)
	}
	s := srv.NewStore(t, bucket, "locked")
	want := sinks.Settings{Versioning: sinks.VersioningEnabled, ObjectLock: true,
		DefaultRetention: sinks.Retention{Mode: "GOVERNANCE", Days: 1}}
	if st := settings(t, s); st != want {
		t.Errorf("Settings = %+v, want %+v", st, want)
	}

	written := time.Now()
	if err := s.Put(ctx, "t/date=2026-10-01/part-0.parquet", strings.NewReader("personal data")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "gone", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}

	items := walk(t, s)
	var versions, markers []sinks.Item
	for _, it := range items {
		if it.Kind == sinks.ItemDeleteMarker {
			markers = append(markers, it)
		} else {
			versions = append(versions, it)
		}
	}
	if len(versions) != 2 || len(markers) != 1 {
		t.Fatalf("Walk = %+v, want two versions and a delete marker", items)
	}
	failures, err := s.Destroy(ctx, items)
	if err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if len(failures) != 2 {
		t.Fatalf("Destroy failures = %v, want the two locked versions", failures)
	}
	day := written.Add(24 * time.Hour)
	for _, f := range failures {
		var locked *sinks.LockedError
		if !errors.Is(f.Err, sinks.ErrLocked) || !errors.As(f.Err, &locked) {
			t.Errorf("Destroy(%q) = %v, want a *sinks.LockedError", f.Item.Key, f.Err)
			continue
		}
		if locked.Lock.Mode != "GOVERNANCE" || locked.Lock.Until.Sub(day).Abs() > time.Minute || locked.Err == nil {
			t.Errorf("Destroy(%q): lock %+v (store: %v), want GOVERNANCE until about %s",
				f.Item.Key, locked.Lock, locked.Err, day.UTC().Format(time.RFC3339))
		}
		lock, err := s.LockOf(ctx, f.Item)
		if err != nil || lock != locked.Lock {
			t.Errorf("LockOf(%q) = %+v, %v; want %+v", f.Item.Key, lock, err, locked.Lock)
		}
	}
	if got := walk(t, s); len(got) != 2 || got[0].Kind == sinks.ItemDeleteMarker || got[1].Kind == sinks.ItemDeleteMarker {
		t.Errorf("Walk after Destroy = %+v, want the two locked versions only", got)
	}

	// A legal hold shows in LockOf.
	held := slices.IndexFunc(versions, func(it sinks.Item) bool { return it.Key == "gone" })
	if _, err := client.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{
		Bucket: aws.String(bucket), Key: aws.String("locked/gone"), VersionId: aws.String(versions[held].VersionID),
		LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOn},
	}); err != nil {
		t.Fatalf("PutObjectLegalHold: %v", err)
	}
	for i, v := range versions {
		lock, err := s.LockOf(ctx, v)
		if err != nil {
			t.Fatalf("LockOf(%q): %v", v.Key, err)
		}
		if lock.LegalHold != (i == held) || lock.Mode != "GOVERNANCE" || !lock.Holds(time.Now()) {
			t.Errorf("LockOf(%q) = %+v, want GOVERNANCE, legal hold %v", v.Key, lock, i == held)
		}
	}
	if lock, err := s.LockOf(ctx, markers[0]); err != nil || lock != (sinks.Lock{}) {
		t.Errorf("LockOf(delete marker) = %+v, %v; want no lock", lock, err)
	}
}

// TestLockOfWithoutObjectLock checks that an object in a bucket without
// object lock has the zero Lock, and no error.
func TestLockOfWithoutObjectLock(t *testing.T) {
	srv := miniotest.Shared(t)
	for _, versioning := range versioningStates {
		t.Run(name(versioning), func(t *testing.T) {
			s := srv.NewStore(t, newBucketWith(t, srv, versioning), "")
			if err := s.Put(t.Context(), "k", strings.NewReader("v")); err != nil {
				t.Fatal(err)
			}
			items := walk(t, s)
			if len(items) != 1 {
				t.Fatalf("Walk = %+v", items)
			}
			if st := settings(t, s); st.ObjectLock || st.DefaultRetention != (sinks.Retention{}) {
				t.Errorf("Settings = %+v, want no object lock", st)
			}
			if lock, err := s.LockOf(t.Context(), items[0]); err != nil || lock != (sinks.Lock{}) {
				t.Errorf("LockOf = %+v, %v; want the zero Lock", lock, err)
			}
		})
	}
}

// TestDestroyRefusesItems checks the items Destroy refuses without asking
// the store: an empty key at the bucket root, a version or delete marker
// without a version id (deleting it would add a delete marker), an upload
// without an upload id, and kinds a bucket cannot hold.
func TestDestroyRefusesItems(t *testing.T) {
	srv := miniotest.Shared(t)
	rec := newRecorder()
	s := newStoreVia(t, srv, srv.Config(srv.NewBucket(t), ""), rec)
	items := []sinks.Item{
		{Key: "", Kind: sinks.ItemObject},
		{Key: "v", Kind: sinks.ItemVersion},
		{Key: "m", Kind: sinks.ItemDeleteMarker},
		{Key: "u", Kind: sinks.ItemUpload},
		{Key: "l", Kind: sinks.ItemLink},
		{Key: "o", Kind: sinks.ItemOther},
	}
	failures, err := s.Destroy(t.Context(), items)
	if err != nil || len(failures) != len(items) {
		t.Fatalf("Destroy = %v, %v; want a failure per item", failures, err)
	}
	if n := len(rec.requests(http.MethodPost, "")) + len(rec.requests(http.MethodDelete, "")); n > 0 {
		t.Errorf("Destroy sent %d requests for items it refuses", n)
	}
}

// TestWalkDecodesKeys feeds Walk listings of keys that MinIO cannot store
// (bytes that are not UTF-8), URL-encoded as S3 sends them, and checks
// that Destroy sends such a key, which XML cannot carry, on its own in a
// DeleteObject URL rather than in a DeleteObjects body.
func TestWalkDecodesKeys(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	rec := newRecorder()
	var mu sync.Mutex
	var deleted []string
	rec.inject = func(r *http.Request) (*http.Response, error) {
		q := r.URL.Query()
		switch {
		case r.Method == http.MethodGet && q.Get("list-type") == "2":
			if q.Get("encoding-type") != "url" {
				return s3Error(r, http.StatusBadRequest, "TestWantsEncodingType"), nil
			}
			return xmlResponse(r, `<ListBucketResult><Name>`+bucket+`</Name><Prefix>lake%2F</Prefix>`+
				`<KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>`+
				`<Contents><Key>lake/t/bad%FF%FE</Key><Size>1</Size></Contents>`+
				`<Contents><Key>lake/a+b%2Bc%25</Key><Size>2</Size></Contents>`+
				`<Contents><Key>lake/nul%00</Key><Size>3</Size></Contents>`+
				`</ListBucketResult>`), nil
		case r.Method == http.MethodDelete && q.Get("uploadId") == "":
			mu.Lock()
			deleted = append(deleted, r.URL.EscapedPath())
			mu.Unlock()
			return &http.Response{StatusCode: http.StatusNoContent, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
		}
		return nil, nil
	}
	s := newStoreVia(t, srv, srv.Config(bucket, "lake"), rec)
	items := walk(t, s)
	var keys []string
	for _, it := range items {
		keys = append(keys, it.Key)
	}
	if want := []string{"t/bad\xff\xfe", "a b+c%", "nul\x00"}; !slices.Equal(keys, want) {
		t.Fatalf("Walk keys = %q, want %q", keys, want)
	}
	destroy(t, s, items)
	slices.Sort(deleted)
	if want := []string{"/" + bucket + "/lake/nul%00", "/" + bucket + "/lake/t/bad%FF%FE"}; !slices.Equal(deleted, want) {
		t.Errorf("DeleteObject paths = %q, want %q", deleted, want)
	}
	if n := len(rec.requests(http.MethodPost, "delete")); n != 1 {
		t.Errorf("%d DeleteObjects requests, want 1 (for the XML-safe key)", n)
	}
}

// xmlResponse is a 200 answer with an XML body.
func xmlResponse(r *http.Request, body string) *http.Response {
	body = `<?xml version="1.0" encoding="UTF-8"?>` + body
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"application/xml"}},
		Body:    io.NopCloser(strings.NewReader(body)),
		Request: r, ContentLength: int64(len(body)),
	}
}

// TestDestroyPerItemErrors checks that a per-key error of DeleteObjects
// becomes a failure of that item only, matched by key and version id, on
// a bucket without object lock.
func TestDestroyPerItemErrors(t *testing.T) {
	srv := miniotest.Shared(t)
	rec := newRecorder()
	rec.inject = func(r *http.Request) (*http.Response, error) {
		if r.Method != http.MethodPost || !strings.Contains(r.URL.RawQuery, "delete") {
			return nil, nil
		}
		return xmlResponse(r, `<DeleteResult>`+
			`<Error><Key>p/a</Key><VersionId>v1</VersionId><Code>AccessDenied</Code><Message>no</Message></Error>`+
			`<Error><Key>p/b</Key><Code>NoSuchVersion</Code><Message>gone</Message></Error>`+
			`</DeleteResult>`), nil
	}
	s := newStoreVia(t, srv, srv.Config(srv.NewBucket(t), "p"), rec)
	items := []sinks.Item{
		{Key: "a", Kind: sinks.ItemVersion, VersionID: "v1"},
		{Key: "a", Kind: sinks.ItemVersion, VersionID: "v2"},
		{Key: "b", Kind: sinks.ItemVersion, VersionID: "v1"},
	}
	failures, err := s.Destroy(t.Context(), items)
	if err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if len(failures) != 1 || failures[0].Item != items[0] ||
		!errors.Is(failures[0].Err, sinks.ErrPermanent) || errors.Is(failures[0].Err, sinks.ErrLocked) {
		t.Errorf("failures = %v, want AccessDenied for a@v1 only, not locked", failures)
	}
}
