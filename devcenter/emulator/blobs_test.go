package emulator

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// download fetches a report link and returns the response and the file
// parsed with encoding/csv (after gunzip if the link ends in .gz).
func (h *harness) download(link string, delim rune) (*http.Response, []byte, [][]string) {
	h.t.Helper()
	resp, body := h.get(link)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET %s: status %d: %s", link, resp.StatusCode, body)
	}
	if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(len(body)) {
		h.t.Errorf("Content-Length %q for %d bytes", got, len(body))
	}
	text := body
	if u, _ := url.Parse(link); strings.HasSuffix(u.Path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			h.t.Fatalf("gunzip: %v", err)
		}
		if text, err = io.ReadAll(zr); err != nil {
			h.t.Fatalf("gunzip: %v", err)
		}
	}
	r := csv.NewReader(bytes.NewReader(text))
	r.Comma = delim
	records, err := r.ReadAll() // also checks that every row has the header's field count
	if err != nil {
		h.t.Fatalf("parsing %s: %v", link, err)
	}
	return resp, text, records
}

// column returns the values of the named column.
func column(t *testing.T, records [][]string, name string) []string {
	t.Helper()
	i := slices.Index(records[0], name)
	if i < 0 {
		t.Fatalf("no column %s in %v", name, records[0])
	}
	var values []string
	for _, rec := range records[1:] {
		values = append(values, rec[i])
	}
	return values
}

// rowsPerDate counts rows by FailureDate.
func rowsPerDate(t *testing.T, records [][]string) map[string]int {
	counts := make(map[string]int)
	for _, d := range column(t, records, "FailureDate") {
		counts[d]++
	}
	return counts
}

func TestDownloadTSV(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	link := h.newestLink(DemoIHVReportID)
	if !regexp.MustCompile(`^http://127\.0\.0\.1:\d+/blobs/reports/1/20240315020000\.tsv\?se=\d+&sig=[0-9a-f]{64}$`).MatchString(link) {
		t.Fatalf("link %s", link)
	}
	resp, text, records := h.download(link, '\t')
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	if !slices.Equal(records[0], IHVColumns) {
		t.Errorf("header %v", records[0])
	}
	if bytes.Contains(text, []byte("\r")) || bytes.Contains(text, []byte(`"`)) {
		t.Error("TSV has CR line ends or quoting")
	}
	// Ages 1, 2 and 3..7 days: 67 + 134 + 5×200 rows.
	if n := len(records) - 1; n != 1201 {
		t.Errorf("%d rows, want 1201", n)
	}
	counts := rowsPerDate(t, records)
	if len(counts) != 7 || counts["2024-03-14"] != 67 || counts["2024-03-13"] != 134 || counts["2024-03-08"] != 200 {
		t.Errorf("rows per date %v", counts)
	}
	for _, id := range column(t, records, "ReportId") {
		if id != "1" {
			t.Fatalf("ReportId %q, want 1", id)
		}
	}
	checkIHVValues(t, records)
}

// checkIHVValues checks the shapes and cardinalities of IHV values.
func checkIHVValues(t *testing.T, records [][]string) {
	t.Helper()
	patterns := map[string]*regexp.Regexp{
		"FailureDateTime":   regexp.MustCompile(`^2024-03-\d\d \d\d:\d\d:\d\d$`),
		"ApplicationId":     regexp.MustCompile(`^\d{17}$`),
		"FailureHash":       regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`),
		"OSVersion":         regexp.MustCompile(`^10\.0\.\d{5}\.\d+$`),
		"DriverName":        regexp.MustCompile(`^[a-z]+\.sys$`),
		"DriverVersion":     regexp.MustCompile(`^\d+\.\d+\.\d+\.0$`),
		"DeviceId":          regexp.MustCompile(`^s:[0-9A-F]{8}-[0-9A-F]{4}-`),
		"HardwareId":        regexp.MustCompile(`^PCI\\VEN_[0-9A-F]{4}&DEV_[0-9A-F]{4}&SUBSYS_[0-9A-F]{8}$`),
		"EventCount":        regexp.MustCompile(`^([1-9]|[1-4]\d|50)$`),
		"CabIdHash":         regexp.MustCompile(`^([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})?$`),
		"CabCollectionTime": regexp.MustCompile(`^(2024-03-\d\d \d\d:\d\d:\d\d)?$`),
	}
	for name, re := range patterns {
		for _, v := range column(t, records, name) {
			if !re.MatchString(v) {
				t.Errorf("%s value %q", name, v)
				break
			}
		}
	}
	distinct := func(name string) int {
		seen := make(map[string]bool)
		for _, v := range column(t, records, name) {
			seen[v] = true
		}
		return len(seen)
	}
	for name, want := range map[string][2]int{
		"ApplicationId": {3, 3}, "DriverName": {8, 8}, "FailureName": {25, 40},
		"OSName": {2, 2}, "CabType": {4, 4}, "Market": {8, 12},
	} {
		if n := distinct(name); n < want[0] || n > want[1] {
			t.Errorf("%d distinct %s values, want %d..%d", n, name, want[0], want[1])
		}
	}
	cabs, empty := column(t, records, "CabIdHash"), 0
	for _, c := range cabs {
		if c == "" {
			empty++
		}
	}
	if share := float64(empty) / float64(len(cabs)); share < 0.08 || share > 0.22 {
		t.Errorf("%.2f of rows without a cab, want about 0.15", share)
	}
	if n := distinct("CabIdHash"); n >= len(cabs)-empty {
		t.Errorf("%d distinct cabs in %d rows with cabs: cabs should repeat", n, len(cabs)-empty)
	}
}

func TestDownloadGzipCSVAndDateFormat(t *testing.T) {
	h := newHarness(t, Options{Gzip: true, Delimiter: ',', DateFormat: "mdy"}, testNow)
	link := h.newestLink(DemoOEMReportID)
	if u, _ := url.Parse(link); !strings.HasSuffix(u.Path, "/blobs/reports/2/20240315020000.csv.gz") {
		t.Fatalf("link %s", link)
	}
	resp, text, records := h.download(link, ',')
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	if !slices.Equal(records[0], OEMColumns) {
		t.Errorf("header %v", records[0])
	}
	if !bytes.Contains(text, []byte(`,"Contoso Pad, 2nd Gen",`)) || !slices.Contains(column(t, records, "ModelFamily"), "Contoso Pad, 2nd Gen") {
		t.Error("the ModelFamily with a comma is not RFC 4180 quoted and parsed back")
	}
	counts := rowsPerDate(t, records)
	if counts["3/14/2024"] != 67 || counts["3/8/2024"] != 200 {
		t.Errorf("rows per mdy date %v", counts)
	}

	for format, want := range map[string]string{
		"mmddyy": `^03(0[89]|1[0-4])24$`, "datetime": `^2024-03-\d\d 00:00:00$`, "iso": `^2024-03-\d\d$`,
	} {
		h := newHarness(t, Options{DateFormat: format, RowsPerDay: 3}, testNow)
		_, _, records := h.download(h.newestLink(DemoIHVReportID), '\t')
		for _, d := range column(t, records, "FailureDate") {
			if !regexp.MustCompile(want).MatchString(d) {
				t.Errorf("DateFormat %s: FailureDate %q", format, d)
				break
			}
		}
	}
}

func TestDownloadIsDeterministicAndCached(t *testing.T) {
	a := newHarness(t, Options{Seed: 7}, testNow)
	b := newHarness(t, Options{Seed: 7}, testNow)
	c := newHarness(t, Options{Seed: 8}, testNow)
	_, fileA, _ := a.download(a.newestLink(DemoIHVReportID), '\t')
	_, fileB, _ := b.download(b.newestLink(DemoIHVReportID), '\t')
	_, fileC, _ := c.download(c.newestLink(DemoIHVReportID), '\t')
	if !bytes.Equal(fileA, fileB) {
		t.Error("same seed, different files")
	}
	if bytes.Equal(fileA, fileC) {
		t.Error("different seeds, same file")
	}

	// Concurrent downloads of one file generate it once.
	link := a.newestLink(DemoOEMReportID)
	var wg sync.WaitGroup
	bodies := make([][]byte, 8)
	for i := range bodies {
		wg.Go(func() {
			resp, err := http.Get(link)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			bodies[i], _ = io.ReadAll(resp.Body)
		})
	}
	wg.Wait()
	for _, body := range bodies[1:] {
		if !bytes.Equal(body, bodies[0]) || len(body) == 0 {
			t.Fatal("concurrent downloads differ")
		}
	}
	if n := a.em.files.lru.Len(); n != 2 {
		t.Errorf("%d cached files, want 2", n)
	}
}

func TestNewerRunsReportMoreRows(t *testing.T) {
	h := newHarness(t, Options{RowsPerDay: 30}, testNow)
	var links []string
	for _, r := range h.runs(DemoIHVReportID, "startDate=2024-03-12") {
		if r.ReportLocation != "" {
			links = append(links, r.ReportLocation)
		}
	}
	if len(links) < 2 {
		t.Fatalf("%d finished runs, want at least 2", len(links))
	}
	var prev map[string]int
	var prevRows map[string][]string
	for _, link := range links {
		_, _, records := h.download(link, '\t')
		counts := rowsPerDate(t, records)
		rows := make(map[string][]string)
		for _, rec := range records[1:] {
			rows[rec[1]] = append(rows[rec[1]], strings.Join(rec, "\t"))
		}
		grew := false
		for date, n := range prev {
			if counts[date] == 0 {
				continue // left the 7-day window
			}
			if counts[date] < n {
				t.Errorf("%s: newer run has %d rows for %s, older %d", link, counts[date], date, n)
			}
			if counts[date] > n {
				grew = true
			}
			// The older run's rows are a prefix of the newer run's.
			if !slices.Equal(rows[date][:n], prevRows[date]) {
				t.Errorf("rows for %s differ between runs", date)
			}
		}
		if prev != nil && !grew {
			t.Errorf("%s: no date gained rows", link)
		}
		prev, prevRows = counts, rows
	}
}

func TestProjectionSubset(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	h.api(http.StatusCreated, http.MethodPost, "/analytics/driver/reporttemplate", map[string]any{
		"view": "IHVDriver", "projection": []string{"EventCount", "DriverName", "FailureDate"},
		"dateRange": map[string]string{"reportPeriod": "Yesterday"},
	})
	h.api(http.StatusCreated, http.MethodPost, "/analytics/driver/report", map[string]any{
		"templateId": 3, "schedule": map[string]any{"startTime": "2024-03-15T08:00:00Z", "recurrenceInterval": 24, "recurrence": 1},
	})
	_, _, records := h.download(h.newestLink(3), '\t')
	if want := []string{"EventCount", "DriverName", "FailureDate"}; !slices.Equal(records[0], want) {
		t.Errorf("header %v, want %v", records[0], want)
	}
	if len(records) != 1+67 {
		t.Errorf("%d rows, want 67 (a Yesterday run sees a third of the day)", len(records)-1)
	}
	for _, rec := range records[1:] {
		if _, err := strconv.Atoi(rec[0]); err != nil || !strings.HasSuffix(rec[1], ".sys") || rec[2] != "2024-03-14" {
			t.Fatalf("row %v", rec)
		}
	}
}

func TestDownloadLinkSignature(t *testing.T) {
	h := newHarness(t, Options{LinkTTL: time.Hour}, testNow)
	link := h.newestLink(DemoIHVReportID)
	u, _ := url.Parse(link)
	q := u.Query()

	expectBlobError := func(rawURL string, status int, code, message string) {
		t.Helper()
		resp, body := h.get(rawURL)
		want := `<?xml version="1.0" encoding="utf-8"?><Error><Code>` + code + `</Code><Message>` + message
		if resp.StatusCode != status || !strings.HasPrefix(string(body), want) {
			t.Errorf("GET %s: status %d body %s, want %d %s", rawURL, resp.StatusCode, body, status, code)
		}
	}
	tampered := strings.Replace(link, "sig="+q.Get("sig")[:4], "sig=0000", 1)
	if tampered == link {
		tampered = strings.Replace(link, "sig="+q.Get("sig")[:4], "sig=1111", 1)
	}
	expectBlobError(tampered, http.StatusForbidden, "AuthenticationFailed", "Server failed to authenticate")
	expectBlobError(strings.Replace(link, "/reports/1/", "/reports/2/", 1), http.StatusForbidden, "AuthenticationFailed", "Server failed")
	expectBlobError(h.srv.URL+u.Path, http.StatusForbidden, "AuthenticationFailed", "Server failed")
	later, _ := strconv.ParseInt(q.Get("se"), 10, 64)
	expectBlobError(strings.Replace(link, "se="+q.Get("se"), "se="+strconv.FormatInt(later+3600, 10), 1),
		http.StatusForbidden, "AuthenticationFailed", "Server failed")

	// A valid signature for a run that does not exist or failed.
	expectBlobError(h.em.signedURL(&http.Request{Host: u.Host}, "/blobs/reports/1/20240315030000.tsv", testNow, time.Hour),
		http.StatusNotFound, "ResourceNotFound", "The specified resource does not exist.")
	expectBlobError(h.em.signedURL(&http.Request{Host: u.Host}, "/blobs/reports/1/20240315020000.csv", testNow, time.Hour),
		http.StatusNotFound, "ResourceNotFound", "The specified resource does not exist.")
	for _, r := range h.runs(DemoIHVReportID, "") {
		if r.ReportStatus == statusFailed {
			at, _ := time.Parse(runTimeLayout, r.ReportDatetime)
			path := "/blobs/reports/1/" + at.Format(blobStampLayout) + ".tsv"
			expectBlobError(h.em.signedURL(&http.Request{Host: u.Host}, path, testNow, time.Hour),
				http.StatusNotFound, "ResourceNotFound", "The specified")
		}
	}

	h.clock.Advance(time.Hour)
	h.download(link, '\t') // still valid at the expiry second
	h.clock.Advance(time.Second)
	expectBlobError(link, http.StatusForbidden, "AuthenticationFailed", "Signature not valid in the specified time frame")
	// A fresh reportdata call gives a fresh link.
	h.token = h.newToken()
	h.download(h.newestLink(DemoIHVReportID), '\t')
}

// BenchmarkRenderReport measures generating a full IHV Last7Days file of
// 1,000 rows per day (first download; later downloads are served from the cache).
func BenchmarkRenderReport(b *testing.B) {
	em := New(Options{RowsPerDay: 1000, Now: func() time.Time { return testNow }})
	spec, ok := em.finishedRun(DemoIHVReportID, time.Date(2024, 3, 15, 2, 0, 0, 0, time.UTC))
	if !ok {
		b.Fatal("no finished run")
	}
	for b.Loop() {
		data, err := em.renderReport(spec)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
	}
}
