// Package apiclient is a deliberately small, independent client for the
// Hardware Dev Center asynchronous failure-report API, written only from
// the API reference (docs/devcenter-api.md) and the standard library. The
// end-to-end tests use it to compute, from the API itself, what the lake
// that hdc-export writes must contain. It shares no code with the module
// under test, so a bug there cannot hide in the expected values.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Resource is the token audience the docs require.
const Resource = "https://manage.devcenter.microsoft.com"

// Client talks to one Dev Center (or emulator) account.
type Client struct {
	// BaseURL is the API host, e.g. https://manage.devcenter.microsoft.com.
	// The async endpoints live under BaseURL + "/analytics/driver".
	BaseURL string
	// TokenURL is the Azure AD v1 token endpoint of the tenant.
	TokenURL     string
	ClientID     string
	ClientSecret string
	// HTTP is the client to use; nil means a client with a 60 s timeout.
	HTTP *http.Client

	mu      sync.Mutex
	token   string
	expires time.Time
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 60 * time.Second}
}

// Token returns a bearer token, fetching a new one (client-credentials
// grant) when there is none or it is about to expire.
func (c *Client) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && time.Now().Before(c.expires) {
		return c.token, nil
	}
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.ClientID},
		"client_secret": {c.ClientSecret},
		"resource":      {Resource},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	resp, err := c.http().Do(req)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("token: read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token: HTTP %d: %s", resp.StatusCode, snippet(body))
	}
	var tr struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"` // "3599" (v1) or 3599
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return "", fmt.Errorf("token: decode: %w", err)
	}
	if tr.AccessToken == "" {
		return "", errors.New("token: response has no access_token")
	}
	secs, err := flexInt(tr.ExpiresIn)
	if err != nil || secs <= 0 {
		secs = 3600 // the docs: usable for 60 minutes
	}
	c.token = tr.AccessToken
	c.expires = time.Now().Add(time.Duration(secs)*time.Second - time.Minute)
	return c.token, nil
}

// getData GETs an async endpoint (path relative to BaseURL) and decodes the
// envelope's data member into out.
func (c *Client) getData(ctx context.Context, path string, out any) error {
	tok, err := c.Token(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+path, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("GET %s: read body: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, snippet(body))
	}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("GET %s: decode envelope: %w", path, err)
	}
	if e := bytes.TrimSpace(env.Errors); len(e) > 0 && !bytes.Equal(e, []byte("null")) && !bytes.Equal(e, []byte("[]")) {
		return fmt.Errorf("GET %s: errors in envelope: %s", path, snippet(e))
	}
	if len(env.Data) == 0 || bytes.Equal(bytes.TrimSpace(env.Data), []byte("null")) {
		return nil
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("GET %s: decode data: %w", path, err)
	}
	return nil
}

// Template is a report template as listed by GET reporttemplate.
type Template struct {
	ID         int64
	View       string   // IHVDriver or OEMDriver
	Projection []string // column names
	Period     string   // dateRange.reportPeriod, e.g. Last7Days
}

// Templates lists the account's report templates.
func (c *Client) Templates(ctx context.Context) ([]Template, error) {
	var raw []struct {
		TemplateID json.RawMessage `json:"templateId"`
		Template   json.RawMessage `json:"template"`
	}
	if err := c.getData(ctx, "/analytics/driver/reporttemplate", &raw); err != nil {
		return nil, err
	}
	out := make([]Template, 0, len(raw))
	for _, r := range raw {
		id, err := flexInt(r.TemplateID)
		if err != nil {
			return nil, fmt.Errorf("template id %s: %w", r.TemplateID, err)
		}
		// The docs show the definition as a JSON-encoded string; accept an
		// object too.
		def := []byte(r.Template)
		var s string
		if json.Unmarshal(def, &s) == nil {
			def = []byte(s)
		}
		var d struct {
			View       string   `json:"view"`
			Projection []string `json:"projection"`
			DateRange  struct {
				ReportPeriod string `json:"reportPeriod"`
			} `json:"dateRange"`
		}
		if err := json.Unmarshal(def, &d); err != nil {
			return nil, fmt.Errorf("template %d: decode definition: %w", id, err)
		}
		out = append(out, Template{ID: id, View: strings.TrimSpace(d.View), Projection: d.Projection, Period: d.DateRange.ReportPeriod})
	}
	return out, nil
}

// Report is a scheduled report as listed by GET report.
type Report struct {
	ID         int64
	TemplateID int64
	Active     bool
}

// Reports lists the account's scheduled reports.
func (c *Client) Reports(ctx context.Context) ([]Report, error) {
	var raw []struct {
		ReportID   json.RawMessage `json:"reportId"`
		TemplateID json.RawMessage `json:"templateId"`
		IsActive   *bool           `json:"isActive"`
	}
	if err := c.getData(ctx, "/analytics/driver/report", &raw); err != nil {
		return nil, err
	}
	out := make([]Report, 0, len(raw))
	for _, r := range raw {
		id, err := flexInt(r.ReportID)
		if err != nil {
			return nil, fmt.Errorf("report id %s: %w", r.ReportID, err)
		}
		tid, err := flexInt(r.TemplateID)
		if err != nil {
			return nil, fmt.Errorf("report %d: template id %s: %w", id, r.TemplateID, err)
		}
		out = append(out, Report{ID: id, TemplateID: tid, Active: r.IsActive == nil || *r.IsActive})
	}
	return out, nil
}

// Run is one execution of a scheduled report.
type Run struct {
	Time     time.Time // ReportDatetime, UTC
	Status   string
	Location string
}

// Finished reports whether the run finished successfully: the docs'
// "Completed", or "Success" as observed from the real service.
func (r Run) Finished() bool {
	s := strings.TrimSpace(r.Status)
	return strings.EqualFold(s, "Completed") || strings.EqualFold(s, "Success")
}

// Runs lists the runs of a report generated between start and end (dates,
// yyyy-mm-dd).
func (c *Client) Runs(ctx context.Context, reportID int64, start, end time.Time) ([]Run, error) {
	q := url.Values{"startDate": {start.UTC().Format("2006-01-02")}, "endDate": {end.UTC().Format("2006-01-02")}}
	var raw []struct {
		ReportDatetime string `json:"ReportDatetime"`
		ReportStatus   string `json:"ReportStatus"`
		ReportLocation string `json:"ReportLocation"`
	}
	if err := c.getData(ctx, fmt.Sprintf("/analytics/driver/reportdata/%d?%s", reportID, q.Encode()), &raw); err != nil {
		return nil, err
	}
	out := make([]Run, 0, len(raw))
	for _, r := range raw {
		t, err := parseRunTime(r.ReportDatetime)
		if err != nil {
			return nil, fmt.Errorf("report %d: %w", reportID, err)
		}
		out = append(out, Run{Time: t, Status: r.ReportStatus, Location: r.ReportLocation})
	}
	return out, nil
}

// Download fetches a run's report file. Blob links carry their own
// authorisation, so no bearer token is sent.
func (c *Client) Download(ctx context.Context, link string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("download: read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download: HTTP %d: %s", resp.StatusCode, snippet(body))
	}
	return body, nil
}

// parseRunTime parses ReportDatetime: yyyy-MM-ddTHH:mm:ss, no zone (UTC),
// with optional fractional seconds or zone.
func parseRunTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("ReportDatetime %q is not a timestamp", s)
}

// flexInt decodes an id or count given as a JSON number or a string.
func flexInt(raw json.RawMessage) (int64, error) {
	s := strings.TrimSpace(string(raw))
	if uq, err := strconv.Unquote(s); err == nil {
		s = strings.TrimSpace(uq)
	}
	return strconv.ParseInt(s, 10, 64)
}

// snippet shortens a response body for an error message.
func snippet(b []byte) string {
	const max = 300
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
