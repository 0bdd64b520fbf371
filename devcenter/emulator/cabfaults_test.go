package emulator

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"strings"
	"testing"
)

// TestCabOffAllowlist: a switched cab's endpoint redirects off the
// allowlist (by list or rate); the others keep their blob URLs; requests
// are counted per cab.
func TestCabOffAllowlist(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	cab, app := h.firstCab(DemoIHVReportID)
	path := "/v1.0/my/analytics/driver/cabdownload?applicationId=" + app + "&cabIdHash=" + cab
	if loc := h.cabRedirect(path); !strings.HasPrefix(loc, h.srv.URL+"/blobs/cabs/") {
		t.Fatalf("switch off: Location %s", loc)
	}
	h.em.SetCabFaults(CabFaults{OffAllowlist: []string{strings.ToUpper(cab)}, OffAllowlistURL: "https://evil.example.net"})
	if loc := h.cabRedirect(path); loc != "https://evil.example.net/cabs/"+strings.ToLower(cab)+".cab?sig=off-allowlist" {
		t.Errorf("listed cab: Location %s", loc)
	}
	h.em.SetCabFaults(CabFaults{OffAllowlistRate: 1})
	if loc := h.cabRedirect(path); !strings.HasPrefix(loc, DefaultOffAllowlistURL+"/cabs/") {
		t.Errorf("rate 1: Location %s", loc)
	}
	if links, blobs := h.em.CabRequests(cab); links != 3 || blobs != 0 {
		t.Errorf("CabRequests = %d links, %d blobs; want 3, 0", links, blobs)
	}
	// A rate picks a stable share of the cabs.
	h.em.SetCabFaults(CabFaults{OffAllowlistRate: 0.5})
	picked := 0
	for i := range 400 {
		id := encodeCabID(h.em.seed, cabRef{view: viewIHV, day: 20000, index: i})
		a := h.em.offAllowlistLink(id) != ""
		if b := h.em.offAllowlistLink(id) != ""; a != b {
			t.Fatal("the rate picked a cab once but not twice")
		}
		if a {
			picked++
		}
	}
	if picked < 140 || picked > 260 {
		t.Errorf("rate 0.5 picked %d of 400", picked)
	}
}

// TestCabCorrupt: a switched cab's bytes fail the MD5 the blob reports;
// with CorruptAttempts 1 only the first download is corrupt, and a Range
// resumption follows the download it resumes.
func TestCabCorrupt(t *testing.T) {
	h := newHarness(t, Options{CabFaults: CabFaults{CorruptAttempts: 1}}, testNow)
	cab, app := h.firstCab(DemoIHVReportID)
	truth, _ := h.em.CabBytes(cab)
	sum := md5.Sum(truth)
	digest := base64.StdEncoding.EncodeToString(sum[:])
	location := h.cabRedirect("/v1.0/my/analytics/driver/cabdownload?applicationId=" + app + "&cabIdHash=" + cab)
	get := func(header ...string) []byte {
		t.Helper()
		resp, body := h.get(location, header...)
		if resp.StatusCode/100 != 2 || resp.Header.Get("x-ms-blob-content-md5") != digest {
			t.Fatalf("status %d, MD5 %q, want the true %q", resp.StatusCode, resp.Header.Get("x-ms-blob-content-md5"), digest)
		}
		return body
	}
	if !bytes.Equal(get(), truth) {
		t.Fatal("switch off: bytes differ")
	}
	h.em.SetCabFaults(CabFaults{Corrupt: []string{cab}, CorruptAttempts: 2})
	// The switch counts downloads from its setting on: the first download
	// above was before it, but counters are kept, so it is attempt 2.
	first := get()
	if bytes.Equal(first, truth) || len(first) != len(truth) {
		t.Fatal("attempt 2 of 2 corrupt: bytes are the truth")
	}
	half := len(truth) / 2
	if tail := get("Range", "bytes=10-"); !bytes.Equal(tail, first[10:]) {
		t.Error("a resumption of a corrupt download is not corrupt like it")
	}
	if got := get(); !bytes.Equal(got, truth) {
		t.Error("attempt 3 is still corrupt")
	}
	if tail := get("Range", "bytes=10-"); !bytes.Equal(tail, truth[10:]) {
		t.Error("a resumption of a clean download is corrupt")
	}
	h.em.SetCabFaults(CabFaults{Corrupt: []string{cab}})
	for range 3 {
		if got := get(); got[half] == truth[half] {
			t.Error("CorruptAttempts 0: a download is clean")
		}
	}
	if _, blobs := h.em.CabRequests(cab); blobs != 8 {
		t.Errorf("CabRequests: %d blob requests, want 8", blobs)
	}
	if err := (Options{CabFaults: CabFaults{CorruptRate: 2}}).Validate(); err == nil {
		t.Error("a rate of 2 is valid")
	}
	if err := (Options{CabFaults: CabFaults{OffAllowlistURL: "ftp://x"}}).Validate(); err == nil {
		t.Error("an ftp redirect is valid")
	}
}
