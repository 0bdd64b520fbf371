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
	return c.callURL(ctx, method, c.cfg.BaseURL+path, method+" "+strings.SplitN(path, "?", 2)[0], in, out)
}

// callURL is call for an absolute URL; endpoint names it in errors.
func (c *Client) callURL(ctx context.Context, method, rawURL, endpoint string, in, out any) error {
	req := request{
		method:     method,
		url:        rawURL,
		endpoint:   endpoint,
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
// in the docs; an object is accepted too. Keys match without letter case
// or surrounding spaces (the get example's key is " template").
type templateJSON struct {
	TemplateID ID
	Template   json.RawMessage
	Created    string
	Modified   string
}

func (t *templateJSON) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if raw := fieldFold(m, "templateId"); raw != nil {
		if err := json.Unmarshal(raw, &t.TemplateID); err != nil {
			return fmt.Errorf("templateId: %w", err)
		}
	}
	t.Template = fieldFold(m, "template")
	_ = json.Unmarshal(fieldFold(m, "createdDatetime"), &t.Created)
	_ = json.Unmarshal(fieldFold(m, "modifiedDatetime"), &t.Modified)
	return nil
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

// ListTemplates returns every template of the account, following
// next-page links (see list); a template repeated across pages is listed
// once.
func (c *Client) ListTemplates(ctx context.Context) ([]Template, error) {
	var out []Template
	seen := map[ID]bool{}
	err := c.list(ctx, c.reportPath("reporttemplate"), func(raw json.RawMessage) error {
		var t templateJSON
		if err := json.Unmarshal(raw, &t); err != nil {
			return fmt.Errorf("decode template: %w", err)
		}
		tpl, err := t.decode()
		if err != nil {
			return err
		}
		if !seen[tpl.ID] {
			seen[tpl.ID] = true
			out = append(out, tpl)
		}
		return nil
	})
	if err != nil {
		return nil, err
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

// reportJSON is a scheduled report as listed; "schedule" is a JSON string
// or an object. Keys match without letter case.
type reportJSON struct {
	ReportID   ID              `json:"reportId"`
	TemplateID ID              `json:"templateId"`
	Schedule   json.RawMessage `json:"schedule"`
	IsActive   *bool           `json:"isActive"`
	Created    string          `json:"createdDatetime"`
	Modified   string          `json:"modifiedDatetime"`
}

// scheduleEcho is the schedule as listed: counts may be numbers or
// strings, startTime with or without a zone.
type scheduleEcho struct {
	StartTime          string `json:"startTime"`
	RecurrenceInterval ID     `json:"recurrenceInterval"`
	Recurrence         ID     `json:"recurrence"`
}

// ListReports returns every scheduled report of the account, following
// next-page links (see list); a report repeated across pages is listed
// once.
func (c *Client) ListReports(ctx context.Context) ([]Report, error) {
	var out []Report
	seen := map[ID]bool{}
	err := c.list(ctx, c.reportPath("report"), func(raw json.RawMessage) error {
		var r reportJSON
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("decode report: %w", err)
		}
		if seen[r.ReportID] {
			return nil
		}
		seen[r.ReportID] = true
		rep := Report{ID: r.ReportID, TemplateID: r.TemplateID, Active: r.IsActive == nil || *r.IsActive}
		var sb scheduleEcho
		if len(r.Schedule) > 0 && decodeEmbedded(r.Schedule, &sb) == nil {
			rep.Schedule = Schedule{Interval: int(sb.RecurrenceInterval), Recurrence: int(sb.Recurrence)}
			rep.Schedule.Start, _ = ParseAPITime(strings.TrimSuffix(strings.TrimSpace(sb.StartTime), "Z"))
		}
		rep.Created, _ = ParseAPITime(r.Created)
		rep.Modified, _ = ParseAPITime(r.Modified)
		out = append(out, rep)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReportData returns the runs of a scheduled report generated on the UTC
// dates from start's to end's, both included, oldest first, following
// next-page links (see list). Completed runs carry a download link that
// expires (12 hours); call again for a fresh one.
//
// Whether the service's startDate and endDate are inclusive is not
// documented (reference §9.16), so the query asks for a day more on each
// side and the runs outside the dates asked for are dropped here: the
// answer is the same either way.
func (c *Client) ReportData(ctx context.Context, reportID ID, start, end time.Time) ([]Run, error) {
	first, last := dayOf(start), dayOf(end)
	q := url.Values{"startDate": {first.AddDate(0, 0, -1).Format(time.DateOnly)}, "endDate": {last.AddDate(0, 0, 1).Format(time.DateOnly)}}
	var runs []Run
	seen := map[time.Time]bool{}
	path := c.reportPath("reportdata", reportID.String()) + "?" + q.Encode()
	err := c.list(ctx, path, func(raw json.RawMessage) error {
		var r struct {
			ReportDatetime string `json:"ReportDatetime"`
			ReportStatus   string `json:"ReportStatus"`
			ReportLocation string `json:"ReportLocation"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("decode run: %w", err)
		}
		t, err := ParseAPITime(r.ReportDatetime)
		if err != nil {
			return fmt.Errorf("run time: %w", err)
		}
		if d := dayOf(t); d.Before(first) || d.After(last) || seen[t] {
			return nil
		}
		seen[t] = true
		runs = append(runs, Run{Time: t, Status: ParseStatus(r.ReportStatus), Location: strings.TrimSpace(r.ReportLocation)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortRuns(runs)
	return runs, nil
}

// dayOf is the start of t's UTC day.
func dayOf(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func sortRuns(runs []Run) {
	slices.SortStableFunc(runs, func(a, b Run) int { return a.Time.Compare(b.Time) })
}

// String formats the id as the API's path segment.
func (id ID) String() string { return strconv.FormatInt(int64(id), 10) }
