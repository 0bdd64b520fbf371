package e2e

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/e2e/apiclient"
)

// lakePrefix is the key prefix of the lake inside the test buckets.
const lakePrefix = "lake"

// lifecycleMargin is what the S3 lifecycle backstop adds to the retention
// window (documented in `hdc-export doctor`): objects expire
// retentionDays+lifecycleMargin days after writing.
const lifecycleMargin = 2

// lakeTopLevel are the folders the lake contract allows under the prefix:
// the datasets, cabs, the cab index, quarantine and the runner state.
var lakeTopLevel = map[string]bool{"cabs": true, "cab_index": true, "quarantine": true, "_hdc": true}

func init() {
	for _, ds := range datasets {
		lakeTopLevel[ds.name] = true
	}
}

// s3Export runs one `hdc-export run --config configs/minio.yaml` cycle into
// s3://bucket/prefix on the MinIO server.
func s3Export(t *testing.T, srv *minioServer, emu *emulator, bucket, prefix string) summary {
	t.Helper()
	// The mirror is off: minio.yaml's allowlist does not hold the
	// emulator's address, so every cab would be refused, each after a
	// request, and the run exit 3.
	return runExportWith(t, minioConfig(t), append(srv.s3ExportEnv(emu, srv.Endpoint, bucket, prefix), "HDC_CABS=off"))
}

// TestS3LakeMatchesGroundTruth exports the emulator's demo account into a
// MinIO bucket, downloads the lake with the AWS CLI, and checks with DuckDB
// that every dataset's per-date row counts and sums equal the independent
// ground truth. It also checks that nothing was written outside the prefix,
// that the runner state holds a manifest per partition (naming the run the
// ground truth says owns the date, and the checksum of the bytes
// downloaded) and commit records, and that no multipart upload was left
// incomplete.
func TestS3LakeMatchesGroundTruth(t *testing.T) {
	t.Parallel()
	srv := startMinIO(t)
	emu := startEmulator(t, "--rows-per-day", "300")
	bucket := srv.createBucket(t)
	truth := exportWithTruthFunc(t, emu, func() { s3Export(t, srv, emu, bucket, lakePrefix) })

	// Nothing outside <prefix>/, and only the contract's folders inside it.
	objects := srv.listObjects(t, bucket, "")
	if len(objects) == 0 {
		t.Fatalf("the export wrote no object into s3://%s", bucket)
	}
	top := map[string]int{}
	for _, o := range objects {
		rel, ok := strings.CutPrefix(o.Key, lakePrefix+"/")
		if !ok {
			t.Errorf("object s3://%s/%s is outside the configured prefix %s/", bucket, o.Key, lakePrefix)
			continue
		}
		first, _, _ := strings.Cut(rel, "/")
		top[first]++
		if !lakeTopLevel[first] {
			t.Errorf("object %s is in %s/%s/, which the lake contract does not know", o.Key, lakePrefix, first)
		}
	}
	t.Logf("%d objects in s3://%s: %v", len(objects), bucket, top)
	if up := srv.pendingUploads(t, bucket); len(up) > 0 {
		t.Errorf("incomplete multipart uploads left in the bucket: %q", up)
	}

	// The independent client downloads the lake; DuckDB reads it.
	dir := filepath.Join(t.TempDir(), "lake")
	start := time.Now()
	srv.mustAWS(t, "s3", "sync", "--only-show-errors", "s3://"+bucket+"/"+lakePrefix+"/", dir)
	local := treeHashes(t, dir)
	t.Logf("aws s3 sync downloaded %d files in %s", len(local), time.Since(start).Round(time.Millisecond))
	if len(local) != len(objects) {
		t.Errorf("aws s3 sync downloaded %d files; the bucket lists %d objects", len(local), len(objects))
	}

	db := openDuckDB(t)
	for _, ds := range datasets {
		tr := truth[ds.name]
		compareWithTruth(t, ds.name, tr, lakeTotals(t, db, dir, ds.name))
		checkLayout(t, dir, ds.name, tr.WindowFirst)
		checkRunnerState(t, dir, ds.name, tr, local)
	}
}

// manifest is the part of a partition manifest the tests check: the run
// that wrote the partition and its files with row counts and checksums.
type manifest struct {
	Dataset string `json:"dataset"`
	Date    string `json:"date"`
	Run     string `json:"run"`
	Rows    *int64 `json:"rows"`
	Files   []struct {
		Key    string `json:"key"`
		Rows   int64  `json:"rows"`
		Bytes  int64  `json:"bytes"`
		SHA256 string `json:"sha256"`
	} `json:"files"`
}

// runStamp is how manifests and commit records name a run.
const runStamp = "20060102T150405Z"

var commitPath = regexp.MustCompile(`^date=(\d{4}-\d{2}-\d{2})/[^/]+\.json$`)

// checkRunnerState checks a downloaded lake's _hdc/ for one dataset: a
// manifest for every data partition, naming the run the ground truth says
// owns the date, with the partition's files, rows and checksums as
// downloaded; and at least one commit record, each valid JSON filed under
// a date inside the window.
func checkRunnerState(t *testing.T, lake, name string, tr *apiclient.Truth, hashes map[string]string) {
	t.Helper()
	manifests := filepath.Join(lake, "_hdc", "manifests", name)
	partitions := map[string]bool{}
	for _, f := range parquetFiles(t, lake, name) {
		if m := partitionPath.FindStringSubmatch(f); m != nil {
			partitions[m[1]] = true
		}
	}
	for _, d := range slices.Sorted(maps.Keys(partitions)) {
		path := filepath.Join(manifests, "date="+d+".json")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s date=%s: no manifest in _hdc/: %v", name, d, err)
			continue
		}
		var m manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("%s: manifest %s is not JSON: %v", name, path, err)
			continue
		}
		if m.Dataset != name || m.Date != d {
			t.Errorf("%s date=%s: manifest names dataset %q date %q", name, d, m.Dataset, m.Date)
		}
		if run, err := time.Parse(runStamp, m.Run); err != nil {
			t.Errorf("%s date=%s: manifest run %q is not %s: %v", name, d, m.Run, runStamp, err)
		} else if owner := tr.Owner[d]; !run.Equal(owner) {
			t.Errorf("%s date=%s: manifest says run %s wrote the partition; the newest run covering the date is %s",
				name, d, run.Format(time.RFC3339), owner.Format(time.RFC3339))
		}
		var rows int64
		for _, f := range m.Files {
			rows += f.Rows
			got, ok := hashes[f.Key]
			switch {
			case !ok:
				t.Errorf("%s date=%s: manifest lists %s, which the bucket does not hold", name, d, f.Key)
			case got != f.SHA256:
				t.Errorf("%s date=%s: manifest sha256 of %s is %s; the downloaded bytes hash to %s", name, d, f.Key, f.SHA256, got)
			}
		}
		if want := tr.Days[d].Rows; rows != want || (m.Rows != nil && *m.Rows != want) {
			t.Errorf("%s date=%s: manifest counts %d rows in its files (total field %v); the ground truth is %d", name, d, rows, m.Rows, want)
		}
		if len(m.Files) == 0 {
			t.Errorf("%s date=%s: manifest lists no files", name, d)
		}
	}
	// Manifests without a data partition may only describe empty partitions.
	entries, _ := os.ReadDir(manifests)
	for _, e := range entries {
		d := strings.TrimSuffix(strings.TrimPrefix(e.Name(), "date="), ".json")
		if !partitions[d] {
			b, _ := os.ReadFile(filepath.Join(manifests, e.Name()))
			var m manifest
			if json.Unmarshal(b, &m) != nil || len(m.Files) > 0 {
				t.Errorf("%s: manifest %s describes files of a partition that has no data file", name, e.Name())
			}
		}
	}

	commits := filepath.Join(lake, "_hdc", "commits", name)
	n := 0
	err := filepath.WalkDir(commits, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		rel, _ := filepath.Rel(commits, path)
		m := commitPath.FindStringSubmatch(filepath.ToSlash(rel))
		if m == nil {
			t.Errorf("%s: commit record %s is not date=YYYY-MM-DD/<run>.json", name, rel)
			return nil
		}
		if m[1] < tr.WindowFirst.Format(apiclient.DateLayout) {
			t.Errorf("%s: commit record %s is filed under a date older than the window (%s)", name, rel, tr.WindowFirst.Format(apiclient.DateLayout))
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !json.Valid(b) {
			t.Errorf("%s: commit record %s is not JSON", name, rel)
		}
		return nil
	})
	if err != nil {
		t.Errorf("%s: commit records: %v", name, err)
	}
	if n == 0 {
		t.Errorf("%s: no commit record under _hdc/commits/%s", name, name)
	}
	t.Logf("%s: %d partitions with manifests, %d commit records", name, len(partitions), n)
}

// TestS3SecondRunChangesNoObject runs two cycles over the same runs into
// MinIO and checks, with the AWS CLI's listing, that the second changed no
// object: same keys, ETags, sizes and LastModified times. Lease objects
// (_hdc/lease/), taken anew by every cycle by design, are left out.
func TestS3SecondRunChangesNoObject(t *testing.T) {
	t.Parallel()
	srv := startMinIO(t)
	emu := startEmulator(t, "--rows-per-day", "100")
	bucket := srv.createBucket(t)
	lease := lakePrefix + "/_hdc/lease/"
	listing := func() map[string]s3Object {
		out := map[string]s3Object{}
		for _, o := range srv.listObjects(t, bucket, "") {
			if !strings.HasPrefix(o.Key, lease) {
				out[o.Key] = o
			}
		}
		return out
	}
	for attempt := 1; ; attempt++ {
		prefix := fmt.Sprintf("%s-%d", lakePrefix, attempt)
		lease = prefix + "/_hdc/lease/"
		before := groundTruth(t, emu)
		s3Export(t, srv, emu, bucket, prefix)
		first := listing()
		// LastModified may have a resolution of one second: let a rewrite show.
		time.Sleep(1100 * time.Millisecond)
		sum := s3Export(t, srv, emu, bucket, prefix)
		second := listing()
		if !sameWorld(before, groundTruth(t, emu)) && attempt < 3 {
			t.Log("the emulator's runs changed between the cycles (clock boundary); starting over")
			continue
		}
		if len(first) == 0 {
			t.Fatal("the first cycle wrote nothing")
		}
		var diffs []string
		for _, k := range slices.Sorted(maps.Keys(first)) {
			a := first[k]
			switch b, ok := second[k]; {
			case !ok:
				diffs = append(diffs, "removed "+k)
			case a != b:
				diffs = append(diffs, fmt.Sprintf("changed %s: ETag %s → %s, size %d → %d, LastModified %s → %s", k, a.ETag, b.ETag, a.Size, b.Size, a.LastModified, b.LastModified))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(second)) {
			if _, ok := first[k]; !ok {
				diffs = append(diffs, "added "+k)
			}
		}
		if len(diffs) > 0 {
			t.Errorf("the second cycle changed %d of %d objects (second summary: %s):\n  %s",
				len(diffs), len(first), compactSummary(sum), strings.Join(diffs, "\n  "))
		} else {
			t.Logf("%d objects unchanged (keys, ETags, sizes, LastModified) after the second cycle", len(first))
		}
		if up := srv.pendingUploads(t, bucket); len(up) > 0 {
			t.Errorf("incomplete multipart uploads left in the bucket: %q", up)
		}
		return
	}
}

// requireCheck finds exactly one doctor check by name and wants one of the
// statuses.
func requireCheck(t *testing.T, res doctorResult, prefix, word string, statuses ...string) doctorCheck {
	t.Helper()
	found := res.find(prefix, word)
	if len(found) != 1 {
		t.Errorf("doctor: want one %q check containing %q, found %d\n%s", prefix, word, len(found), res)
		return doctorCheck{}
	}
	if !slices.Contains(statuses, found[0].status) {
		t.Errorf("doctor: %s is %q (%s); want %s", found[0].name, found[0].status, found[0].detail, strings.Join(statuses, " or "))
	}
	return found[0]
}

// checkDoctorExit checks the exit code agrees with the report: non-zero
// exactly when a check failed.
func checkDoctorExit(t *testing.T, res doctorResult) {
	t.Helper()
	failed := 0
	for _, c := range res.checks {
		if c.status == "FAIL" {
			failed++
		}
	}
	if (failed > 0) != (res.exit != 0) || res.exit == 2 {
		t.Errorf("doctor exited %d with %d failed checks; want 0 without failures, 1 with", res.exit, failed)
	}
}

// sinkAbilities are the sink checks doctor must pass against MinIO, apart
// from create-only put.
var sinkAbilities = []string{"write", "read", "list", "multipart", "checksum", "delete"}

// TestDoctorAgainstMinIO runs `hdc-export doctor` against MinIO directly,
// where every check must pass, and through proxies that make MinIO look
// like a store that ignores conditional writes or rejects them with 501:
// doctor must then report create-only put as missing (or, for 501, fail
// it with a clear message) and still run and pass every other check.
// Doctor's probe objects must be gone afterwards in every case.
func TestDoctorAgainstMinIO(t *testing.T) {
	t.Parallel()
	srv := startMinIO(t)
	emu := startEmulator(t, "--rows-per-day", "10")
	bucket := srv.createBucket(t)

	checkCommon := func(t *testing.T, res doctorResult, prefix string) {
		t.Helper()
		requireCheck(t, res, "sink:", "open", "ok")
		for _, a := range sinkAbilities {
			requireCheck(t, res, "sink:", a, "ok")
		}
		dc := res.find("devcenter", "")
		if len(dc) == 0 {
			t.Errorf("doctor reported no Dev Center check\n%s", res)
		}
		for _, c := range dc {
			if c.status != "ok" {
				t.Errorf("doctor: %s is %s (%s); want ok", c.name, c.status, c.detail)
			}
		}
		checkDoctorExit(t, res)
		if left := srv.listObjects(t, bucket, prefix+"/"); len(left) > 0 {
			var keys []string
			for _, o := range left {
				keys = append(keys, o.Key)
			}
			t.Errorf("doctor left %d probe objects behind: %q", len(keys), keys)
		}
		if up := srv.pendingUploads(t, bucket); len(up) > 0 {
			t.Errorf("doctor left incomplete multipart uploads: %q", up)
		}
	}

	t.Run("minio", func(t *testing.T) {
		prefix := "doctor-direct"
		res := runDoctor(t, srv.s3ExportEnv(emu, srv.Endpoint, bucket, prefix))
		requireCheck(t, res, "sink:", "create-only", "ok")
		checkCommon(t, res, prefix)
		if res.exit != 0 {
			t.Errorf("doctor against MinIO exited %d; want 0\n%s", res.exit, res)
		}
	})

	t.Run("store-ignores-if-none-match", func(t *testing.T) {
		prefix := "doctor-ignores"
		p := startCondProxy(t, srv, condStrip)
		res := runDoctor(t, srv.s3ExportEnv(emu, p.URL, bucket, prefix))
		seen, statuses, errs := p.report()
		for _, e := range errs {
			t.Errorf("proxy: %s", e)
		}
		if seen < 2 {
			t.Errorf("the proxy saw %d requests carrying If-None-Match; the create-only probe must send at least two", seen)
		}
		for _, s := range statuses {
			if s < 200 || s > 299 {
				t.Errorf("MinIO answered %d to a create-only put forwarded without If-None-Match; want 2xx (statuses %v)", s, statuses)
			}
		}
		t.Logf("proxy: %d requests carried If-None-Match; MinIO answered %v to them forwarded without it", seen, statuses)
		requireCheck(t, res, "sink:", "create-only", "missing")
		checkCommon(t, res, prefix)
	})

	t.Run("store-rejects-if-none-match-501", func(t *testing.T) {
		prefix := "doctor-501"
		p := startCondProxy(t, srv, cond501)
		res := runDoctor(t, srv.s3ExportEnv(emu, p.URL, bucket, prefix))
		if seen, _, _ := p.report(); seen == 0 {
			t.Error("the proxy saw no request carrying If-None-Match; the create-only probe was not exercised")
		}
		c := requireCheck(t, res, "sink:", "create-only", "missing", "FAIL")
		if c.status == "FAIL" && !regexp.MustCompile(`(?i)conditional|if-none-match|not ?implemented|501`).MatchString(c.detail) {
			t.Errorf("doctor fails create-only put without saying why: %q", c.detail)
		}
		checkCommon(t, res, prefix)
	})
}

// TestApplyLifecycle runs `hdc-export doctor --apply-lifecycle` twice on a
// bucket that already has a rule of its own, and reads the bucket's
// lifecycle configuration back with the AWS CLI: on the lake's prefix, one
// rule expiring objects retention+margin (30+2) days after writing,
// noncurrent versions a day after they are replaced, and incomplete
// uploads after a day, and one removing expired delete markers (S3 allows
// no Days beside it); the bucket's own rule kept.
func TestApplyLifecycle(t *testing.T) {
	t.Parallel()
	srv := startMinIO(t)
	emu := startEmulator(t, "--rows-per-day", "10")
	bucket := srv.createBucket(t)
	foreign := `{"Rules":[{"ID":"not-hdc","Status":"Enabled","Filter":{"Prefix":"elsewhere/"},"Expiration":{"Days":400}}]}`
	srv.mustAWS(t, "s3api", "put-bucket-lifecycle-configuration", "--bucket", bucket, "--lifecycle-configuration", foreign)

	wantDays := retentionDays + lifecycleMargin
	// The first application goes through a recording proxy, to check the
	// rule as sent: MinIO does not keep every element of a rule.
	rec := startCondProxy(t, srv, condPass)
	for i, endpoint := range []string{rec.URL, srv.Endpoint} {
		res := runDoctor(t, srv.s3ExportEnv(emu, endpoint, bucket, lakePrefix), "--apply-lifecycle")
		c := requireCheck(t, res, "sink:", "lifecycle", "ok")
		if !strings.Contains(c.detail, fmt.Sprintf(" %d days", wantDays)) {
			t.Errorf("doctor run %d: lifecycle detail %q does not mention %d days", i+1, c.detail, wantDays)
		}
		checkDoctorExit(t, res)
	}

	checkLifecycleSent(t, rec.lifecycleBodies(), wantDays)

	raw := srv.mustAWS(t, "s3api", "get-bucket-lifecycle-configuration", "--bucket", bucket, "--output", "json")
	var cfg struct {
		Rules []struct {
			ID         string
			Status     string
			Prefix     *string
			Filter     *struct{ Prefix *string }
			Expiration *struct {
				Days                      *int
				ExpiredObjectDeleteMarker *bool
			}
			Noncurrent *struct{ NoncurrentDays *int }      `json:"NoncurrentVersionExpiration"`
			Abort      *struct{ DaysAfterInitiation *int } `json:"AbortIncompleteMultipartUpload"`
		}
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("get-bucket-lifecycle-configuration: %v\n%s", err, raw)
	}
	t.Logf("bucket lifecycle configuration:\n%s", raw)
	ours, markers, others := 0, 0, 0
	for _, r := range cfg.Rules {
		prefix := ""
		switch {
		case r.Filter != nil && r.Filter.Prefix != nil:
			prefix = *r.Filter.Prefix
		case r.Prefix != nil:
			prefix = *r.Prefix
		}
		switch prefix {
		case lakePrefix + "/":
			ours++
			if r.Status != "Enabled" {
				t.Errorf("rule %s on %s is %s; want Enabled", r.ID, prefix, r.Status)
			}
			if r.Expiration != nil && r.Expiration.ExpiredObjectDeleteMarker != nil {
				markers++
				if !*r.Expiration.ExpiredObjectDeleteMarker {
					t.Errorf("rule %s on %s: ExpiredObjectDeleteMarker false", r.ID, prefix)
				}
				continue
			}
			if r.Noncurrent == nil || r.Noncurrent.NoncurrentDays == nil || *r.Noncurrent.NoncurrentDays != 1 {
				t.Errorf("rule %s on %s: NoncurrentVersionExpiration %+v; want NoncurrentDays = 1", r.ID, prefix, r.Noncurrent)
			}
			if r.Expiration == nil || r.Expiration.Days == nil || *r.Expiration.Days != wantDays {
				t.Errorf("rule %s on %s: Expiration %+v; want Days = %d (retention %d + margin %d)", r.ID, prefix, r.Expiration, wantDays, retentionDays, lifecycleMargin)
			}
			// MinIO drops AbortIncompleteMultipartUpload from stored rules
			// (it expires stale uploads itself); the rule as sent is checked
			// by checkLifecycleSent.
			if r.Abort != nil && (r.Abort.DaysAfterInitiation == nil || *r.Abort.DaysAfterInitiation != 1) {
				t.Errorf("rule %s on %s: AbortIncompleteMultipartUpload %+v; want DaysAfterInitiation = 1", r.ID, prefix, r.Abort)
			}
		case "elsewhere/":
			others++
			if r.ID != "not-hdc" || r.Expiration == nil || r.Expiration.Days == nil || *r.Expiration.Days != 400 {
				t.Errorf("the bucket's own rule changed: %+v", r)
			}
		default:
			t.Errorf("unexpected lifecycle rule %s on prefix %q", r.ID, prefix)
		}
	}
	if ours != 2 || markers != 1 {
		t.Errorf("%d lifecycle rules on the prefix %s/ after applying twice, %d removing expired delete markers; want exactly 2, one of them for markers", ours, lakePrefix, markers)
	}
	if others != 1 {
		t.Errorf("the bucket's own lifecycle rule (prefix elsewhere/) was dropped")
	}
	// Doctor's probes must not remain either.
	if left := srv.listObjects(t, bucket, ""); len(left) > 0 {
		t.Errorf("doctor left %d objects behind, first %s", len(left), left[0].Key)
	}
}

// checkLifecycleSent checks the PutBucketLifecycleConfiguration requests
// doctor sent: one, with a rule on the lake's prefix that expires objects
// after days and aborts incomplete multipart uploads after one day.
func checkLifecycleSent(t *testing.T, bodies [][]byte, days int) {
	t.Helper()
	if len(bodies) != 1 {
		t.Errorf("doctor --apply-lifecycle sent %d PutBucketLifecycleConfiguration requests; want 1", len(bodies))
		return
	}
	var cfg struct {
		Rules []struct {
			ID         string `xml:"ID"`
			Status     string `xml:"Status"`
			Prefix     string `xml:"Filter>Prefix"`
			Expiration int    `xml:"Expiration>Days"`
			Markers    bool   `xml:"Expiration>ExpiredObjectDeleteMarker"`
			Noncurrent int    `xml:"NoncurrentVersionExpiration>NoncurrentDays"`
			Abort      int    `xml:"AbortIncompleteMultipartUpload>DaysAfterInitiation"`
		} `xml:"Rule"`
	}
	if err := xml.Unmarshal(bodies[0], &cfg); err != nil {
		t.Errorf("doctor's lifecycle configuration is not XML: %v\n%s", err, bodies[0])
		return
	}
	found, markers := 0, 0
	for _, r := range cfg.Rules {
		if r.Prefix != lakePrefix+"/" {
			continue
		}
		found++
		if r.Markers {
			markers++
			continue
		}
		if r.Status != "Enabled" || r.Expiration != days || r.Noncurrent != 1 || r.Abort != 1 {
			t.Errorf("doctor sent rule %s on %s: status %q, expiration %d days, noncurrent versions %d days, abort incomplete uploads after %d days; want Enabled, %d, 1, 1\n%s",
				r.ID, r.Prefix, r.Status, r.Expiration, r.Noncurrent, r.Abort, days, bodies[0])
		}
	}
	if found != 2 || markers != 1 {
		t.Errorf("doctor sent %d rules on the prefix %s/ (%d for expired delete markers); want 2, one for markers\n%s", found, lakePrefix, markers, bodies[0])
	}
}
