package s3faulttest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// backend records what reaches the store: each request's Host, operation
// and how much of its body arrived.
type backend struct {
	mu   sync.Mutex
	seen []seen
}

type seen struct {
	host, op string
	n        int
	bodyErr  bool
}

func startBackend(t *testing.T) (*httptest.Server, *backend) {
	b := &backend{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		b.mu.Lock()
		b.seen = append(b.seen, seen{host: r.Host, op: Operation(r), n: int(n), bodyErr: err != nil})
		b.mu.Unlock()
		w.Header().Set("ETag", `"abc"`)
		_, _ = io.WriteString(w, strings.Repeat("x", 1000))
	}))
	t.Cleanup(srv.Close)
	return srv, b
}

func (b *backend) last(t *testing.T) (seen, int) {
	t.Helper()
	// A cut upload reaches the backend after the client already saw the
	// reset; give it a moment.
	for range 100 {
		b.mu.Lock()
		n := len(b.seen)
		var s seen
		if n > 0 {
			s = b.seen[n-1]
		}
		b.mu.Unlock()
		if n > 0 {
			return s, n
		}
		time.Sleep(5 * time.Millisecond)
	}
	return seen{}, 0
}

func (b *backend) reset() {
	b.mu.Lock()
	b.seen = nil
	b.mu.Unlock()
}

func TestFaultKinds(t *testing.T) {
	store, b := startBackend(t)
	p := Start(t, store.URL, 1)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	body := bytes.Repeat([]byte("b"), 100_000)

	do := func(method, path string, body []byte) (*http.Response, []byte, error) {
		req, _ := http.NewRequest(method, p.URL+path, bytes.NewReader(body))
		if body == nil {
			req.Body = nil
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		return resp, got, err
	}

	t.Run("none", func(t *testing.T) {
		b.reset()
		p.SetRates(Rates{})
		resp, got, err := do(http.MethodPut, "/bucket/key", body)
		if err != nil || resp.StatusCode != 200 || len(got) != 1000 {
			t.Fatalf("forwarded PUT: %v, %v, %d bytes", resp, err, len(got))
		}
		s, _ := b.last(t)
		if s.host != strings.TrimPrefix(p.URL, "http://") || s.op != "PutObject" || s.n != len(body) {
			t.Errorf("backend saw %+v; want the proxy's Host and the whole body", s)
		}
	})
	for _, c := range []struct {
		kind Kind
		code string
	}{{InternalError, "InternalError"}, {SlowDown, "SlowDown"}} {
		t.Run(c.kind.String(), func(t *testing.T) {
			b.reset()
			p.SetRates(rates(c.kind))
			resp, got, err := do(http.MethodPut, "/bucket/key", body)
			if err != nil || !strings.Contains(string(got), "<Code>"+c.code+"</Code>") || resp.StatusCode < 500 {
				t.Errorf("got %v, %v, %q", resp, err, got)
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if len(b.seen) != 0 {
				t.Errorf("the store saw the request")
			}
		})
	}
	t.Run("Reset", func(t *testing.T) {
		b.reset()
		p.SetRates(rates(Reset))
		if _, _, err := do(http.MethodGet, "/bucket/key", nil); err == nil {
			t.Error("no error from a reset connection")
		}
		time.Sleep(20 * time.Millisecond)
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.seen) != 0 {
			t.Errorf("the store saw the request")
		}
	})
	t.Run("LostResponse", func(t *testing.T) {
		b.reset()
		p.SetRates(rates(LostResponse))
		if _, _, err := do(http.MethodPut, "/bucket/key", body); err == nil {
			t.Error("no error from a lost response")
		}
		if s, n := b.last(t); n != 1 || s.n != len(body) {
			t.Errorf("the store saw %d requests, last %+v; want the whole request once", n, s)
		}
	})
	t.Run("CutUpload", func(t *testing.T) {
		b.reset()
		p.SetRates(rates(Cut))
		if _, _, err := do(http.MethodPut, "/bucket/key?partNumber=2&uploadId=u", body); err == nil {
			t.Error("no error from a cut upload")
		}
		if s, n := b.last(t); n != 1 || s.op != "UploadPart" || !s.bodyErr || s.n == 0 || s.n >= len(body) {
			t.Errorf("the store saw %d requests, last %+v; want one part cut midway", n, s)
		}
	})
	t.Run("CutDownload", func(t *testing.T) {
		b.reset()
		p.SetRates(rates(Cut))
		resp, got, err := do(http.MethodGet, "/bucket/key", nil)
		if err == nil || resp == nil || resp.StatusCode != 200 || len(got) >= 1000 {
			t.Errorf("got %v, %v, %d bytes; want a 200 whose body breaks off", resp, err, len(got))
		}
	})
	t.Run("Filter", func(t *testing.T) {
		b.reset()
		p.SetRates(rates(InternalError))
		p.SetFilter(func(r *http.Request) bool { return Operation(r) == "UploadPart" })
		defer p.SetFilter(nil)
		if resp, _, err := do(http.MethodPut, "/bucket/key", body); err != nil || resp.StatusCode != 200 {
			t.Errorf("filtered-out PutObject: %v, %v", resp, err)
		}
	})

	c := p.Counts()
	if c.Requests != 8 || c.InternalError != 1 || c.SlowDown != 1 || c.Reset != 1 || c.LostResponse != 1 || c.Cut != 2 || len(c.Unfired()) != 0 {
		t.Errorf("counts %v", c)
	}
}

func rates(k Kind) Rates {
	var r Rates
	switch k {
	case InternalError:
		r.InternalError = 1
	case SlowDown:
		r.SlowDown = 1
	case Reset:
		r.Reset = 1
	case LostResponse:
		r.LostResponse = 1
	case Cut:
		r.Cut = 1
	}
	return r
}

func TestOperation(t *testing.T) {
	for _, c := range []struct{ method, target, copySrc, want string }{
		{"PUT", "/b/k?x-id=PutObject", "", "PutObject"},
		{"PUT", "/b/k?x-id=CopyObject", "b/k", "CopyObject"},
		{"PUT", "/b/k?partNumber=1&uploadId=u&x-id=UploadPart", "", "UploadPart"},
		{"POST", "/b/k?uploads", "", "CreateMultipartUpload"},
		{"POST", "/b/k?uploadId=u", "", "CompleteMultipartUpload"},
		{"DELETE", "/b/k?uploadId=u", "", "AbortMultipartUpload"},
		{"POST", "/b?delete", "", "DeleteObjects"},
		{"DELETE", "/b/k", "", "DeleteObject"},
		{"GET", "/b/k", "", "GetObject"},
		{"HEAD", "/b/k", "", "HeadObject"},
		{"GET", "/b?list-type=2&prefix=p", "", "ListObjectsV2"},
		{"GET", "/b/?uploads&prefix=k", "", "ListMultipartUploads"},
		{"PUT", "/b", "", "PUT other"},
	} {
		r := httptest.NewRequest(c.method, c.target, nil)
		if c.copySrc != "" {
			r.Header.Set("X-Amz-Copy-Source", c.copySrc)
		}
		if got := Operation(r); got != c.want {
			t.Errorf("Operation(%s %s) = %s, want %s", c.method, c.target, got, c.want)
		}
	}
}

func TestRatesValidate(t *testing.T) {
	if err := (Rates{InternalError: 0.6, Cut: 0.6}).validate(); err == nil {
		t.Error("rates summing to 1.2 accepted")
	}
	if err := (Rates{Reset: -0.1}).validate(); err == nil {
		t.Error("a negative rate accepted")
	}
	if err := (Rates{InternalError: 0.2, SlowDown: 0.2, Reset: 0.2, LostResponse: 0.2, Cut: 0.2}).validate(); err != nil {
		t.Error(err)
	}
}
