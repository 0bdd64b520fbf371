package pipeline_test

import (
	"context"
	"fmt"
	"github.com/hdc-export/hdc-export/internal/lake"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hdc-export/hdc-export/devcenter/emulator"
	"github.com/hdc-export/hdc-export/pipeline"
	"github.com/hdc-export/hdc-export/sinks/s3/miniotest"
)

// oddKeys are keys that the sinks would never write, under an
// out-of-window date d (and a date of d's month with a one-digit day, for
// the unpadded spelling): a query engine still reads them as partitions,
// so purge must date and destroy them. The unrecognised ones cannot be
// dated and must be reported.
func oddKeys(d lake.Date) (dated, unrecognised []string) {
	ds := d.String()
	t := d.Time()
	dated = []string{
		"ihv_driver/date=" + ds + "/back\\slash.parquet",
		"ihv_driver/date=" + ds + "/ctl\x01.parquet",
		"ihv_driver/date=" + ds + "/bad\xff\xfe.parquet",
		fmt.Sprintf("ihv_driver/date=%d-%d-%d/part-00000.parquet", t.Year(), int(t.Month()), t.Day()),
		"ihv_driver/DATE=" + ds + "/part-00000.parquet",
		"_hdc/cabstate/ihv_driver/date=" + ds + ".json",
	}
	unrecognised = []string{
		"ihv_driver/date=someday/part-00000.parquet",
		"notes.txt",
	}
	return dated, unrecognised
}

// unpaddedDay returns an out-of-window date whose day has one digit, so
// that the unpadded spelling differs from the padded one.
func unpaddedDay(w lake.Window) lake.Date {
	d := w.First - 1
	for d.Time().Day() >= 10 {
		d--
	}
	return d
}

// TestPurgeOddKeysLocal plants keys the local sink would never write (and
// a symbolic link) at an out-of-window date: the check reports each as
// stale or unrecognised, the purge destroys every dated one (the link, not
// its target), and the check passes only once nothing is left.
func TestPurgeOddKeysLocal(t *testing.T) {
	h := newHarness(t, emulator.Options{RowsPerDay: 5})
	h.run(t)
	w := lake.NewWindow(h.clock.Now(), 30)
	dated, unrec := oddKeys(unpaddedDay(w))
	for _, key := range slices.Concat(dated, unrec) {
		p := filepath.Join(h.lakeDir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("PAR1 stale rows"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	target := filepath.Join(t.TempDir(), "outside.parquet")
	if err := os.WriteFile(target, []byte("not the lake's"), 0o640); err != nil {
		t.Fatal(err)
	}
	link := "ihv_driver/date=" + unpaddedDay(w).String() + "/link.parquet"
	if err := os.Symlink(target, filepath.Join(h.lakeDir, filepath.FromSlash(link))); err != nil {
		t.Fatal(err)
	}
	dated = append(dated, link)

	checkOddKeys(t, h, dated, unrec, func(key string) {
		if err := os.Remove(filepath.Join(h.lakeDir, filepath.FromSlash(key))); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := os.Stat(target); err != nil {
		t.Errorf("the link's target outside the lake was touched: %v", err)
	}
}

// TestPurgeOddKeysS3 is TestPurgeOddKeysLocal on MinIO, with a
// trailing-slash key (a folder marker) instead of a link, on a versioned
// bucket: every version of every dated key goes.
func TestPurgeOddKeysS3(t *testing.T) {
	srv := miniotest.Shared(t)
	for _, versioning := range []types.BucketVersioningStatus{"", types.BucketVersioningStatusEnabled} {
		t.Run("versioning="+string(versioning), func(t *testing.T) {
			bucket := srv.NewBucket(t)
			client := srv.Client()
			setVersioning(t, client, bucket, versioning)
			h := newHarness(t, emulator.Options{RowsPerDay: 5})
			useStore(h, newS3Store(t, srv, srv.Endpoint, bucket, "lake"))
			h.run(t)
			w := lake.NewWindow(h.clock.Now(), 30)
			dated, unrec := oddKeys(unpaddedDay(w))
			// S3 keys are UTF-8: a store cannot hold the others.
			dated = slices.DeleteFunc(dated, func(k string) bool { return !utf8.ValidString(k) })
			dated = append(dated, "ihv_driver/date="+unpaddedDay(w).String()+"/")
			for _, key := range slices.Concat(dated, unrec) {
				for range 2 { // a second version where versioning is on
					if _, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket),
						Key: aws.String("lake/" + key), Body: strings.NewReader("PAR1 stale rows")}); err != nil {
						t.Fatalf("plant %q: %v", key, err)
					}
				}
			}
			checkOddKeys(t, h, dated, unrec, func(key string) {
				for _, v := range versionsOf(t, client, bucket, "lake/"+key) {
					if _, err := client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket),
						Key: aws.String("lake/" + key), VersionId: v}); err != nil {
						t.Fatal(err)
					}
				}
			})
			for _, v := range allVersions(t, client, bucket, "lake/") {
				if d, ok := lake.KeyDate(v.key); ok && !w.Contains(d) {
					t.Errorf("%q (%s) survived the purge", v.key, v.kind)
				}
			}
		})
	}
}

// checkOddKeys runs check, purge, check on a lake holding the planted
// keys, then removes the unrecognised ones with remove and checks again.
func checkOddKeys(t *testing.T, h *harness, dated, unrec []string, remove func(key string)) {
	t.Helper()
	ctx := context.Background()
	check, err := h.runner.Purge(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	stale := slices.Compact(slices.Clone(check.Stale()))
	if want := slices.Sorted(slices.Values(dated)); !slices.Equal(stale, want) {
		t.Errorf("check found stale\n%q\nwant\n%q", stale, want)
	}
	if check.Unrecognised < len(unrec) || len(check.UnrecognisedKeys) != len(unrec) {
		t.Errorf("check found %d unrecognised %q, want %q", check.Unrecognised, check.UnrecognisedKeys, unrec)
	}
	if v := check.Judge(); v != pipeline.VerdictCannotDestroy {
		t.Errorf("check verdict %s, want %s", v, pipeline.VerdictCannotDestroy)
	}
	rep, err := h.runner.Purge(ctx, false)
	if err != nil {
		t.Fatalf("purge: %v", err)
	}
	if rep.Deleted != check.Objects || rep.Objects != check.Objects {
		t.Errorf("purge destroyed %d of %d, check saw %d", rep.Deleted, rep.Objects, check.Objects)
	}
	after, err := h.runner.Purge(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if after.Objects != 0 || len(after.UnrecognisedKeys) != len(unrec) || after.Judge() != pipeline.VerdictCannotDestroy {
		t.Errorf("after purge: %d stale, %d unrecognised, verdict %s", after.Objects, after.Unrecognised, after.Judge())
	}
	for _, key := range unrec {
		remove(key)
	}
	clean, err := h.runner.Purge(ctx, true)
	if err != nil || clean.Judge() != pipeline.VerdictClean {
		t.Errorf("check once the unrecognised keys are gone: %s, %v (%+v)", clean.Judge(), err, clean)
	}
}

func setVersioning(t *testing.T, client *s3.Client, bucket string, status types.BucketVersioningStatus) {
	t.Helper()
	if status == "" {
		return
	}
	if _, err := client.PutBucketVersioning(t.Context(), &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: status}}); err != nil {
		t.Fatalf("versioning %s: %v", status, err)
	}
}

// storedVersion is one version or delete marker as MinIO lists it.
type storedVersion struct {
	key, kind string
	id        *string
	latest    bool
}

// allVersions lists every version and delete marker under prefix, keys
// relative to it, straight from MinIO (on an unversioned bucket: the
// objects).
func allVersions(t *testing.T, client *s3.Client, bucket, prefix string) []storedVersion {
	t.Helper()
	var out []storedVersion
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)}
	for {
		page, err := client.ListObjectVersions(t.Context(), in)
		if err != nil {
			t.Fatalf("list object versions: %v", err)
		}
		for _, v := range page.Versions {
			out = append(out, storedVersion{strings.TrimPrefix(aws.ToString(v.Key), prefix), "version", v.VersionId, aws.ToBool(v.IsLatest)})
		}
		for _, m := range page.DeleteMarkers {
			out = append(out, storedVersion{strings.TrimPrefix(aws.ToString(m.Key), prefix), "delete marker", m.VersionId, aws.ToBool(m.IsLatest)})
		}
		if !aws.ToBool(page.IsTruncated) {
			return out
		}
		in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
	}
}

// versionsOf returns the version ids of one key.
func versionsOf(t *testing.T, client *s3.Client, bucket, key string) []*string {
	var ids []*string
	for _, v := range versionsOfKey(t, client, bucket, key) {
		ids = append(ids, v.id)
	}
	return ids
}

// TestRetentionOver120SimulatedDaysVersioned is the 120-day simulation on
// MinIO buckets with versioning enabled, and suspended after the first
// day. After every day, no version and no delete marker of an
// out-of-window key is stored, no partition rewrite has left a noncurrent
// version behind, and every date of the window is present.
func TestRetentionOver120SimulatedDaysVersioned(t *testing.T) {
	if testing.Short() {
		t.Skip("long simulation")
	}
	srv := miniotest.Shared(t)
	for _, suspend := range []bool{false, true} {
		t.Run(fmt.Sprintf("suspended=%v", suspend), func(t *testing.T) {
			t.Parallel()
			bucket := srv.NewBucket(t)
			client := srv.Client()
			setVersioning(t, client, bucket, types.BucketVersioningStatusEnabled)
			h := newHarness(t, emulator.Options{RowsPerDay: 3})
			useStore(h, newS3Store(t, srv, srv.Endpoint, bucket, "lake"))
			firstData := lake.DateOf(h.clock.Now()) - 35
			for day := range 120 {
				sum, err := leasedCycle(h)
				if err != nil {
					t.Fatalf("day %d: %v", day, err)
				}
				if day == 0 && suspend {
					setVersioning(t, client, bucket, types.BucketVersioningStatusSuspended)
				}
				now := h.clock.Now()
				w := lake.NewWindow(now, 30)
				present := map[string]bool{}
				for _, v := range allVersions(t, client, bucket, "lake/") {
					d, dated := lake.KeyDate(v.key)
					switch {
					case dated && !w.Contains(d):
						t.Fatalf("day %d: a %s of %s is stored, older than the window (starts %s)", day, v.kind, v.key, w.First)
					case dated && !v.latest:
						t.Fatalf("day %d: a noncurrent %s of %s outlived the cycle", day, v.kind, v.key)
					case v.kind == "version" && v.latest:
						present[v.key] = true
					}
				}
				for d := max(w.First, firstData); d < lake.DateOf(now); d++ {
					for _, ds := range []string{"ihv_driver", "oem_driver"} {
						if !present[lake.DataKey(ds, d)] || !present[lake.ManifestKey(ds, d)] {
							t.Fatalf("day %d: %s %s missing (summary %+v)", day, ds, d, sum)
						}
					}
				}
				h.clock.Advance(24 * time.Hour)
			}
		})
	}
}

// TestPurgeKeepsTheMarkerOverALockedVersion: on a bucket with object lock,
// a deleted key whose version is locked keeps its delete marker through a
// purge, out of the window or in it: destroying the marker alone would
// make the locked version current, and readable, again.
func TestPurgeKeepsTheMarkerOverALockedVersion(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewLockBucket(t)
	client := srv.Client()
	now := time.Now().UTC()
	stale := "ihv_driver/date=2020-01-01/part-00000.parquet"
	fresh := "ihv_driver/date=" + now.Format(time.DateOnly) + "/part-00000.parquet"
	for _, key := range []string{stale, fresh} {
		if _, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("lake/" + key),
			Body: strings.NewReader("PAR1 rows"), ObjectLockMode: types.ObjectLockModeGovernance,
			ObjectLockRetainUntilDate: aws.Time(now.Add(24 * time.Hour))}); err != nil {
			t.Fatal(err)
		}
		if _, err := client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("lake/" + key)}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := pipeline.Config{TempDir: t.TempDir()}
	cfg.SetDefaults()
	r := &pipeline.Runner{Config: cfg, Sink: newS3Store(t, srv, srv.Endpoint, bucket, "lake"), Now: func() time.Time { return now },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rep, err := r.Purge(t.Context(), false)
	if err == nil || rep.Locked != 1 || rep.SupersededLocked != 1 || rep.Judge() != pipeline.VerdictCannotDestroy {
		t.Fatalf("purge: locked %d, superseded locked %d, verdict %s, err %v", rep.Locked, rep.SupersededLocked, rep.Judge(), err)
	}
	for _, key := range []string{stale, fresh} {
		var marker, version bool
		for _, v := range versionsOfKey(t, client, bucket, "lake/"+key) {
			marker = marker || v.kind == "delete marker" && v.latest
			version = version || v.kind == "version" && v.latest
		}
		if !marker || version {
			t.Errorf("%s: current delete marker %v, current version %v; want the marker still over the locked version", key, marker, version)
		}
	}
}

// versionsOfKey lists the versions and delete markers of one key.
func versionsOfKey(t *testing.T, client *s3.Client, bucket, key string) []storedVersion {
	var out []storedVersion
	for _, v := range allVersions(t, client, bucket, key) {
		if v.key == "" {
			out = append(out, v)
		}
	}
	return out
}
