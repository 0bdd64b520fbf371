package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testNow is the fake clock's start: a Friday at 10:30 UTC, after the demo
// schedules' 02:00 run.
var testNow = time.Date(2024, 3, 15, 10, 30, 0, 0, time.UTC)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// harness is an emulator behind a real HTTP server, with a fake clock and a
// client that does not follow redirects.
type harness struct {
	t      *testing.T
	em     *Emulator
	srv    *httptest.Server
	clock  *fakeClock
	client *http.Client
	token  string
}

// newHarness starts an emulator with opts (its clock replaced by a fake one
// set to at) and obtains an access token.
func newHarness(t *testing.T, opts Options, at time.Time) *harness {
	t.Helper()
	clock := &fakeClock{now: at}
	opts.Now = clock.Now
	em := New(opts)
	srv := httptest.NewServer(em.Handler())
	t.Cleanup(srv.Close)
	h := &harness{
		t: t, em: em, srv: srv, clock: clock,
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	h.token = h.newToken()
	return h
}

// newToken obtains an access token with the emulator's credentials.
func (h *harness) newToken() string {
	h.t.Helper()
	o := h.em.opts
	status, body := h.postForm("/"+o.TenantID+"/oauth2/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {o.ClientID},
		"client_secret": {o.ClientSecret}, "resource": {devCenterResource},
	})
	if status != http.StatusOK {
		h.t.Fatalf("token: status %d: %s", status, body)
	}
	var tok tokenResponse
	if err := json.Unmarshal(body, &tok); err != nil {
		h.t.Fatalf("token: %v", err)
	}
	return tok.AccessToken
}

// postForm posts a form to path without authentication.
func (h *harness) postForm(path string, form url.Values) (int, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp := h.send(req)
	return resp.StatusCode, readAll(h.t, resp)
}

// call sends method to path (relative to the server, or absolute) with the
// harness's bearer token and body (JSON-encoded unless a string or nil).
func (h *harness) call(method, path string, body any) (*http.Response, []byte) {
	h.t.Helper()
	return h.callWithToken(h.token, method, path, body)
}

func (h *harness) callWithToken(token, method, path string, body any) (*http.Response, []byte) {
	h.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	if !strings.HasPrefix(path, "http") {
		path = h.srv.URL + path
	}
	req, err := http.NewRequest(method, path, r)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp := h.send(req)
	return resp, readAll(h.t, resp)
}

// get fetches an absolute URL without authentication.
func (h *harness) get(rawURL string, header ...string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp := h.send(req)
	return resp, readAll(h.t, resp)
}

func (h *harness) send(req *http.Request) *http.Response {
	h.t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return resp
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return b
}

// testEnvelope is the decoded async response envelope.
type testEnvelope struct {
	Data   json.RawMessage `json:"data"`
	Errors []errorItem     `json:"errors"`
}

// api calls an async endpoint, asserts the response status and decodes the
// envelope.
func (h *harness) api(status int, method, path string, body any) testEnvelope {
	h.t.Helper()
	resp, raw := h.call(method, path, body)
	if resp.StatusCode != status {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, status, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		h.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	var env testEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		h.t.Fatalf("decoding envelope %s: %v", raw, err)
	}
	return env
}

// apiError calls an async endpoint and asserts an error envelope with
// status and code whose message contains want.
func (h *harness) apiError(status int, code, want, method, path string, body any) {
	h.t.Helper()
	env := h.api(status, method, path, body)
	if string(env.Data) != "null" || len(env.Errors) != 1 {
		h.t.Fatalf("%s %s: want an error envelope, got data %s errors %+v", method, path, env.Data, env.Errors)
	}
	if env.Errors[0].Code != code || !strings.Contains(env.Errors[0].Message, want) {
		h.t.Fatalf("%s %s: error %+v, want code %s and a message containing %q", method, path, env.Errors[0], code, want)
	}
}

// runs fetches reportdata for report id with the query string q.
func (h *harness) runs(id int, q string) []runView {
	h.t.Helper()
	path := "/analytics/driver/reportdata/" + strconv.Itoa(id)
	if q != "" {
		path += "?" + q
	}
	env := h.api(http.StatusOK, http.MethodGet, path, nil)
	var runs []runView
	if err := json.Unmarshal(env.Data, &runs); err != nil {
		h.t.Fatalf("decoding runs: %v", err)
	}
	return runs
}

// newestLink returns the download link of the newest finished run of report id.
func (h *harness) newestLink(id int) string {
	h.t.Helper()
	runs := h.runs(id, "")
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].ReportLocation != "" {
			return runs[i].ReportLocation
		}
	}
	h.t.Fatalf("report %d has no finished run: %+v", id, runs)
	return ""
}
