package cabmirror_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/hdc-export/hdc-export/cabmirror"
	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/devcenter/devcentertest"
	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/schema"
	"github.com/hdc-export/hdc-export/sinks"
	"github.com/hdc-export/hdc-export/sinks/local"
)

// The mirror alone, over hand-made partitions in a local lake and a fake
// or hand-made cab API. The tests of the whole cycle (the emulator's
// cabs, faults, limits, interruptions) are pipeline's.

var t0 = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// fakeCabAPI answers cab links from a table and records every call.
type fakeCabAPI struct {
	cabmirror.Client // OpenCab: never called, CabLink gives no link
	mu               sync.Mutex
	calls            []string // endpoint + " " + app + " " + hash
	gone             map[string]bool
}

func (f *fakeCabAPI) CabLink(ctx context.Context, ep devcenter.CabEndpoint, app, hash string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, string(ep)+" "+app+" "+hash)
	if f.gone[strings.ToLower(hash)] {
		return "", &devcenter.APIError{Endpoint: "GET cabdownload", Status: http.StatusNotFound}
	}
	return "", errors.New("service unavailable")
}

// craftedRow is a data row of a hand-made partition.
type craftedRow struct {
	FailureDate int32      `parquet:"failure_date,date"`
	CabIDHash   *string    `parquet:"cab_id_hash,optional"`
	AppID       *string    `parquet:"application_id,optional"`
	Collected   *time.Time `parquet:"cab_collection_time,optional,timestamp(millisecond)"`
	Expires     *time.Time `parquet:"cab_expiration_time,optional,timestamp(millisecond)"`
}

// craftPartition writes a data partition and its manifest by hand.
func craftPartition(t *testing.T, sink sinks.Sink, dataset string, d lake.Date, rows []craftedRow) {
	t.Helper()
	for i := range rows {
		rows[i].FailureDate = int32(d)
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[craftedRow](&buf)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sink.Put(ctx, lake.DataKey(dataset, d), bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	m := fmt.Sprintf(`{"dataset":%q,"date":%q,"run":"20261121T020000Z","rows":%d,"files":[{"key":%q,"rows":%d,"bytes":%d,"sha256":"x"}]}`,
		dataset, d, len(rows), lake.DataKey(dataset, d), len(rows), buf.Len())
	if err := sink.Put(ctx, lake.ManifestKey(dataset, d), strings.NewReader(m)); err != nil {
		t.Fatal(err)
	}
}

// newCraftedMirror is a mirror of the ihv_driver dataset over a local
// lake with a fake cab API. Its log handler serialises writes; the log is
// read once Run has returned.
func newCraftedMirror(t *testing.T, api cabmirror.Client, clock *devcentertest.Clock) (*cabmirror.Mirror, string, *bytes.Buffer) {
	t.Helper()
	lakeDir := t.TempDir()
	sink, err := local.New(lakeDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := cabmirror.Config{RatePerSecond: 1000}
	cfg.SetDefaults()
	tmp := t.TempDir()
	logs := &bytes.Buffer{}
	return &cabmirror.Mirror{Client: api, Sink: sink, Config: cfg, Now: clock.Now,
		Datasets:  []cabmirror.Dataset{{Name: "ihv_driver", View: "IHVDriver"}},
		MkdirTemp: func() (string, error) { return os.MkdirTemp(tmp, "spill-") },
		Log:       slog.New(slog.NewTextHandler(logs, nil))}, lakeDir, logs
}

// mirror runs m over the retention window at its clock's time.
func mirror(m *cabmirror.Mirror) (cabmirror.Result, error) {
	return m.Run(context.Background(), lake.NewWindow(m.Now(), retentionDays))
}

const retentionDays = 30

// lakeCabs lists the cabs of a local lake with the dates each is stored
// under (a cab stored twice shows two).
func lakeCabs(t *testing.T, lakeDir string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, f := range lakeFiles(t, lakeDir) {
		dir, name := path.Split(f)
		if date, ok := strings.CutPrefix(dir, "cabs/date="); ok {
			id := strings.TrimSuffix(name, ".cab")
			out[id] = append(out[id], strings.TrimSuffix(date, "/"))
		}
	}
	return out
}

// lakeFiles lists every object of a local lake.
func lakeFiles(t *testing.T, lakeDir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(lakeDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(lakeDir, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// TestMirrorRejectsHostileHashes: CabIdHash values that are not GUIDs are
// rejected, counted, never sent, never written, never logged.
func TestMirrorRejectsHostileHashes(t *testing.T) {
	hostile := []string{
		"../../etc/passwd",
		"a/b",
		strings.Repeat("a", 2048),
		"%2e%2e",
		"1d7b4184-8f18-4207-88b5-36b276363é",   // 36 bytes, not ASCII
		"1d7b4184-8f18-4207-88b5-36b276363eb５", // full-width digit
		"1d7b4184/8f18-4207-88b5-36b276363eb5", // a separator in the right length
		"1d7b4184-8f18-4207-88b5-36b27636..b5",
		`..\..\1d7b4184-8f18-4207-88b5-36b2763`,
		"1d7b4184-8f18-4207-88b5-36b276363eb5\x00",
	}
	good := "1D7B4184-8F18-4207-88B5-36B276363EB5"
	badApp := "00000000-0000-4000-8000-000000000001"
	clock := devcentertest.NewClock(t0)
	api := &fakeCabAPI{gone: map[string]bool{strings.ToLower(good): true}}
	m, lakeDir, logs := newCraftedMirror(t, api, clock)
	d := lake.DateOf(t0) - 2
	future := t0.Add(240 * time.Hour)
	var rows []craftedRow
	for _, h := range append(hostile, good, good, "") {
		rows = append(rows, craftedRow{CabIDHash: ptr(h), AppID: ptr("18430592857500421"), Expires: &future})
	}
	rows = append(rows, craftedRow{CabIDHash: ptr(badApp), AppID: ptr("1&cabIdHash=../x"), Expires: &future}, craftedRow{})
	craftPartition(t, m.Sink, "ihv_driver", d, rows)
	before := lakeFiles(t, lakeDir)

	sum, err := mirror(m)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rejected != len(hostile)+1 {
		t.Errorf("rejected %d, want %d", sum.Rejected, len(hostile)+1)
	}
	if len(api.calls) != 1 || api.calls[0] != "driver 18430592857500421 "+good {
		t.Errorf("cab API calls %q, want only the valid GUID", api.calls)
	}
	if sum.NotFound != 1 {
		t.Errorf("summary %+v", sum)
	}
	after := lakeFiles(t, lakeDir)
	var added []string
	for _, f := range after {
		if !slices.Contains(before, f) {
			added = append(added, f)
		}
	}
	if want := []string{lake.CabStateKey("ihv_driver", d)}; !slices.Equal(added, want) {
		t.Errorf("objects added %q, want only %q", added, want)
	}
	for _, h := range append(hostile, good, badApp, "passwd", "%2e") {
		if strings.Contains(logs.String(), h) || strings.Contains(strings.ToLower(logs.String()), strings.ToLower(h)) {
			t.Errorf("the log contains %.40q", h)
		}
	}
	if !strings.Contains(logs.String(), "count=11") {
		t.Errorf("the rejections are not counted in the log:\n%s", logs.String())
	}
}

// TestMirrorSkipsExpiredCabs: cabs whose CabExpirationTime has passed by
// the runner's clock are not requested; once every reference is done the
// partition is recorded and not read again.
func TestMirrorSkipsExpiredCabs(t *testing.T) {
	clock := devcentertest.NewClock(t0)
	api := &fakeCabAPI{gone: map[string]bool{}}
	m, _, _ := newCraftedMirror(t, api, clock)
	d := lake.DateOf(t0) - 5
	hashes := []string{
		"00000000-0000-4000-8000-000000000001",
		"00000000-0000-4000-8000-000000000002",
		"00000000-0000-4000-8000-000000000003",
	}
	exp := []time.Time{t0.Add(-time.Minute), t0.Add(time.Hour), t0.Add(2 * time.Hour)}
	var rows []craftedRow
	for i, h := range hashes {
		rows = append(rows, craftedRow{CabIDHash: ptr(h), Expires: &exp[i], Collected: ptr(exp[i].Add(-30 * 24 * time.Hour))})
	}
	craftPartition(t, m.Sink, "ihv_driver", d, rows)

	// At t0 one cab has expired; the API fails for the other two: those
	// cabs' outcome (failed, with its reason), not the stage's error.
	sum, err := mirror(m)
	if err != nil || sum.SkippedExpired != 1 || sum.Failed != 2 || len(api.calls) != 2 ||
		sum.Reasons[cabmirror.OutcomeFailed][cabmirror.ReasonAPIError] != 2 || sum.Reasons[cabmirror.OutcomeSkipped][cabmirror.ReasonExpired] != 1 {
		t.Fatalf("first run: err %v, summary %+v, calls %q", err, sum, api.calls)
	}
	for _, c := range api.calls {
		if strings.HasSuffix(c, hashes[0]) {
			t.Error("an expired cab was requested")
		}
	}
	// Past every CabExpirationTime: nothing is requested, the partition is done.
	clock.Advance(3 * time.Hour)
	sum, err = mirror(m)
	if err != nil || sum.SkippedExpired != 3 || len(api.calls) != 2 {
		t.Fatalf("second run: err %v, summary %+v, calls %q", err, sum, api.calls)
	}
	sum, err = mirror(m)
	if err != nil || sum.SkippedExpired != 0 {
		t.Errorf("third run read the finished partition again: %+v %v", sum, err)
	}
}

// TestMirrorEndpointChoice: IHV rows with an ApplicationId use
// driver/cabdownload, IHV rows without ihvdriver/cabdownload, OEM rows
// hardware/cabdownload.
func TestMirrorEndpointChoice(t *testing.T) {
	clock := devcentertest.NewClock(t0)
	api := &fakeCabAPI{gone: map[string]bool{}}
	m, _, _ := newCraftedMirror(t, api, clock)
	m.Datasets = append(m.Datasets, cabmirror.Dataset{Name: "oem_driver", View: "OEMDriver"})
	d := lake.DateOf(t0) - 1
	craftPartition(t, m.Sink, "ihv_driver", d, []craftedRow{
		{CabIDHash: ptr("00000000-0000-4000-8000-00000000000a"), AppID: ptr("17")},
		{CabIDHash: ptr("00000000-0000-4000-8000-00000000000b")},
	})
	craftPartition(t, m.Sink, "oem_driver", d, []craftedRow{{CabIDHash: ptr("00000000-0000-4000-8000-00000000000c"), AppID: ptr("99")}})
	mirror(m)
	slices.Sort(api.calls)
	want := []string{
		"driver 17 00000000-0000-4000-8000-00000000000a",
		"hardware  00000000-0000-4000-8000-00000000000c",
		"ihvdriver  00000000-0000-4000-8000-00000000000b",
	}
	if !slices.Equal(api.calls, want) {
		t.Errorf("calls %q, want %q", api.calls, want)
	}
}

// blobAPI hands out links to a test blob server and opens them with the
// real client.
type blobAPI struct {
	client *devcenter.Client
	blob   string
	links  atomic.Int64
}

func (b *blobAPI) CabLink(ctx context.Context, ep devcenter.CabEndpoint, app, hash string) (string, error) {
	b.links.Add(1)
	return b.blob + "/cabs/" + strings.ToLower(hash), nil
}

func (b *blobAPI) OpenCab(ctx context.Context, link string, offset int64, allow *devcenter.HostList) (io.ReadCloser, devcenter.CabMeta, error) {
	return b.client.OpenCab(ctx, link, offset, allow)
}

// TestMirrorOneCabManyRows: a cab referenced by rows of several dates and
// datasets (and in another letter case) is fetched once and stored once,
// under the oldest of those dates.
func TestMirrorOneCabManyRows(t *testing.T) {
	cab := []byte("MSCF and some bytes")
	sum := md5.Sum(cab)
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		w.Header().Set("x-ms-blob-content-md5", base64.StdEncoding.EncodeToString(sum[:]))
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(cab))
	}))
	defer srv.Close()
	clock := devcentertest.NewClock(t0)
	api := &blobAPI{client: devcentertest.NewClient(t, srv.URL), blob: srv.URL}
	m, lakeDir, _ := newCraftedMirror(t, api, clock)
	m.Datasets = append(m.Datasets, cabmirror.Dataset{Name: "oem_driver", View: "OEMDriver"})
	m.Config.AllowHosts = []string{srv.URL}
	id := "00000000-0000-4000-8000-0000000000ab"
	d := lake.DateOf(t0) - 4
	craftPartition(t, m.Sink, "ihv_driver", d+2, []craftedRow{{CabIDHash: ptr(id)}, {CabIDHash: ptr(strings.ToUpper(id))}})
	craftPartition(t, m.Sink, "oem_driver", d, []craftedRow{{CabIDHash: ptr(strings.ToUpper(id))}})
	craftPartition(t, m.Sink, "ihv_driver", d+1, []craftedRow{{CabIDHash: ptr(id)}})
	s, err := mirror(m)
	if err != nil || s.Mirrored != 1 || s.Bytes != int64(len(cab)) {
		t.Fatalf("err %v, summary %+v", err, s)
	}
	if got := lakeCabs(t, lakeDir); len(got) != 1 || !slices.Equal(got[id], []string{d.String()}) {
		t.Errorf("cabs in the lake: %v, want %s under %s only", got, id, d)
	}
	if api.links.Load() != 1 || gets.Load() != 1 {
		t.Errorf("%d links, %d blob requests for one cab", api.links.Load(), gets.Load())
	}
	b, err := os.ReadFile(filepath.Join(lakeDir, lake.CabIndexKey(d)))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := schema.DecodeCabIndex(b)
	if err != nil || len(rows) != 1 || rows[0].MD5 != hex.EncodeToString(sum[:]) || rows[0].View != "OEMDriver" || rows[0].Dataset != "oem_driver" {
		t.Errorf("index %+v, %v", rows, err)
	}
	// Every partition is done: a second run asks for nothing.
	if s, err := mirror(m); err != nil || api.links.Load() != 1 || s.Mirrored != 0 {
		t.Errorf("second run: %+v, %v, %d links", s, err, api.links.Load())
	}
}

// streamingSink hides that the local sink's reader is a file, as the S3
// sink's is not.
type streamingSink struct{ sinks.Sink }

func (s streamingSink) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := s.Sink.Get(ctx, key)
	return struct{ io.ReadCloser }{rc}, err
}

// TestMirrorReadsStreamingSink: a data file the sink cannot serve at
// random is read through a spill copy in a folder from MkdirTemp, which is
// removed afterwards.
func TestMirrorReadsStreamingSink(t *testing.T) {
	clock := devcentertest.NewClock(t0)
	api := &fakeCabAPI{gone: map[string]bool{}}
	m, _, _ := newCraftedMirror(t, api, clock)
	m.Sink = streamingSink{m.Sink}
	tmp := t.TempDir()
	var spills atomic.Int64
	m.MkdirTemp = func() (string, error) { spills.Add(1); return os.MkdirTemp(tmp, "spill-") }
	d := lake.DateOf(t0) - 1
	craftPartition(t, m.Sink, "ihv_driver", d, []craftedRow{
		{CabIDHash: ptr("00000000-0000-4000-8000-00000000000a"), AppID: ptr("17")},
		{CabIDHash: ptr("00000000-0000-4000-8000-00000000000b")},
	})
	sum, err := mirror(m)
	if err != nil || sum.Failed != 2 {
		t.Errorf("err %v, summary %+v: want both cabs failed at the fake API (their outcome, not an error)", err, sum)
	}
	slices.Sort(api.calls)
	want := []string{
		"driver 17 00000000-0000-4000-8000-00000000000a",
		"ihvdriver  00000000-0000-4000-8000-00000000000b",
	}
	if !slices.Equal(api.calls, want) {
		t.Errorf("calls %q, want %q", api.calls, want)
	}
	if spills.Load() != 1 {
		t.Errorf("%d spill folders made for one data file", spills.Load())
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("spill folder left behind: %v", left)
	}
}
