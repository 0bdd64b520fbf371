package devcenter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/devcenter/devcentertest"
	"github.com/hdc-export/hdc-export/devcenter/emulator"
	"github.com/hdc-export/hdc-export/internal/retry"
)

// quirkyDef is a template exercising every part a service may echo
// normalised: no limit, lower-case operators and aggregate names, an
// empty "or", a projection not in alphabetical order.
func quirkyDef() devcenter.TemplateDef {
	return devcenter.TemplateDef{
		View: "IHVDriver", Projection: []string{"FailureDate", "DriverName", "EventCount"},
		DateRange: devcenter.DateRange{ReportPeriod: "Last3Days"},
		Condition: []byte(`{"and":[{"attribute":"Market","operator":"eq","value":"US"},{"attribute":"EventType","operator":"neq","value":"x"}],"or":[]}`),
	}
}

// TestEchoesMatch: under each echo quirk, the template as listed and as
// got is the same template (Canonical) as the one created, with or
// without an explicit limit of 0.
func TestEchoesMatch(t *testing.T) {
	zero := 0
	for name, q := range map[string]emulator.Quirks{
		"limit echoed as 0": {LimitEcho: emulator.LimitEchoZero},
		"limit 0 dropped":   {LimitEcho: emulator.LimitEchoDrop},
		"normalised":        {NormalizedEcho: true, LimitEcho: emulator.LimitEchoZero},
	} {
		t.Run(name, func(t *testing.T) {
			_, c := devcentertest.Start(t, emulator.Options{Now: devcentertest.NewClock(t0).Now, Quirks: q})
			ctx := context.Background()
			for _, limit := range []*int{nil, &zero} {
				def := quirkyDef()
				def.Limit = limit
				id, err := c.CreateTemplate(ctx, def)
				if err != nil {
					t.Fatal(err)
				}
				got, err := c.GetTemplate(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if got.Def.Canonical() != def.Canonical() {
					t.Errorf("limit %v: get echo differs:\n got %s\nwant %s", limit, got.Def.Canonical(), def.Canonical())
				}
				list, err := c.ListTemplates(ctx)
				if err != nil {
					t.Fatal(err)
				}
				found := false
				for _, tpl := range list {
					found = found || (tpl.ID == id && tpl.Def.Canonical() == def.Canonical())
				}
				if !found {
					t.Errorf("limit %v: template %d not listed as created", limit, id)
				}
			}
		})
	}
}

// TestEchoIsNormalised guards the quirk itself: the normalised echo does
// differ from what was sent, byte for byte.
func TestEchoIsNormalised(t *testing.T) {
	srv, c := devcentertest.Start(t, emulator.Options{Quirks: emulator.Quirks{NormalizedEcho: true, LimitEcho: emulator.LimitEchoZero}})
	id, err := c.CreateTemplate(context.Background(), quirkyDef())
	if err != nil {
		t.Fatal(err)
	}
	body := rawGet(t, srv.URL, fmt.Sprintf("/analytics/driver/reporttemplate/%d", id))
	for _, want := range []string{`\"View\"`, `\"Projection\"`, `\"Operator\": \"EQ\"`, `\"Limit\": 0`, `\n`} {
		if !strings.Contains(body, want) {
			t.Errorf("normalised echo lacks %s: %s", want, body)
		}
	}
}

// rawGet GETs an API path with a fresh token and returns the body.
func rawGet(t *testing.T, base, path string) string {
	t.Helper()
	resp, err := http.PostForm(base+"/demo-tenant/oauth2/token", map[string][]string{"grant_type": {"client_credentials"},
		"client_id": {"demo-client"}, "client_secret": {"demo-secret"}, "resource": {devcenter.Resource}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestPagingFollowsNextLink: with one element a page, every list is whole
// and has no element twice; reportdata pages give the unpaged answer.
func TestPagingFollowsNextLink(t *testing.T) {
	clock := devcentertest.NewClock(t0)
	_, plain := devcentertest.Start(t, emulator.Options{Now: clock.Now})
	srv, paged := devcentertest.Start(t, emulator.Options{Now: clock.Now, Quirks: emulator.Quirks{PageSize: 1}})
	ctx := context.Background()
	for i := range 3 {
		def := quirkyDef()
		def.Projection = append(def.Projection, []string{"Market", "OSName", "Symbol"}[i])
		id, err := paged.CreateTemplate(ctx, def)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := paged.ScheduleReport(ctx, id, devcenter.Schedule{Start: t0.Add(time.Hour), Interval: 12, Recurrence: 2}, ""); err != nil {
			t.Fatal(err)
		}
	}
	if body := rawGet(t, srv.URL, "/analytics/driver/reporttemplate"); !strings.Contains(body, `"@nextLink"`) {
		t.Fatalf("the paging quirk sent no next link: %s", body)
	}
	tpls, err := paged.ListTemplates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reps, err := paged.ListReports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ids := templateIDs(tpls); len(tpls) != 5 || len(ids) != 5 {
		t.Errorf("templates: %d listed, %d distinct, want 5", len(tpls), len(ids))
	}
	if len(reps) != 5 {
		t.Errorf("reports: %d listed, want 5", len(reps))
	}
	start := t0.AddDate(0, 0, -30)
	want, err := plain.ReportData(ctx, emulator.DemoIHVReportID, start, t0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := paged.ReportData(ctx, emulator.DemoIHVReportID, start, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 20 || runTimes(got) != runTimes(want) {
		t.Errorf("paged reportdata differs:\n got %s\nwant %s", runTimes(got), runTimes(want))
	}
}

func templateIDs(ts []devcenter.Template) map[devcenter.ID]bool {
	out := map[devcenter.ID]bool{}
	for _, t := range ts {
		out[t.ID] = true
	}
	return out
}

func runTimes(runs []devcenter.Run) string {
	var b strings.Builder
	for _, r := range runs {
		fmt.Fprintf(&b, "%s/%v ", r.Time.Format(time.RFC3339), r.Status)
	}
	return b.String()
}

// TestPagingRefusesBadLinks: a next link to another host is not followed
// (the token would go there), a loop and an endless list end in
// ErrBadPaging, never in a partial list.
func TestPagingRefusesBadLinks(t *testing.T) {
	emu, _ := devcentertest.Start(t, emulator.Options{})
	var foreignHits atomic.Int32
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { foreignHits.Add(1) }))
	defer foreign.Close()
	var pages atomic.Int32
	var next func(r *http.Request) string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := pages.Add(1)
		fmt.Fprintf(w, `{"data":[{"templateId":%d,"template":"{\"view\":\"IHVDriver\"}"}],"@nextLink":%q}`, n, next(r))
	}))
	defer api.Close()
	c, err := devcenter.New(devcenter.Config{BaseURL: api.URL, TokenURL: emu.URL + "/demo-tenant/oauth2/token",
		TenantID: "demo-tenant", ClientID: "demo-client", ClientSecret: "demo-secret"})
	if err != nil {
		t.Fatal(err)
	}
	for name, link := range map[string]func(r *http.Request) string{
		"foreign host": func(*http.Request) string { return foreign.URL + "/analytics/driver/reporttemplate?skip=1" },
		"loop":         func(r *http.Request) string { return "/analytics/driver/reporttemplate?skip=1" },
		"endless": func(r *http.Request) string {
			return fmt.Sprintf("/analytics/driver/reporttemplate?skip=%d", pages.Load())
		},
	} {
		pages.Store(0)
		next = link
		tpls, err := c.ListTemplates(context.Background())
		if !errors.Is(err, devcenter.ErrBadPaging) || tpls != nil {
			t.Errorf("%s: %d templates, err %v; want ErrBadPaging and no list", name, len(tpls), err)
		}
		t.Logf("%s: %d pages read: %v", name, pages.Load(), err)
	}
	if foreignHits.Load() != 0 {
		t.Errorf("the foreign host got %d requests", foreignHits.Load())
	}
	if pages.Load() != devcenter.MaxPages {
		t.Errorf("endless list: %d pages read, want the bound %d", pages.Load(), devcenter.MaxPages)
	}
}

// TestExclusiveBounds: a service whose reportdata bounds are exclusive
// gives the same runs as an inclusive one, the newest run and a run
// asked for by its own day included.
func TestExclusiveBounds(t *testing.T) {
	clock := devcentertest.NewClock(t0)
	_, incl := devcentertest.Start(t, emulator.Options{Now: clock.Now})
	_, excl := devcentertest.Start(t, emulator.Options{Now: clock.Now, Quirks: emulator.Quirks{ExclusiveBounds: true}})
	ctx := context.Background()
	want, err := incl.ReportData(ctx, emulator.DemoIHVReportID, t0.AddDate(0, 0, -10), t0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := excl.ReportData(ctx, emulator.DemoIHVReportID, t0.AddDate(0, 0, -10), t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 10 || runTimes(got) != runTimes(want) {
		t.Fatalf("exclusive bounds:\n got %s\nwant %s", runTimes(got), runTimes(want))
	}
	newest := want[len(want)-1]
	if newest.Time.YearDay() != t0.YearDay() {
		t.Fatalf("newest run %v is not on the day of %v", newest.Time, t0)
	}
	one, err := excl.ReportData(ctx, emulator.DemoIHVReportID, newest.Time, newest.Time)
	if err != nil || len(one) != 1 || !one[0].Time.Equal(newest.Time) {
		t.Errorf("the newest run asked for by its day: %s, %v", runTimes(one), err)
	}
}

// idleClient is a client for srv with a short idle timeout and an
// overall HTTP timeout shorter than the slow download, to show that
// downloads are bounded by progress, not total time.
func idleClient(t *testing.T, base string, idle time.Duration) *devcenter.Client {
	t.Helper()
	c, err := devcenter.New(devcenter.Config{BaseURL: base, TokenURL: base + "/demo-tenant/oauth2/token",
		TenantID: "demo-tenant", ClientID: "demo-client", ClientSecret: "demo-secret",
		IdleTimeout: idle, HTTPClient: &http.Client{Timeout: time.Second},
		RetryBase: time.Millisecond, RetryMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSlowSteadyLinkCompletes: a report file sent at a steady trickle
// for longer than both the idle timeout and the client's overall HTTP
// timeout downloads whole.
func TestSlowSteadyLinkCompletes(t *testing.T) {
	clock := devcentertest.NewClock(t0)
	const rate = 16 << 10
	srv := httptest.NewServer(emulator.New(emulator.Options{Now: clock.Now, RowsPerDay: 10, Quirks: emulator.Quirks{SlowLinkRate: rate}}).Handler())
	defer srv.Close()
	c := idleClient(t, srv.URL, 300*time.Millisecond)
	link := newestLink(t, c)
	start := time.Now()
	body, err := c.Download(context.Background(), link)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, body)
	body.Close()
	took := time.Since(start)
	t.Logf("%d bytes at %d B/s in %v", n, rate, took)
	if err != nil {
		t.Fatalf("slow download failed after %d bytes, %v: %v", n, took, err)
	}
	if took < 1500*time.Millisecond {
		t.Fatalf("the download took %v: too short to show anything (file of %d bytes)", took, n)
	}
}

// TestStalledLinkFailsByIdleTimeout: a download that stops sending fails
// after the idle timeout, with an error that is a timeout (retried as a
// broken download), long before the stall would end.
func TestStalledLinkFailsByIdleTimeout(t *testing.T) {
	clock := devcentertest.NewClock(t0)
	emu := emulator.New(emulator.Options{Now: clock.Now, RowsPerDay: 10})
	srv := httptest.NewServer(emu.Handler())
	defer srv.Close()
	c := idleClient(t, srv.URL, 300*time.Millisecond)
	link := newestLink(t, c)
	emu.SetFaults(emulator.Faults{Slow: 1, SlowDelay: 10 * time.Second})
	start := time.Now()
	body, err := c.Download(context.Background(), link)
	if err == nil {
		_, err = io.Copy(io.Discard, body)
		body.Close()
	}
	took := time.Since(start)
	var ne net.Error
	if !errors.Is(err, devcenter.ErrIdleTimeout) || !errors.As(err, &ne) || !ne.Timeout() || !strings.Contains(err.Error(), "idle timeout") {
		t.Fatalf("stalled download: err = %v, want an idle timeout", err)
	}
	if took > 5*time.Second {
		t.Errorf("stalled download failed after %v, want about the idle timeout", took)
	}
	t.Logf("stalled download failed after %v: %v", took, err)
}

func newestLink(t *testing.T, c *devcenter.Client) string {
	t.Helper()
	runs, err := c.ReportData(context.Background(), emulator.DemoIHVReportID, t0.AddDate(0, 0, -3), t0)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].Status == devcenter.StatusCompleted {
			return runs[i].Location
		}
	}
	t.Fatal("no completed run")
	return ""
}

// TestBadSecretFailsFast: the token endpoint's invalid_client or
// unauthorized_client, whatever the status it comes with, ends the call
// after one request, in well under 2 s, with a message naming
// HDC_CLIENT_SECRET; the secret is never shown.
func TestBadSecretFailsFast(t *testing.T) {
	emu, _ := devcentertest.Start(t, emulator.Options{})
	cases := map[string]http.HandlerFunc{
		"emulator, wrong secret": func(w http.ResponseWriter, r *http.Request) { proxy(emu.URL, w, r) },
	}
	for _, st := range []int{200, 400, 401, 500, 503} {
		for _, code := range []string{"invalid_client", "unauthorized_client"} {
			cases[fmt.Sprintf("%d %s", st, code)] = func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(st)
				fmt.Fprintf(w, `{"error":%q,"error_description":"AADSTS7000215: Invalid client secret provided."}`, code)
			}
		}
	}
	for name, h := range cases {
		var tokens atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tokens.Add(1); h(w, r) }))
		c, err := devcenter.New(devcenter.Config{BaseURL: emu.URL, TokenURL: srv.URL + "/demo-tenant/oauth2/token",
			TenantID: "demo-tenant", ClientID: "demo-client", ClientSecret: "wrong-secret-value"}) // default retry policy
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = c.ListTemplates(context.Background())
		took := time.Since(start)
		srv.Close()
		t.Logf("%s: failed after %v", name, took)
		switch {
		case err == nil || !strings.Contains(err.Error(), "HDC_CLIENT_SECRET") || !strings.Contains(err.Error(), "HDC_CLIENT_ID"):
			t.Errorf("%s: err = %v, want a message naming HDC_CLIENT_SECRET and HDC_CLIENT_ID", name, err)
		case strings.Contains(err.Error(), "wrong-secret-value"):
			t.Errorf("%s: the secret leaked: %v", name, err)
		case !retry.Permanent(err) || tokens.Load() != 1:
			t.Errorf("%s: permanent %v after %d token requests, want true after 1", name, retry.Permanent(err), tokens.Load())
		case took >= 2*time.Second:
			t.Errorf("%s: took %v, want under 2 s", name, took)
		}
	}
}
