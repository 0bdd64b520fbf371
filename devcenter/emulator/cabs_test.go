package emulator

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// firstCab returns the CabIdHash and ApplicationId of the first row of
// report id's newest file that has a cab.
func (h *harness) firstCab(id int) (cab, app string) {
	h.t.Helper()
	_, _, records := h.download(h.newestLink(id), '\t')
	cabs := column(h.t, records, "CabIdHash")
	var apps []string
	if id == DemoIHVReportID {
		apps = column(h.t, records, "ApplicationId")
	}
	for i, c := range cabs {
		if c != "" {
			if apps != nil {
				app = apps[i]
			}
			return c, app
		}
	}
	h.t.Fatal("no row with a cab")
	return "", ""
}

// cabRedirect calls a cab endpoint and returns the Location of its 302.
func (h *harness) cabRedirect(path string) string {
	h.t.Helper()
	resp, body := h.call(http.MethodGet, path, nil)
	if resp.StatusCode != http.StatusFound {
		h.t.Fatalf("GET %s: status %d, want 302: %s", path, resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

func TestCabDownload(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	cab, app := h.firstCab(DemoIHVReportID)
	location := h.cabRedirect("/v1.0/my/analytics/driver/cabdownload?applicationId=" + app + "&cabIdHash=" + cab)
	if want := h.srv.URL + "/blobs/cabs/" + cab + ".cab?se="; !strings.HasPrefix(location, want) {
		t.Fatalf("Location %s, want prefix %s", location, want)
	}
	resp, body := h.get(location)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET cab: status %d: %s", resp.StatusCode, body)
	}
	if !bytes.HasPrefix(body, []byte("MSCF")) || binary.LittleEndian.Uint32(body[8:]) != uint32(len(body)) {
		t.Errorf("cab header % x", body[:36])
	}
	if len(body) < 100<<10 || len(body) > 6<<20 {
		t.Errorf("cab of %d bytes", len(body))
	}
	sum := md5.Sum(body)
	digest := base64.StdEncoding.EncodeToString(sum[:])
	if resp.Header.Get("Content-MD5") != digest || resp.Header.Get("x-ms-blob-content-md5") != digest {
		t.Errorf("Content-MD5 %q, x-ms-blob-content-md5 %q, want %q",
			resp.Header.Get("Content-MD5"), resp.Header.Get("x-ms-blob-content-md5"), digest)
	}

	resp, part := h.get(location, "Range", "bytes=100-1123")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, body[100:1124]) {
		t.Errorf("Range: status %d, %d bytes", resp.StatusCode, len(part))
	}
	if got := resp.Header.Get("Content-Range"); got != fmt.Sprintf("bytes 100-1123/%d", len(body)) {
		t.Errorf("Content-Range %q", got)
	}
	if resp.Header.Get("x-ms-blob-content-md5") != digest || resp.Header.Get("Content-MD5") != "" {
		t.Errorf("range response: x-ms-blob-content-md5 %q, want %q, and no Content-MD5 (got %q)",
			resp.Header.Get("x-ms-blob-content-md5"), digest, resp.Header.Get("Content-MD5"))
	}

	// The same cab through the other IHV endpoint and prefix, and from an
	// emulator with the same seed: the same bytes.
	other := newHarness(t, Options{}, testNow)
	_, again := other.get(other.cabRedirect("/analytics/ihvdriver/cabdownload?cabIdHash=" + strings.ToUpper(cab)))
	if !bytes.Equal(again, body) {
		t.Error("the same cab differs between emulators with the same seed")
	}

	// Cabs expire with their link.
	h.clock.Advance(time.Hour + time.Second)
	if resp, _ := h.get(location); resp.StatusCode != http.StatusForbidden {
		t.Errorf("expired cab link: status %d, want 403", resp.StatusCode)
	}
}

func TestCabSizesVary(t *testing.T) {
	em := New(Options{Now: func() time.Time { return testNow }})
	today := dayNumber(testNow)
	var sizes []int
	for c := range 60 {
		ref := cabRef{view: viewOEM, day: today - 1, index: c}
		sizes = append(sizes, len(em.cabContent(ref)))
	}
	big := 0
	for _, n := range sizes {
		switch {
		case n >= 2<<20 && n < 6<<20:
			big++
		case n < 100<<10 || n >= 600<<10:
			t.Errorf("cab size %d outside 100-600 KiB and 2-6 MiB", n)
		}
	}
	if big == 0 || big > 15 {
		t.Errorf("%d of %d cabs are several MiB, want about 1 in 10", big, len(sizes))
	}
	if distinct := len(slices.Compact(slices.Sorted(slices.Values(sizes)))); distinct < 50 {
		t.Error("cab sizes do not vary")
	}
}

func TestCabEndpointErrors(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	ihvCab, app := h.firstCab(DemoIHVReportID)
	oemCab, _ := h.firstCab(DemoOEMReportID)
	h.cabRedirect("/v1.0/my/analytics/hardware/cabdownload?cabIdHash=" + oemCab)

	// Well-formed ids of cabs the data never produced: beyond a date's
	// pool, and of today (no run has covered today yet).
	yesterday := dayNumber(testNow) - 1
	beyondPool := encodeCabID(h.em.seed, cabRef{view: viewOEM, day: yesterday, index: h.em.data.cabPool()})
	ofToday := encodeCabID(h.em.seed, cabRef{view: viewOEM, day: yesterday + 1, index: 0})
	h.cabRedirect("/v1.0/my/analytics/hardware/cabdownload?cabIdHash=" + encodeCabID(h.em.seed, cabRef{view: viewOEM, day: yesterday, index: h.em.data.cabPool() - 1}))

	tests := []struct {
		path   string
		status int
		want   string
	}{
		{"/v1.0/my/analytics/hardware/cabdownload?cabIdHash=" + beyondPool, http.StatusNotFound, "no cab"},
		{"/v1.0/my/analytics/hardware/cabdownload?cabIdHash=" + ofToday, http.StatusNotFound, "no cab"},
		{"/v1.0/my/analytics/driver/cabdownload?cabIdHash=" + ihvCab, http.StatusBadRequest, "applicationId is required"},
		{"/v1.0/my/analytics/driver/cabdownload?applicationId=" + app, http.StatusBadRequest, "cabIdHash is required"},
		{"/v1.0/my/analytics/hardware/cabdownload", http.StatusBadRequest, "cabIdHash is required"},
		{"/v1.0/my/analytics/driver/cabdownload?applicationId=" + app + "&cabIdHash=c1a51104-d682-4230-be14-7278b18e3555", http.StatusNotFound, "no cab"},
		{"/v1.0/my/analytics/driver/cabdownload?applicationId=" + app + "&cabIdHash=" + ihvCab[:35] + flipHex(ihvCab[35]), http.StatusNotFound, "no cab"},
		{"/v1.0/my/analytics/driver/cabdownload?applicationId=12345678901234567&cabIdHash=" + ihvCab, http.StatusNotFound, "applicationId"},
		{"/v1.0/my/analytics/hardware/cabdownload?cabIdHash=" + ihvCab, http.StatusNotFound, "no cab"},
		{"/v1.0/my/analytics/ihvdriver/cabdownload?cabIdHash=" + oemCab, http.StatusNotFound, "no cab"},
		{"/v1.0/my/analytics/ihvdriver/cabdownload?cabIdHash=not-a-guid", http.StatusNotFound, "no cab"},
	}
	for _, tt := range tests {
		resp, body := h.call(http.MethodGet, tt.path, nil)
		var e storeError
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("GET %s: decoding %s: %v", tt.path, body, err)
		}
		if resp.StatusCode != tt.status || !strings.Contains(e.InnerError.Data[0], tt.want) || e.Source != "AnalyticsAPI" {
			t.Errorf("GET %s: status %d body %s, want %d mentioning %q", tt.path, resp.StatusCode, body, tt.status, tt.want)
		}
	}

	// Blob URLs: a valid signature for a cab the data never produced is a
	// 404; a bad signature a 403.
	req := &http.Request{Host: strings.TrimPrefix(h.srv.URL, "http://")}
	resp, body := h.get(h.em.signedURL(req, "/blobs/cabs/c1a51104-d682-4230-be14-7278b18e3555.cab", testNow, time.Hour))
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "<Code>ResourceNotFound</Code>") {
		t.Errorf("unknown cab blob: status %d body %s", resp.StatusCode, body)
	}
	location := h.cabRedirect("/analytics/hardware/cabdownload?cabIdHash=" + oemCab)
	u, _ := url.Parse(location)
	resp, body = h.get(h.srv.URL + u.Path + "?se=" + u.Query().Get("se") + "&sig=" + strings.Repeat("ab", 32))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "<Code>AuthenticationFailed</Code>") {
		t.Errorf("tampered cab signature: status %d body %s", resp.StatusCode, body)
	}
}

// flipHex returns a different hex digit than c.
func flipHex(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}

func TestCabIDRoundTrip(t *testing.T) {
	seen := make(map[string]bool)
	for _, ref := range []cabRef{
		{viewIHV, 0, 0}, {viewOEM, 19797, 65}, {viewIHV, 1<<20 - 1, 1<<32 - 1}, {viewOEM, 20000, 12345},
	} {
		id := encodeCabID(1, ref)
		if seen[id] {
			t.Errorf("duplicate id %s", id)
		}
		seen[id] = true
		got, ok := decodeCabID(1, id)
		if !ok || got != ref {
			t.Errorf("decode(encode(%+v)) = %+v, %v", ref, got, ok)
		}
		if _, ok := decodeCabID(2, id); ok {
			t.Errorf("id %s of seed 1 accepted for seed 2", id)
		}
		if _, ok := decodeCabID(1, strings.ToUpper(id)); !ok {
			t.Errorf("upper-case %s rejected", id)
		}
	}
	s := newStream(99)
	for range 1000 {
		if ref, ok := decodeCabID(1, s.guid()); ok {
			t.Fatalf("random GUID accepted as %+v", ref)
		}
	}
}

func TestFileCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newFileCache(25)
	renders := 0
	get := func(run int64) {
		t.Helper()
		f, err := c.get(fileKey{run: run}, func() ([]byte, error) {
			renders++
			return bytes.Repeat([]byte{'x'}, 10), nil
		})
		if err != nil || len(f.data) != 10 {
			t.Fatalf("get %d: %v", run, err)
		}
	}
	get(1)
	get(2)
	get(1) // 1 is now the most recently used
	get(3) // 30 bytes > 25: evicts 2
	get(1)
	get(3)
	if renders != 3 || c.size != 20 || c.lru.Len() != 2 {
		t.Fatalf("renders %d, size %d, files %d; want 3, 20, 2", renders, c.size, c.lru.Len())
	}
	get(2)
	if renders != 4 {
		t.Errorf("evicted file was not rendered again")
	}

	_, err := c.get(fileKey{run: 9}, func() ([]byte, error) { return nil, fmt.Errorf("boom") })
	if err == nil || c.index[fileKey{run: 9}] != nil {
		t.Errorf("a failed render is cached: %v", err)
	}
}

func TestCabExpires(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	_, _, records := h.download(h.newestLink(DemoOEMReportID), '\t')
	hashes, expiries := column(t, records, "CabIdHash"), column(t, records, "CabExpirationTime")
	i := slices.IndexFunc(hashes, func(s string) bool { return s != "" })
	cab := hashes[i]
	expiry, err := time.Parse(rowTimeLayout, expiries[i])
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1.0/my/analytics/hardware/cabdownload?cabIdHash=" + cab

	// Still downloadable one second before CabExpirationTime.
	h.clock.Set(expiry.Add(-time.Second))
	h.token = h.newToken()
	location := h.cabRedirect(path)
	if resp, body := h.get(location); resp.StatusCode != http.StatusOK || !bytes.HasPrefix(body, []byte("MSCF")) {
		t.Fatalf("cab before expiry: status %d", resp.StatusCode)
	}

	// From CabExpirationTime on: 404 from the endpoint, and the blob is gone
	// although its link is still valid.
	h.clock.Set(expiry)
	resp, body := h.call(http.MethodGet, path, nil)
	var e storeError
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusNotFound ||
		e.InnerError.Code != "ResourceNotFound" || !strings.Contains(e.InnerError.Data[0], "expired at "+expiries[i]) {
		t.Errorf("expired cab: status %d body %s", resp.StatusCode, body)
	}
	resp, body = h.get(location)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "<Code>ResourceNotFound</Code>") {
		t.Errorf("expired cab blob: status %d body %s", resp.StatusCode, body)
	}
	// The ground truth is still available.
	if data, ok := h.em.CabBytes(cab); !ok || !bytes.HasPrefix(data, []byte("MSCF")) {
		t.Error("CabBytes of an expired cab")
	}
}

func TestCabSizeOptions(t *testing.T) {
	ref := func(c int) cabRef { return cabRef{view: viewIHV, day: dayNumber(testNow) - 2, index: c} }
	tests := []struct {
		opts   Options
		lo, hi int
	}{
		{Options{CabSizeMin: 1000, CabSizeMax: 3000}, 1000, 3000},
		{Options{CabSizeMin: 4096}, 4096, 4096},
		{Options{CabSizeMax: 10}, cabHeaderSize, cabHeaderSize},
		{Options{CabSizeMax: 200}, cabHeaderSize, 200},
	}
	for _, tt := range tests {
		em := New(tt.opts)
		var sizes []int
		for c := range 40 {
			data := em.cabContent(ref(c))
			n := len(data)
			if n < tt.lo || n > tt.hi || !bytes.HasPrefix(data, []byte("MSCF")) || binary.LittleEndian.Uint32(data[8:]) != uint32(n) {
				t.Errorf("%+v: cab of %d bytes, header % x", tt.opts, n, data[:min(n, 12)])
			}
			sizes = append(sizes, n)
		}
		if distinct := len(slices.Compact(slices.Sorted(slices.Values(sizes)))); tt.hi-tt.lo > 1000 && distinct < 30 {
			t.Errorf("%+v: only %d distinct sizes", tt.opts, distinct)
		}
		if !bytes.Equal(em.cabContent(ref(7)), New(tt.opts).cabContent(ref(7))) {
			t.Errorf("%+v: cab bytes differ between emulators", tt.opts)
		}
	}
	for _, opts := range []Options{{CabSizeMin: 10, CabSizeMax: 5}, {CabSizeMin: -1}, {CabSizeMax: 2 << 30}} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "option") {
					t.Errorf("New(%+v): panic %v, want one naming the option", opts, r)
				}
			}()
			New(opts)
		}()
	}
}

func TestCabBytesMatchesDownload(t *testing.T) {
	h := newHarness(t, Options{CabSizeMin: 5000, CabSizeMax: 9000}, testNow)
	cab, app := h.firstCab(DemoIHVReportID)
	_, body := h.get(h.cabRedirect("/analytics/driver/cabdownload?applicationId=" + app + "&cabIdHash=" + cab))
	for _, id := range []string{cab, strings.ToUpper(cab)} {
		data, ok := h.em.CabBytes(id)
		if !ok || !bytes.Equal(data, body) {
			t.Errorf("CabBytes(%s): ok %v, %d bytes, want the %d downloaded", id, ok, len(data), len(body))
		}
	}
	if len(body) < 5000 || len(body) > 9000 {
		t.Errorf("cab of %d bytes", len(body))
	}
	for _, id := range []string{"c1a51104-d682-4230-be14-7278b18e3555", "nope", ""} {
		if _, ok := h.em.CabBytes(id); ok {
			t.Errorf("CabBytes(%q) found a cab", id)
		}
	}
}
