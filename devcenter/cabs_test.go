package devcenter_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/devcenter/devcentertest"
	"github.com/hdc-export/hdc-export/devcenter/emulator"
	"github.com/hdc-export/hdc-export/internal/retry"
)

func TestHostList(t *testing.T) {
	l, err := devcenter.ParseHostList([]string{".blob.core.windows.net", "Exact.Example.com", "http://127.0.0.1:5000", "https://[::1]:8443"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		link string
		ok   bool
	}{
		{"https://acct.blob.core.windows.net/c/x.cab?sig=1", true},
		{"https://ACCT.Blob.Core.Windows.Net/c/x.cab", true},
		{"https://acct.blob.core.windows.net:443/c", true},
		{"https://a.b.blob.core.windows.net/c", true},
		{"http://acct.blob.core.windows.net/c", false},       // https only
		{"https://acct.blob.core.windows.net:8443/c", false}, // default port only
		{"https://blob.core.windows.net/c", false},           // the suffix itself is no host
		{"https://evilblob.core.windows.net/c", false},
		{"https://acct.blob.core.windows.net.evil.com/c", false},
		{"https://acct.blob.core.windows.net@evil.com/c", false},
		{"https://user:pw@acct.blob.core.windows.net/c", false},
		{"https://exact.example.com/x", true},
		{"https://sub.exact.example.com/x", false},
		{"http://127.0.0.1:5000/blobs/cabs/x.cab", true},
		{"http://127.0.0.1:5001/blobs/cabs/x.cab", false},
		{"https://127.0.0.1:5000/x", false},
		{"http://localhost:5000/x", false},
		{"https://[::1]:8443/x", true},
		{"http://169.254.169.254/latest/meta-data", false},
		{"file:///etc/passwd", false},
	} {
		u, err := url.Parse(tc.link)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.Allows(u); got != tc.ok {
			t.Errorf("Allows(%s) = %v, want %v", tc.link, got, tc.ok)
		}
	}
	var none *devcenter.HostList
	if none.Allows(&url.URL{Scheme: "https", Host: "x.blob.core.windows.net"}) {
		t.Error("a nil list allows")
	}
}

func TestParseHostListErrors(t *testing.T) {
	for _, spec := range []string{"", ".net", ".", "..blob.core.windows.net", "*.blob.core.windows.net", "ftp://host",
		"https://host/path", "https://u@host", "host:0", "host:99999", "evil.com/x", "a b"} {
		if _, err := devcenter.ParseHostList([]string{spec}); err == nil {
			t.Errorf("ParseHostList(%q) accepted", spec)
		}
	}
	_, err := devcenter.ParseHostList([]string{"ok.example.com", ".net"})
	if err == nil || !strings.Contains(err.Error(), "[1]") {
		t.Errorf("error %v does not name the entry", err)
	}
}

// cabFromReport returns one CabIdHash and ApplicationId of the newest
// finished IHV run.
func cabFromReport(t *testing.T, c *devcenter.Client, now time.Time) (hash, app string) {
	t.Helper()
	ctx := context.Background()
	runs, err := c.ReportData(ctx, emulator.DemoIHVReportID, now.AddDate(0, 0, -10), now)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].Status != devcenter.StatusCompleted {
			continue
		}
		body, err := c.Download(ctx, runs[i].Location)
		if err != nil {
			t.Fatal(err)
		}
		defer body.Close()
		cr, _ := devcenter.NewReportReader(body)
		header, _ := cr.Read()
		hi, ai := slices.Index(header, "CabIdHash"), slices.Index(header, "ApplicationId")
		for {
			rec, err := cr.Read()
			if err != nil {
				t.Fatal(err)
			}
			if rec[hi] != "" {
				return rec[hi], rec[ai]
			}
		}
	}
	t.Fatal("no finished run")
	return "", ""
}

// TestOpenCabFromEmulator: the whole cab and a resumed tail match the
// emulator's bytes, with the blob's size and MD5; no bearer token reaches
// the blob host.
func TestOpenCabFromEmulator(t *testing.T) {
	clock := devcentertest.NewClock(t0)
	em := emulator.New(emulator.Options{Now: clock.Now, RowsPerDay: 12, CabSizeMin: 5000, CabSizeMax: 9000})
	var authed, blobs atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/blobs/cabs/") {
			blobs.Add(1)
			if r.Header.Get("Authorization") != "" {
				authed.Add(1)
			}
		}
		em.Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := devcentertest.NewClient(t, srv.URL)
	allow, err := devcenter.ParseHostList([]string{srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hash, app := cabFromReport(t, c, clock.Now())
	truth, ok := em.CabBytes(hash)
	if !ok {
		t.Fatal("the emulator does not know its own cab")
	}
	link, err := c.CabLink(ctx, devcenter.CabDriver, app, hash)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 1, 4000, int64(len(truth)) - 1} {
		body, meta, err := c.OpenCab(ctx, link, off, allow)
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		got, err := io.ReadAll(body)
		body.Close()
		sum := md5.Sum(truth)
		if err != nil || !bytes.Equal(got, truth[off:]) || meta.Size != int64(len(truth)) || !bytes.Equal(meta.MD5, sum[:]) {
			t.Errorf("offset %d: %d bytes (err %v), meta %+v; want %d bytes of %d", off, len(got), err, meta, len(truth)-int(off), len(truth))
		}
	}
	if authed.Load() != 0 || blobs.Load() == 0 {
		t.Errorf("%d of %d blob requests carried the bearer token", authed.Load(), blobs.Load())
	}
	// Off the allowlist: nothing is sent.
	other, _ := devcenter.ParseHostList(devcenter.DefaultCabHosts)
	before := blobs.Load()
	if _, _, err := c.OpenCab(ctx, link, 0, other); !errors.Is(err, devcenter.ErrHostNotAllowed) {
		t.Errorf("off-allowlist err = %v", err)
	}
	if blobs.Load() != before {
		t.Error("a request reached a host off the allowlist")
	}
	// Past its expiration the cab is gone.
	clock.Advance(40 * 24 * time.Hour)
	if _, _, err := c.OpenCab(ctx, link, 0, allow); err == nil {
		t.Error("an expired cab opened")
	}
}

// TestOpenCabStatuses: how blob answers map to errors; errors never show
// the link's path or signature.
func TestOpenCabStatuses(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 100)
	sum := md5.Sum(body)
	var redirected atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { redirected.Add(1) }))
	defer target.Close()
	var flaky atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/403":
			http.Error(w, "<Error><Code>AuthenticationFailed</Code></Error>", http.StatusForbidden)
		case "/404":
			http.Error(w, "gone", http.StatusNotFound)
		case "/302":
			http.Redirect(w, r, target.URL+"/x", http.StatusFound)
		case "/badmd5":
			w.Header().Set("x-ms-blob-content-md5", "not base64!")
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
		case "/norange": // ignores Range
			w.Header().Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
			w.Write(body)
		case "/chunked":
			w.(http.Flusher).Flush()
			w.Write(body)
		case "/flaky":
			if flaky.Add(1) < 3 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
		case "/badrange":
			w.Header().Set("Content-Range", "bytes 0-9/1000")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(body[:10])
		}
	}))
	defer srv.Close()
	c := devcentertest.NewClient(t, srv.URL)
	allow, _ := devcenter.ParseHostList([]string{srv.URL})
	ctx := context.Background()
	open := func(path string, off int64) ([]byte, devcenter.CabMeta, error) {
		rc, meta, err := c.OpenCab(ctx, srv.URL+path+"?sig=SECRET", off, allow)
		if err != nil {
			if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), path) {
				t.Errorf("%s: error shows the link: %v", path, err)
			}
			return nil, meta, err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		return b, meta, err
	}
	// An expired link wants a fresh one, not the end of the caller's
	// retries; a missing blob is permanent.
	var ae *devcenter.APIError
	if _, _, err := open("/403", 0); !errors.Is(err, devcenter.ErrLinkExpired) || !errors.As(err, &ae) || ae.Status != 403 || retry.Permanent(err) {
		t.Errorf("403: %v (permanent %v)", err, retry.Permanent(err))
	}
	if _, _, err := open("/404", 0); !errors.Is(err, devcenter.ErrNotFound) || !retry.Permanent(err) {
		t.Errorf("404: %v (permanent %v)", err, retry.Permanent(err))
	}
	if _, _, err := open("/302", 0); err == nil || redirected.Load() != 0 {
		t.Errorf("302: err %v, redirect followed %d times", err, redirected.Load())
	}
	if _, _, err := open("/badmd5", 0); err == nil {
		t.Error("a malformed MD5 header was accepted")
	}
	if b, meta, err := open("/norange", 300); err != nil || !bytes.Equal(b, body[300:]) || meta.Size != 1000 || !bytes.Equal(meta.MD5, sum[:]) {
		t.Errorf("a 200 to a Range request: %d bytes, %+v, %v", len(b), meta, err)
	}
	if _, _, err := open("/chunked", 0); err == nil {
		t.Error("a blob without Content-Length was accepted")
	}
	if b, _, err := open("/flaky", 10); err != nil || !bytes.Equal(b, body[10:]) {
		t.Errorf("503s then 206: %d bytes, %v", len(b), err)
	}
	if _, _, err := open("/badrange", 500); err == nil {
		t.Error("a Content-Range for other bytes was accepted")
	}
}
