package devcenter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// envelope is the async endpoints' response shape.
type envelope[T any] struct {
	Data T `json:"data"`
}

// call sends a JSON API request and decodes data into out (if non-nil).
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	req := request{
		method:     method,
		url:        c.cfg.BaseURL + path,
		endpoint:   method + " " + strings.SplitN(path, "?", 2)[0],
		auth:       true,
		idempotent: method == http.MethodGet,
	}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("devcenter: %s: encode body: %w", req.endpoint, err)
		}
		req.body = b
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("devcenter: %s: status %d: decode response: %w", req.endpoint, resp.StatusCode, err)
	}
	return nil
}

func (c *Client) reportPath(parts ...string) string {
	return c.cfg.ReportPath + "/" + strings.Join(parts, "/")
}

// CreateTemplate creates a report template and returns its id.
func (c *Client) CreateTemplate(ctx context.Context, def TemplateDef) (ID, error) {
	var env envelope[struct {
		TemplateID ID `json:"templateId"`
	}]
	if err := c.call(ctx, http.MethodPost, c.reportPath("reporttemplate"), def, &env); err != nil {
		return 0, err
	}
	if env.Data.TemplateID == 0 {
		return 0, fmt.Errorf("devcenter: POST reporttemplate: response has no templateId")
	}
	return env.Data.TemplateID, nil
}

// EditTemplate replaces a template's definition.
func (c *Client) EditTemplate(ctx context.Context, id ID, def TemplateDef) error {
	return c.call(ctx, http.MethodPost, c.reportPath("reporttemplate", id.String()), def, nil)
}

// templateJSON is a template as listed. "template" is a JSON-encoded string
// in the docs; an object is accepted too.
type templateJSON struct {
	TemplateID ID              `json:"templateId"`
	Template   json.RawMessage `json:"template"`
	Created    string          `json:"createdDatetime"`
	Modified   string          `json:"modifiedDatetime"`
}

func (t templateJSON) decode() (Template, error) {
	out := Template{ID: t.TemplateID}
	if err := decodeEmbedded(t.Template, &out.Def); err != nil {
		return out, fmt.Errorf("template %d: %w", t.TemplateID, err)
	}
	out.Created, _ = ParseAPITime(t.Created)
	out.Modified, _ = ParseAPITime(t.Modified)
	return out, nil
}

// decodeEmbedded decodes a value sent either as a JSON object or as a
// string holding JSON.
func decodeEmbedded(raw json.RawMessage, out any) error {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		raw = json.RawMessage(s)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode embedded JSON: %w", err)
	}
	return nil
}

// ListTemplates returns every template of the account.
func (c *Client) ListTemplates(ctx context.Context) ([]Template, error) {
	var env envelope[[]templateJSON]
	if err := c.call(ctx, http.MethodGet, c.reportPath("reporttemplate"), nil, &env); err != nil {
		return nil, err
	}
	out := make([]Template, 0, len(env.Data))
	for _, t := range env.Data {
		tpl, err := t.decode()
		if err != nil {
			return nil, fmt.Errorf("devcenter: GET reporttemplate: %w", err)
		}
		out = append(out, tpl)
	}
	return out, nil
}

// GetTemplate returns one template. A missing one wraps ErrNotFound.
func (c *Client) GetTemplate(ctx context.Context, id ID) (Template, error) {
	var env envelope[templateJSON]
	if err := c.call(ctx, http.MethodGet, c.reportPath("reporttemplate", id.String()), nil, &env); err != nil {
		return Template{}, err
	}
	if env.Data.TemplateID == 0 {
		env.Data.TemplateID = id
	}
	return env.Data.decode()
}

// scheduleJSON is the create-schedule body.
type scheduleJSON struct {
	TemplateID  ID           `json:"templateId"`
	Schedule    scheduleBody `json:"schedule"`
	CallbackURL string       `json:"callbackUrl,omitempty"`
}

type scheduleBody struct {
	StartTime          string `json:"startTime"`
	RecurrenceInterval int    `json:"recurrenceInterval"`
	Recurrence         int    `json:"recurrence"`
}

func toBody(s Schedule) scheduleBody {
	return scheduleBody{StartTime: s.Start.UTC().Format("2006-01-02T15:04:05Z"), RecurrenceInterval: s.Interval, Recurrence: s.Recurrence}
}

// ScheduleReport schedules a template and returns the report id.
// callbackURL may be empty.
func (c *Client) ScheduleReport(ctx context.Context, templateID ID, s Schedule, callbackURL string) (ID, error) {
	var env envelope[struct {
		ReportID ID `json:"reportId"`
	}]
	body := scheduleJSON{TemplateID: templateID, Schedule: toBody(s), CallbackURL: callbackURL}
	if err := c.call(ctx, http.MethodPost, c.reportPath("report"), body, &env); err != nil {
		return 0, err
	}
	if env.Data.ReportID == 0 {
		return 0, fmt.Errorf("devcenter: POST report: response has no reportId")
	}
	return env.Data.ReportID, nil
}

// EditReport changes a scheduled report's template or schedule.
func (c *Client) EditReport(ctx context.Context, id, templateID ID, s Schedule) error {
	body := scheduleJSON{TemplateID: templateID, Schedule: toBody(s)}
	return c.call(ctx, http.MethodPost, c.reportPath("report", id.String()), body, nil)
}

// PauseReport pauses a scheduled report.
func (c *Client) PauseReport(ctx context.Context, id ID) error {
	return c.call(ctx, http.MethodPost, c.reportPath("report", "pause", id.String()), nil, nil)
}

// ResumeReport resumes a paused report.
func (c *Client) ResumeReport(ctx context.Context, id ID) error {
	return c.call(ctx, http.MethodPost, c.reportPath("report", "resume", id.String()), nil, nil)
}

// ListReports returns every scheduled report of the account.
func (c *Client) ListReports(ctx context.Context) ([]Report, error) {
	var env envelope[[]struct {
		ReportID   ID              `json:"reportId"`
		TemplateID ID              `json:"templateId"`
		Schedule   json.RawMessage `json:"schedule"`
		IsActive   *bool           `json:"isActive"`
		Created    string          `json:"createdDatetime"`
		Modified   string          `json:"modifiedDatetime"`
	}]
	if err := c.call(ctx, http.MethodGet, c.reportPath("report"), nil, &env); err != nil {
		return nil, err
	}
	out := make([]Report, 0, len(env.Data))
	for _, r := range env.Data {
		rep := Report{ID: r.ReportID, TemplateID: r.TemplateID, Active: r.IsActive == nil || *r.IsActive}
		var sb scheduleBody
		if len(r.Schedule) > 0 && decodeEmbedded(r.Schedule, &sb) == nil {
			rep.Schedule = Schedule{Interval: sb.RecurrenceInterval, Recurrence: sb.Recurrence}
			rep.Schedule.Start, _ = ParseAPITime(strings.TrimSuffix(sb.StartTime, "Z"))
		}
		rep.Created, _ = ParseAPITime(r.Created)
		rep.Modified, _ = ParseAPITime(r.Modified)
		out = append(out, rep)
	}
	return out, nil
}

// ReportData returns the runs of a scheduled report generated between the
// UTC dates of start and end, oldest first. Completed runs carry a download
// link that expires (12 hours); call again for a fresh one.
func (c *Client) ReportData(ctx context.Context, reportID ID, start, end time.Time) ([]Run, error) {
	q := url.Values{"startDate": {start.UTC().Format(time.DateOnly)}, "endDate": {end.UTC().Format(time.DateOnly)}}
	var env envelope[[]struct {
		ReportDatetime string `json:"ReportDatetime"`
		ReportStatus   string `json:"ReportStatus"`
		ReportLocation string `json:"ReportLocation"`
	}]
	path := c.reportPath("reportdata", reportID.String()) + "?" + q.Encode()
	if err := c.call(ctx, http.MethodGet, path, nil, &env); err != nil {
		return nil, err
	}
	runs := make([]Run, 0, len(env.Data))
	for _, r := range env.Data {
		t, err := ParseAPITime(r.ReportDatetime)
		if err != nil {
			return nil, fmt.Errorf("devcenter: GET reportdata/%d: run time: %w", reportID, err)
		}
		runs = append(runs, Run{Time: t, Status: ParseStatus(r.ReportStatus), Location: strings.TrimSpace(r.ReportLocation)})
	}
	sortRuns(runs)
	return runs, nil
}

func sortRuns(runs []Run) {
	slices.SortStableFunc(runs, func(a, b Run) int { return a.Time.Compare(b.Time) })
}

// String formats the id as the API's path segment.
func (id ID) String() string { return strconv.FormatInt(int64(id), 10) }
