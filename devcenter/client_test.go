package devcenter_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func TestTemplatesAndSchedules(t *testing.T) {
	clock := devcentertest.NewClock(t0)
	_, c := devcentertest.Start(t, emulator.Options{Now: clock.Now})
	ctx := context.Background()

	tpls, err := c.ListTemplates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tpls) != 2 || tpls[0].Def.View != "IHVDriver" || len(tpls[0].Def.Projection) != 30 || tpls[0].Def.DateRange.ReportPeriod != "Last7Days" {
		t.Fatalf("demo templates = %+v", tpls)
	}
	limit := 10
	def := devcenter.TemplateDef{
		View: "IHVDriver", Projection: []string{"FailureDate", "DriverName", "EventCount"},
		DateRange: devcenter.DateRange{ReportPeriod: "Last3Days"}, Limit: &limit,
		Condition: []byte(`{"and":[{"attribute":"Market","operator":"eq","value":"US"}],"or":[]}`),
	}
	id, err := c.CreateTemplate(ctx, def)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetTemplate(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Def.Canonical() != def.Canonical() {
		t.Errorf("template round trip:\n got %s\nwant %s", got.Def.Canonical(), def.Canonical())
	}
	def.Projection = append(def.Projection, "Market")
	if err := c.EditTemplate(ctx, id, def); err != nil {
		t.Fatal(err)
	}
	if got, _ = c.GetTemplate(ctx, id); len(got.Def.Projection) != 4 {
		t.Errorf("edit not applied: %v", got.Def.Projection)
	}
	if _, err := c.GetTemplate(ctx, 999); !errors.Is(err, devcenter.ErrNotFound) {
		t.Errorf("missing template err = %v", err)
	}
	bad := def
	bad.View = "NoSuchView"
	_, err = c.CreateTemplate(ctx, bad)
	var ae *devcenter.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(err.Error(), "reporttemplate") {
		t.Errorf("bad template err = %v", err)
	}

	rid, err := c.ScheduleReport(ctx, id, devcenter.Schedule{Start: t0.Add(time.Hour), Interval: 12, Recurrence: 4}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PauseReport(ctx, rid); err != nil {
		t.Fatal(err)
	}
	reps, err := c.ListReports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(reps, func(r devcenter.Report) bool { return r.ID == rid })
	if i < 0 || reps[i].Active || reps[i].TemplateID != id || reps[i].Schedule.Interval != 12 || !reps[i].Schedule.Start.Equal(t0.Add(time.Hour)) {
		t.Fatalf("scheduled report = %+v", reps)
	}
	if err := c.ResumeReport(ctx, rid); err != nil {
		t.Fatal(err)
	}
	if err := c.EditReport(ctx, rid, id, devcenter.Schedule{Start: t0, Interval: 24, Recurrence: 2}); err != nil {
		t.Fatal(err)
	}
	reps, _ = c.ListReports(ctx)
	i = slices.IndexFunc(reps, func(r devcenter.Report) bool { return r.ID == rid })
	if !reps[i].Active || reps[i].Schedule.Interval != 24 {
		t.Errorf("after resume+edit: %+v", reps[i])
	}
}

func TestReportDataAndDownloadVariants(t *testing.T) {
	for _, opts := range []emulator.Options{
		{},
		{Gzip: true, Delimiter: ',', StatusSuccess: true, DateFormat: "mdy"},
	} {
		clock := devcentertest.NewClock(t0)
		opts.Now = clock.Now
		_, c := devcentertest.Start(t, opts)
		ctx := context.Background()
		runs, err := c.ReportData(ctx, emulator.DemoOEMReportID, t0.AddDate(0, 0, -90), t0)
		if err != nil {
			t.Fatal(err)
		}
		var done []devcenter.Run
		for i, r := range runs {
			if i > 0 && !r.Time.After(runs[i-1].Time) {
				t.Fatal("runs not in time order")
			}
			if r.Status == devcenter.StatusCompleted {
				done = append(done, r)
			}
		}
		if len(done) < len(runs)/2 {
			t.Fatalf("%d of %d runs completed (status parsing?)", len(done), len(runs))
		}
		body, err := c.Download(ctx, done[len(done)-1].Location)
		if err != nil {
			t.Fatal(err)
		}
		cr, err := devcenter.NewReportReader(body)
		if err != nil {
			t.Fatal(err)
		}
		header, err := cr.Read()
		if err != nil || !slices.Equal(header, emulator.OEMColumns) {
			t.Fatalf("header = %v, %v", header, err)
		}
		rows := 0
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				break
			}
			if err != nil || len(rec) != len(header) {
				t.Fatalf("row %d: %d fields, %v", rows, len(rec), err)
			}
			rows++
		}
		body.Close()
		if rows == 0 {
			t.Fatal("no rows")
		}

		// Links expire after 12 hours; a fresh ReportData gives a new one.
		clock.Advance(13 * time.Hour)
		if _, err := c.Download(ctx, done[0].Location); !errors.Is(err, devcenter.ErrLinkExpired) || retry.Permanent(err) {
			// Not permanent: a fresh link cures it, so a retry of the
			// caller's (ingest again, ask CabLink again) must not stop.
			t.Errorf("expired link err = %v (permanent %v)", err, retry.Permanent(err))
		} else if strings.Contains(err.Error(), "sig=") {
			t.Errorf("error leaks the link signature: %v", err)
		}
	}
}

func TestTokenRefreshOn401(t *testing.T) {
	clock := devcentertest.NewClock(t0)
	srv, c := devcentertest.Start(t, emulator.Options{Now: clock.Now})
	var tokens atomic.Int32
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/oauth2/token") {
			tokens.Add(1)
		}
		proxy(srv.URL, w, r)
	}))
	defer counting.Close()
	c = devcentertest.NewClient(t, counting.URL)
	ctx := context.Background()
	for range 3 {
		if _, err := c.ListReports(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := tokens.Load(); n != 1 {
		t.Fatalf("%d token requests for 3 calls, want 1 (cached)", n)
	}
	clock.Advance(2 * time.Hour) // the server now rejects the cached token
	if _, err := c.ListReports(ctx); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if n := tokens.Load(); n != 2 {
		t.Fatalf("%d token requests, want 2 (refresh on 401)", n)
	}
}

// TestBadCredentialsErrorHidesSecret: a refused token is permanent: the
// call fails at once, and its error does not show the secret.
func TestBadCredentialsErrorHidesSecret(t *testing.T) {
	srv, _ := devcentertest.Start(t, emulator.Options{})
	var tokens atomic.Int32
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens.Add(1)
		proxy(srv.URL, w, r)
	}))
	defer counting.Close()
	c, err := devcenter.New(devcenter.Config{BaseURL: counting.URL, TokenURL: counting.URL + "/demo-tenant/oauth2/token",
		ClientID: "demo-client", ClientSecret: "wrong-secret-value", TenantID: "demo-tenant"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListTemplates(context.Background())
	if err == nil || strings.Contains(err.Error(), "wrong-secret-value") || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v", err)
	}
	if !retry.Permanent(err) || tokens.Load() != 1 {
		t.Errorf("refused token: permanent %v after %d requests, want true after 1", retry.Permanent(err), tokens.Load())
	}
}

// TestRetries: GETs survive 429 (with Retry-After) and 500s; a create is
// not retried after a 500, which could have created it.
func TestRetries(t *testing.T) {
	srv, _ := devcentertest.Start(t, emulator.Options{})
	var calls atomic.Int32
	var fail atomic.Int32     // status to answer for the next flakyFor API calls
	var flakyFor atomic.Int32 // default 2
	flakyFor.Store(2)
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/analytics/") {
			calls.Add(1)
			if st := fail.Load(); st != 0 && calls.Load() <= flakyFor.Load() {
				if st == 429 {
					w.Header().Set("Retry-After", "0")
				}
				w.WriteHeader(int(st))
				return
			}
		}
		proxy(srv.URL, w, r)
	}))
	defer flaky.Close()
	c := devcentertest.NewClient(t, flaky.URL)
	ctx := context.Background()
	for _, st := range []int32{429, 500, 503} {
		calls.Store(0)
		fail.Store(st)
		if _, err := c.ListTemplates(ctx); err != nil {
			t.Errorf("GET after two %d: %v", st, err)
		}
		if n := calls.Load(); n != 3 {
			t.Errorf("GET with %d: %d calls, want 3", st, n)
		}
	}
	calls.Store(0)
	fail.Store(500)
	_, err := c.CreateTemplate(ctx, devcenter.TemplateDef{View: "OEMDriver", Projection: []string{"FailureDate"}, DateRange: devcenter.DateRange{ReportPeriod: "Yesterday"}})
	if err == nil || calls.Load() != 1 || retry.Permanent(err) {
		t.Errorf("POST after 500: err %v, %d calls (want an error after 1, not permanent)", err, calls.Load())
	}
	// A 4xx is permanent: no retry here, and none by any caller.
	for _, st := range []int32{400, 403, 404} {
		calls.Store(0)
		fail.Store(st)
		_, err := c.ListTemplates(ctx)
		if err == nil || calls.Load() != 1 || !retry.Permanent(err) {
			t.Errorf("GET after %d: err %v, %d calls (want a permanent error after 1)", st, err, calls.Load())
		}
	}
	// Five failures of six attempts are not enough; six are.
	calls.Store(0)
	fail.Store(503)
	flakyFor.Store(6)
	_, err = c.ListTemplates(ctx)
	if err == nil || !strings.HasPrefix(err.Error(), "after 6 attempts: devcenter: GET ") || calls.Load() != 6 || retry.Permanent(err) {
		t.Errorf("GET after six 503s: err %v, %d calls", err, calls.Load())
	}
}

// TestRetryAfter: the wait a 429 names is honoured, even when it is far
// longer than the client's backoff (at most 10ms here).
func TestRetryAfter(t *testing.T) {
	srv, _ := devcentertest.Start(t, emulator.Options{})
	var calls atomic.Int32
	var at [2]atomic.Int64 // when the first two calls came, in ns
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/analytics/") {
			n := calls.Add(1)
			if n <= 2 {
				at[n-1].Store(time.Now().UnixNano())
			}
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
		}
		proxy(srv.URL, w, r)
	}))
	defer slow.Close()
	c := devcentertest.NewClient(t, slow.URL)
	if _, err := c.ListTemplates(context.Background()); err != nil {
		t.Fatal(err)
	}
	if gap := time.Duration(at[1].Load() - at[0].Load()); calls.Load() != 2 || gap < time.Second {
		t.Errorf("%d calls, the retry %v after the 429, want 2 calls, 1s apart", calls.Load(), gap)
	}
}

// TestAPIErrorPermanent: the API's 4xx, but 408 and 429, stop every
// caller's retries (internal/retry reads APIError.Permanent). An expired
// link's 403 is the exception: see TestExpiredLinkIsNotPermanent.
func TestAPIErrorPermanent(t *testing.T) {
	for status, want := range map[int]bool{0: false, 302: false, 400: true, 401: true, 403: true, 404: true,
		408: false, 409: true, 429: false, 500: false, 503: false} {
		err := fmt.Errorf("cab: %w", &devcenter.APIError{Endpoint: "GET x", Status: status})
		if got := retry.Permanent(err); got != want {
			t.Errorf("status %d: Permanent = %v, want %v", status, got, want)
		}
	}
}

func TestCabLink(t *testing.T) {
	_, c := devcentertest.Start(t, emulator.Options{})
	ctx := context.Background()
	runs, err := c.ReportData(ctx, emulator.DemoIHVReportID, time.Now().AddDate(0, 0, -10), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	run := runs[len(runs)-1]
	for run.Status != devcenter.StatusCompleted {
		runs = runs[:len(runs)-1]
		run = runs[len(runs)-1]
	}
	body, _ := c.Download(ctx, run.Location)
	cr, _ := devcenter.NewReportReader(body)
	header, _ := cr.Read()
	hi, ai := slices.Index(header, "CabIdHash"), slices.Index(header, "ApplicationId")
	var hash, app string
	for hash == "" {
		rec, err := cr.Read()
		if err != nil {
			t.Fatal(err)
		}
		hash, app = rec[hi], rec[ai]
	}
	body.Close()
	link, err := c.CabLink(ctx, devcenter.CabDriver, app, hash)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	magic := make([]byte, 4)
	_, _ = io.ReadFull(resp.Body, magic)
	resp.Body.Close()
	if string(magic) != "MSCF" {
		t.Errorf("cab starts %q", magic)
	}
	if _, err := c.CabLink(ctx, devcenter.CabHardware, "", "00000000-0000-0000-0000-000000000000"); !errors.Is(err, devcenter.ErrNotFound) {
		t.Errorf("unknown cab err = %v", err)
	}
}

// proxy forwards r to base (a tiny reverse proxy that keeps redirects).
func proxy(base string, w http.ResponseWriter, r *http.Request) {
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.RequestURI(), r.Body)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
