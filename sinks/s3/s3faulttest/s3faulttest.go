// Package s3faulttest is a fault-injecting HTTP reverse proxy for tests of
// code that talks to an S3-compatible store (usually a miniotest server).
//
// The proxy sits on the network between the SDK and the store: point the
// client's endpoint at Proxy.URL instead of the store's. Requests are
// forwarded unchanged, Host header included, so SigV4 signatures computed
// for the proxy's address verify at the store without re-signing.
//
// Per request, with configurable probabilities drawn from a seeded random
// source, the proxy instead injects one fault:
//
//	InternalError  answers 500 with an S3 XML InternalError body; the store never sees the request
//	SlowDown       answers 503 with an S3 XML SlowDown body; the store never sees the request
//	Reset          resets the client's connection (TCP RST) before forwarding anything
//	LostResponse   forwards the whole request, lets the store act on it, then resets the client's
//	               connection instead of relaying the answer (the write happened; the client cannot know)
//	Cut            a request with a body (PutObject, UploadPart, CompleteMultipartUpload…) is forwarded
//	               only in part (10-90%), then both connections are reset, so the upload is cut midway;
//	               for a request without a body the response is relayed in part (status, headers and
//	               10-90% of the body) before the client's connection is reset
//
// Rates, an optional filter (SetFilter, with Operation to name a request's
// S3 operation) and the counters are safe for concurrent use and may change
// while requests are in flight. Typical use:
//
//	srv := miniotest.Shared(t)
//	p := s3faulttest.Start(t, srv.Endpoint, 1)
//	cfg := srv.Config(bucket, "")
//	cfg.Endpoint = p.URL
//	p.SetRates(s3faulttest.Rates{InternalError: 0.05, SlowDown: 0.05, Reset: 0.05, LostResponse: 0.05, Cut: 0.05})
//	... exercise the store ...
//	if missing := p.Counts().Unfired(); len(missing) > 0 { t.Errorf("never injected: %v", missing) }
package s3faulttest

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Kind is a kind of injected fault.
type Kind int

// The fault kinds; see the package documentation.
const (
	InternalError Kind = iota
	SlowDown
	Reset
	LostResponse
	Cut
	numKinds

	noFault Kind = -1
)

var kindNames = [numKinds]string{"InternalError", "SlowDown", "Reset", "LostResponse", "Cut"}

func (k Kind) String() string {
	if k < 0 || k >= numKinds {
		return "Kind(" + strconv.Itoa(int(k)) + ")"
	}
	return kindNames[k]
}

// Rates are the per-request probabilities of each fault kind, each in
// [0, 1], summing to at most 1. The zero value injects nothing.
type Rates struct {
	InternalError float64
	SlowDown      float64
	Reset         float64
	LostResponse  float64
	Cut           float64
}

func (r Rates) list() [numKinds]float64 {
	return [numKinds]float64{r.InternalError, r.SlowDown, r.Reset, r.LostResponse, r.Cut}
}

func (r Rates) validate() error {
	sum := 0.0
	for k, p := range r.list() {
		if p < 0 || p > 1 {
			return fmt.Errorf("s3faulttest: rate of %s is %v, outside [0, 1]", Kind(k), p)
		}
		sum += p
	}
	if sum > 1 {
		return fmt.Errorf("s3faulttest: rates sum to %v, more than 1", sum)
	}
	return nil
}

// Counts are the requests the proxy received and the faults it injected,
// by kind.
type Counts struct {
	Requests      int64
	InternalError int64
	SlowDown      int64
	Reset         int64
	LostResponse  int64
	Cut           int64
}

// Faults is the total of injected faults.
func (c Counts) Faults() int64 {
	return c.InternalError + c.SlowDown + c.Reset + c.LostResponse + c.Cut
}

// Unfired names the kinds that were never injected.
func (c Counts) Unfired() []string {
	var out []string
	for k, n := range [numKinds]int64{c.InternalError, c.SlowDown, c.Reset, c.LostResponse, c.Cut} {
		if n == 0 {
			out = append(out, Kind(k).String())
		}
	}
	return out
}

func (c Counts) String() string {
	return fmt.Sprintf("%d requests, %d faults (InternalError %d, SlowDown %d, Reset %d, LostResponse %d, Cut %d)",
		c.Requests, c.Faults(), c.InternalError, c.SlowDown, c.Reset, c.LostResponse, c.Cut)
}

// Proxy is a running fault-injecting reverse proxy. Its methods are safe
// for concurrent use.
type Proxy struct {
	// URL is the proxy's base URL ("http://127.0.0.1:port"): the endpoint
	// to give the client under test.
	URL string

	target   *url.URL
	srv      *httptest.Server
	upstream *http.Transport
	forward  *httputil.ReverseProxy

	mu     sync.Mutex // guards rng, rates and filter
	rng    *rand.Rand
	rates  [numKinds]float64
	filter func(*http.Request) bool

	requests atomic.Int64
	counts   [numKinds]atomic.Int64
}

// New starts a proxy on 127.0.0.1 in front of target (a store's base URL,
// such as miniotest's Server.Endpoint), injecting nothing until SetRates.
// seed makes the sequence of fault decisions reproducible for a given
// sequence of requests. Close stops it.
func New(target string, seed uint64) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("s3faulttest: target %q is not an http(s) base URL", target)
	}
	p := &Proxy{
		target: u,
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		upstream: &http.Transport{
			// No environment proxy and no transparent gzip: forward as is.
			Proxy:               nil,
			DisableCompression:  true,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	p.forward = &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { p.rewrite(pr.Out, pr.In) },
		Transport: p.upstream,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// The store was unreachable or the client went away: a plain 502.
			http.Error(w, "s3faulttest: upstream: "+err.Error(), http.StatusBadGateway)
		},
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	return p, nil
}

// Start is New for tests: it fails t on error and closes the proxy when t
// finishes.
func Start(t testing.TB, target string, seed uint64) *Proxy {
	t.Helper()
	p, err := New(target, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// Close stops the proxy. Connections it hijacked are already closed.
func (p *Proxy) Close() {
	p.srv.Close()
	p.upstream.CloseIdleConnections()
}

// SetRates replaces the fault probabilities, for requests that arrive from
// now on. It panics if rates are invalid (a test's mistake).
func (p *Proxy) SetRates(r Rates) {
	if err := r.validate(); err != nil {
		panic(err)
	}
	p.mu.Lock()
	p.rates = r.list()
	p.mu.Unlock()
}

// SetFilter limits faults to the requests for which f returns true; the
// others are forwarded untouched. nil, the default, means every request.
// f is called once per request, serially, so it may keep state (such as
// "only the first two CompleteMultipartUpload requests").
func (p *Proxy) SetFilter(f func(r *http.Request) bool) {
	p.mu.Lock()
	p.filter = f
	p.mu.Unlock()
}

// Counts returns the requests seen and faults injected so far.
func (p *Proxy) Counts() Counts {
	return Counts{
		Requests:      p.requests.Load(),
		InternalError: p.counts[InternalError].Load(),
		SlowDown:      p.counts[SlowDown].Load(),
		Reset:         p.counts[Reset].Load(),
		LostResponse:  p.counts[LostResponse].Load(),
		Cut:           p.counts[Cut].Load(),
	}
}

// pick draws the fault for r, or noFault, and a fraction in (0, 1) for
// Cut.
func (p *Proxy) pick(r *http.Request) (Kind, float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.filter != nil && !p.filter(r) {
		return noFault, 0
	}
	x, frac := p.rng.Float64(), 0.1+0.8*p.rng.Float64()
	for k, rate := range p.rates {
		if x < rate {
			return Kind(k), frac
		}
		x -= rate
	}
	return noFault, frac
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	kind, frac := p.pick(r)
	if kind != noFault {
		p.counts[kind].Add(1)
	}
	switch kind {
	case InternalError:
		writeS3Error(w, r, http.StatusInternalServerError, "InternalError",
			"We encountered an internal error, please try again. (injected by s3faulttest)")
	case SlowDown:
		writeS3Error(w, r, http.StatusServiceUnavailable, "SlowDown",
			"Please reduce your request rate. (injected by s3faulttest)")
	case Reset:
		resetClient(w)
	case LostResponse:
		p.lostResponse(w, r)
	case Cut:
		if r.ContentLength > 1 {
			p.cutRequest(w, r, frac)
		} else {
			p.cutResponse(w, r, frac)
		}
	default:
		p.forward.ServeHTTP(w, r)
	}
}

// rewrite points an outbound request at the target, keeping the client's
// Host header, path and query exactly (the signature covers them).
func (p *Proxy) rewrite(out, in *http.Request) {
	out.URL.Scheme = p.target.Scheme
	out.URL.Host = p.target.Host
	out.Host = in.Host
	// The proxy's own server answers 100-continue when the body is read;
	// Expect is not signed (SigV4 ignores it).
	out.Header.Del("Expect")
}

// outbound builds the request to forward for in, for the fault paths that
// do not use the ReverseProxy.
func (p *Proxy) outbound(in *http.Request) *http.Request {
	out := in.Clone(in.Context())
	out.RequestURI = ""
	if in.ContentLength == 0 {
		out.Body = nil
	}
	p.rewrite(out, in)
	return out
}

// lostResponse forwards the request whole, lets the store finish it (the
// response body is drained), and resets the client's connection instead
// of answering.
func (p *Proxy) lostResponse(w http.ResponseWriter, r *http.Request) {
	resp, err := p.upstream.RoundTrip(p.outbound(r))
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resetClient(w)
}

// cutResponse forwards the request, relays the status, headers and the
// first frac of the response body, then resets the client's connection. A
// response without a body is not relayed at all.
func (p *Proxy) cutResponse(w http.ResponseWriter, r *http.Request, frac float64) {
	resp, err := p.upstream.RoundTrip(p.outbound(r))
	if err != nil {
		resetClient(w)
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(body) < 2 || r.Method == http.MethodHead {
		resetClient(w)
		return
	}
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	h.Del("Transfer-Encoding")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body[:max(1, int(float64(len(body))*frac))])
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	// Let the client take in the status and headers before the reset,
	// which discards whatever it has not read yet: the break then comes
	// mid-body, after the client's call has returned.
	time.Sleep(20 * time.Millisecond)
	resetClient(w)
}

// cutRequest sends the request line, the headers and the first frac of a
// body of known length to the store over a connection of its own, then
// resets both that connection and the client's: the store sees an upload
// that stops midway.
func (p *Proxy) cutRequest(w http.ResponseWriter, r *http.Request, frac float64) {
	n := max(1, int64(float64(r.ContentLength)*frac))
	up, err := net.DialTimeout("tcp", p.target.Host, 5*time.Second)
	if err != nil {
		resetClient(w)
		return
	}
	bw := bufio.NewWriter(up)
	h := r.Header.Clone()
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	h.Del("Expect")
	fmt.Fprintf(bw, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", r.Method, r.URL.RequestURI(), r.Host, r.ContentLength)
	err = h.Write(bw)
	if err == nil {
		_, err = bw.WriteString("\r\n")
	}
	if err == nil {
		_, err = io.CopyN(bw, r.Body, n)
	}
	if err == nil {
		err = bw.Flush()
	}
	_ = err // the connection is reset either way
	// Let the store read what was sent before the reset discards it.
	time.Sleep(10 * time.Millisecond)
	abort(up)
	resetClient(w)
}

// resetClient hijacks the client's connection and resets it (RST), after
// flushing whatever was written to w.
func resetClient(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("s3faulttest: the response writer cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	abort(conn)
}

// abort closes a TCP connection with a reset instead of an orderly FIN.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// writeS3Error answers with an S3 XML error document. The store never
// sees the request. A body sent without "Expect: 100-continue" is read
// and dropped first: answering before it, then closing, could reset the
// connection while the client is still sending, and the client would see
// a reset instead of the error. A client that expects 100-continue gets
// the error before it sends the body, as from S3.
func writeS3Error(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	if r.Header.Get("Expect") == "" {
		_, _ = io.Copy(io.Discard, r.Body)
	}
	body := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<Error><Code>` + code + `</Code><Message>` + message + `</Message>` +
		`<Resource>` + html.EscapeString(r.URL.Path) + `</Resource>` +
		`<RequestId>s3faulttest</RequestId><HostId>s3faulttest</HostId></Error>`
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Amz-Request-Id", "s3faulttest")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// Operation names the S3 API operation of a request from its method, query
// and headers, for filters: "PutObject", "CopyObject", "UploadPart",
// "CreateMultipartUpload", "CompleteMultipartUpload",
// "AbortMultipartUpload", "DeleteObjects", "DeleteObject", "GetObject",
// "HeadObject", "ListObjectsV2", "ListMultipartUploads", or
// "METHOD other" for anything else.
func Operation(r *http.Request) string {
	q := r.URL.Query()
	has := func(k string) bool { _, ok := q[k]; return ok }
	// Path-style: "/bucket" or "/bucket/" addresses the bucket, more is a key.
	onKey := strings.Contains(strings.TrimPrefix(r.URL.Path, "/"), "/") &&
		!strings.HasSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch r.Method {
	case http.MethodPut:
		switch {
		case has("partNumber") && has("uploadId"):
			return "UploadPart"
		case r.Header.Get("X-Amz-Copy-Source") != "":
			return "CopyObject"
		case onKey:
			return "PutObject"
		}
	case http.MethodPost:
		switch {
		case has("uploads"):
			return "CreateMultipartUpload"
		case has("uploadId"):
			return "CompleteMultipartUpload"
		case has("delete"):
			return "DeleteObjects"
		}
	case http.MethodDelete:
		switch {
		case has("uploadId"):
			return "AbortMultipartUpload"
		case onKey:
			return "DeleteObject"
		}
	case http.MethodGet:
		switch {
		case has("uploads"):
			return "ListMultipartUploads"
		case q.Get("list-type") == "2":
			return "ListObjectsV2"
		case onKey:
			return "GetObject"
		}
	case http.MethodHead:
		if onKey {
			return "HeadObject"
		}
	}
	return r.Method + " other"
}
