package emulator

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// listReports returns GET report's items by id.
func (h *harness) listReports() map[int]reportItem {
	h.t.Helper()
	var items []reportItem
	if err := json.Unmarshal(h.api(http.StatusOK, http.MethodGet, "/analytics/driver/report", nil).Data, &items); err != nil {
		h.t.Fatal(err)
	}
	byID := make(map[int]reportItem)
	for _, it := range items {
		byID[it.ReportID] = it
	}
	return byID
}

// runDates returns the ReportDatetime of each run.
func runDates(runs []runView) []string {
	var dates []string
	for _, r := range runs {
		dates = append(dates, r.ReportDatetime)
	}
	return dates
}

func TestDemoScheduleRuns(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	for _, id := range []int{DemoIHVReportID, DemoOEMReportID} {
		runs := h.runs(id, "")
		if len(runs) != 29 {
			t.Fatalf("report %d: %d runs, want 29 (35 days covered by daily Last7Days runs)", id, len(runs))
		}
		if first, last := runs[0].ReportDatetime, runs[28].ReportDatetime; first != "2024-02-16T02:00:00" || last != "2024-03-15T02:00:00" {
			t.Errorf("report %d: runs from %s to %s", id, first, last)
		}
		if !slices.IsSorted(runDates(runs)) {
			t.Errorf("report %d: runs not in ascending time", id)
		}
		if runs[28].ReportStatus != statusCompleted {
			t.Errorf("report %d: newest finished run is %q, want Completed", id, runs[28].ReportStatus)
		}
		for _, r := range runs {
			switch {
			case r.ReportStatus == statusCompleted && strings.HasPrefix(r.ReportLocation, h.srv.URL+"/blobs/reports/"):
			case r.ReportStatus == statusFailed && r.ReportLocation == "":
			default:
				t.Errorf("report %d: run %+v", id, r)
			}
		}
	}

	// Before 02:00 the newest run is yesterday's, still covering 35 dates.
	early := newHarness(t, Options{}, time.Date(2024, 3, 15, 1, 0, 0, 0, time.UTC))
	runs := early.runs(DemoIHVReportID, "")
	if len(runs) != 29 || runs[28].ReportDatetime != "2024-03-14T02:00:00" {
		t.Errorf("at 01:00: %d runs, newest %s", len(runs), runs[len(runs)-1].ReportDatetime)
	}
	// Runs keep appearing as the clock advances.
	early.clock.Advance(48 * time.Hour)
	early.token = early.newToken()
	if n := len(early.runs(DemoIHVReportID, "")); n != 31 {
		t.Errorf("two days later: %d runs, want 31", n)
	}
}

func TestRunStatusesAndFailures(t *testing.T) {
	h := newHarness(t, Options{Days: 90}, time.Date(2024, 3, 15, 2, 5, 0, 0, time.UTC))
	runs := h.runs(DemoIHVReportID, "")
	if got := runs[len(runs)-1]; got.ReportStatus != statusPending || got.ReportLocation != "" {
		t.Errorf("run 5 minutes old: %+v, want Pending without a link", got)
	}
	h.clock.Set(time.Date(2024, 3, 15, 2, 30, 0, 0, time.UTC))
	runs = h.runs(DemoIHVReportID, "")
	if got := runs[len(runs)-1]; got.ReportStatus != statusInProgress || got.ReportLocation != "" {
		t.Errorf("run 30 minutes old: %+v, want In Progress without a link", got)
	}
	if got := runs[len(runs)-2]; got.ReportStatus == statusInProgress || got.ReportStatus == statusPending {
		t.Errorf("day-old run: %+v, want finished", got)
	}
	h.clock.Set(time.Date(2024, 3, 15, 3, 0, 0, 0, time.UTC))
	failed, total := 0, 0
	for _, id := range []int{DemoIHVReportID, DemoOEMReportID} {
		runs := h.runs(id, "")
		if got := runs[len(runs)-1]; got.ReportStatus != statusCompleted {
			t.Errorf("report %d: newest finished run %+v, want Completed", id, got)
		}
		for _, r := range runs {
			total++
			if r.ReportStatus == statusFailed {
				failed++
			}
		}
	}
	if failed == 0 || failed > total/5 {
		t.Errorf("%d of %d runs failed, want a small non-zero share", failed, total)
	}

	success := newHarness(t, Options{StatusSuccess: true}, testNow)
	for _, r := range success.runs(DemoOEMReportID, "") {
		if r.ReportStatus != statusSuccess && r.ReportStatus != statusFailed {
			t.Errorf("StatusSuccess: run %+v", r)
		}
	}
}

func TestReportDataKeysAndDateFilter(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	env := h.api(http.StatusOK, http.MethodGet, "/v1.0/my/analytics/driver/reportdata/1?startDate=2024-03-10&endDate=2024-03-12", nil)
	var raw []map[string]any
	if err := json.Unmarshal(env.Data, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 3 {
		t.Fatalf("3 days inclusive: %d runs", len(raw))
	}
	for _, r := range raw {
		if len(r) != 3 || r["ReportDatetime"] == nil || r["ReportStatus"] == nil || r["ReportLocation"] == nil {
			t.Errorf("run keys: %v", r)
		}
	}
	if got := runDates(h.runs(1, "startDate=2024-03-12&endDate=2024-03-12")); !slices.Equal(got, []string{"2024-03-12T02:00:00"}) {
		t.Errorf("one day: %v", got)
	}
	if got := h.runs(1, "startDate=2024-03-14"); len(got) != 2 {
		t.Errorf("startDate only (endDate today): %d runs, want 2", len(got))
	}
	if got := h.runs(1, "endDate=2024-02-16"); len(got) != 1 {
		t.Errorf("endDate only: %d runs, want 1", len(got))
	}
	if got := h.runs(1, "startDate=2023-01-01&endDate=2023-12-31"); got == nil || len(got) != 0 {
		t.Errorf("window before the schedule: %v, want []", got)
	}
	h.apiError(http.StatusBadRequest, "BadRequest", "startDate", http.MethodGet, "/analytics/driver/reportdata/1?startDate=03/10/2024", nil)
	h.apiError(http.StatusBadRequest, "BadRequest", "endDate", http.MethodGet, "/analytics/driver/reportdata/1?endDate=2024-13-01", nil)
	h.apiError(http.StatusBadRequest, "BadRequest", "after endDate", http.MethodGet, "/analytics/driver/reportdata/1?startDate=2024-03-12&endDate=2024-03-10", nil)
	h.apiError(http.StatusNotFound, "NotFound", "report 42", http.MethodGet, "/analytics/driver/reportdata/42", nil)
}

func TestScheduleLifecycle(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	// templateId as a string, callbackUrl with other casing: both accepted.
	resp, raw := h.call(http.MethodPost, "/analytics/driver/report", `{"templateId":"1","CallbackURL":"https://example.com/hook",
		"schedule":{"startTime":"2024-03-10T00:00:00Z","recurrenceInterval":24,"recurrence":100}}`)
	if resp.StatusCode != http.StatusCreated || string(raw) != `{"data":{"reportId":3},"errors":[]}` {
		t.Fatalf("create: status %d body %s", resp.StatusCode, raw)
	}
	item := h.listReports()[3]
	if item.TemplateID != 1 || !item.IsActive || item.Schedule != `{"startTime":"2024-03-10T00:00:00Z","recurrenceInterval":24,"recurrence":100}` ||
		!listTimePattern.MatchString(item.CreatedDatetime) {
		t.Errorf("listed: %+v", item)
	}
	if n := len(h.runs(3, "")); n != 6 {
		t.Errorf("runs on 10..15 March: %d, want 6", n)
	}

	// Pause for three days: the runs of 16..18 March never happen.
	h.api(http.StatusCreated, http.MethodPost, "/analytics/driver/report/pause/3", nil)
	if h.listReports()[3].IsActive {
		t.Error("paused report is active")
	}
	h.clock.Advance(3 * 24 * time.Hour)
	h.token = h.newToken()
	h.api(http.StatusCreated, http.MethodPost, "/analytics/driver/report/resume/3", nil)
	if !h.listReports()[3].IsActive {
		t.Error("resumed report is not active")
	}
	h.clock.Advance(2 * 24 * time.Hour)
	h.token = h.newToken()
	var days []string
	for _, d := range runDates(h.runs(3, "")) {
		days = append(days, d[8:10])
	}
	if want := []string{"10", "11", "12", "13", "14", "15", "19", "20"}; !slices.Equal(days, want) {
		t.Errorf("run days %v, want %v", days, want)
	}

	// Edit with the docs' PascalCase body.
	resp, raw = h.call(http.MethodPost, "/analytics/driver/report/3", `{"templateId":2,
		"Schedule":{"StartTime":"2024-03-19T12:00:00Z","RecurrenceInterval":12,"Recurrence":2}}`)
	if resp.StatusCode != http.StatusCreated || string(raw) != `{"data":{"reportId":3},"errors":[]}` {
		t.Fatalf("edit: status %d body %s", resp.StatusCode, raw)
	}
	item = h.listReports()[3]
	if item.TemplateID != 2 || item.Schedule != `{"startTime":"2024-03-19T12:00:00Z","recurrenceInterval":12,"recurrence":2}` {
		t.Errorf("edited: %+v", item)
	}
	if got := runDates(h.runs(3, "")); !slices.Equal(got, []string{"2024-03-19T12:00:00", "2024-03-20T00:00:00"}) {
		t.Errorf("edited schedule's runs (recurrence 2): %v", got)
	}

	h.apiError(http.StatusNotFound, "NotFound", "report 9", http.MethodPost, "/analytics/driver/report/9", `{"templateId":1,"schedule":{"startTime":"2024-03-19T12:00:00Z","recurrenceInterval":12,"recurrence":2}}`)
	h.apiError(http.StatusNotFound, "NotFound", "report 9", http.MethodPost, "/analytics/driver/report/pause/9", nil)
	h.apiError(http.StatusMethodNotAllowed, "MethodNotAllowed", "GET", http.MethodGet, "/analytics/driver/report/pause/3", nil)
}

func TestScheduleValidation(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	tests := []struct {
		body string
		want string
	}{
		{`{"schedule":{"startTime":"2024-03-10T00:00:00Z","recurrenceInterval":24,"recurrence":1}}`, "templateId is required"},
		{`{"templateId":"x","schedule":{"startTime":"2024-03-10T00:00:00Z","recurrenceInterval":24,"recurrence":1}}`, "templateId must be an integer"},
		{`{"templateId":77,"schedule":{"startTime":"2024-03-10T00:00:00Z","recurrenceInterval":24,"recurrence":1}}`, "templateId 77 does not exist"},
		{`{"templateId":1}`, "schedule is required"},
		{`{"templateId":1,"schedule":{"recurrenceInterval":24,"recurrence":1}}`, "schedule.startTime is required"},
		{`{"templateId":1,"schedule":{"startTime":"2024-03-10 00:00","recurrenceInterval":24,"recurrence":1}}`, "schedule.startTime"},
		{`{"templateId":1,"schedule":{"startTime":"2024-03-10T00:00:00Z","recurrenceInterval":11,"recurrence":1}}`, "schedule.recurrenceInterval must be between 12"},
		{`{"templateId":1,"schedule":{"startTime":"2024-03-10T00:00:00Z","recurrence":1}}`, "schedule.recurrenceInterval is required"},
		{`{"templateId":1,"schedule":{"startTime":"2024-03-10T00:00:00Z","recurrenceInterval":12,"recurrence":0}}`, "schedule.recurrence must be between 1"},
		{`{"templateId":1,"callbackUrl":"not a url","schedule":{"startTime":"2024-03-10T00:00:00Z","recurrenceInterval":12,"recurrence":1}}`, "callbackUrl"},
	}
	for _, tt := range tests {
		h.apiError(http.StatusBadRequest, "BadRequest", tt.want, http.MethodPost, "/analytics/driver/report", tt.body)
	}
	if n := len(h.listReports()); n != 2 {
		t.Errorf("%d reports after invalid creates, want the 2 demo ones", n)
	}
}

func TestDemoNewestFinishedRunNeverFails(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	// Find a future run of the demo schedule that the failure hash picks.
	const newestAtStart = 28
	k := int64(newestAtStart)
	for hashOf(h.em.seed, tagRunFailure, DemoIHVReportID, uint64(k))%failureRate != 0 {
		k++
	}
	h.clock.Advance(time.Duration(k-newestAtStart) * 24 * time.Hour)
	h.token = h.newToken()
	runs := h.runs(DemoIHVReportID, "")
	if got := runs[len(runs)-1]; got.ReportStatus != statusCompleted {
		t.Fatalf("newest finished run %+v, want Completed", got)
	}
	// A day later it is no longer the newest, and fails.
	h.clock.Advance(24 * time.Hour)
	h.token = h.newToken()
	runs = h.runs(DemoIHVReportID, "")
	if got := runs[len(runs)-2]; got.ReportStatus != statusFailed || got.ReportLocation != "" {
		t.Errorf("the same run a day later: %+v, want Failed", got)
	}
}
