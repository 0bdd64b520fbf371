package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Schedule limits. The docs set the minimum interval; the maxima are the
// emulator's, to keep run arithmetic far from overflow.
const (
	minRecurrenceInterval = 12            // hours
	maxRecurrenceInterval = 24 * 366 * 10 // hours
	maxRecurrence         = 1_000_000
	minStartYear          = 2000
	maxStartYear          = 2199
)

// schedule is when a report runs: at start + k*interval for k < recurrence.
type schedule struct {
	start      time.Time // UTC, whole seconds
	interval   int       // hours
	recurrence int
}

// scheduleJSON is the schedule as GET report echoes it (JSON-encoded into a string).
type scheduleJSON struct {
	StartTime          string `json:"startTime"`
	RecurrenceInterval int    `json:"recurrenceInterval"`
	Recurrence         int    `json:"recurrence"`
}

// pauseSpan is a time during which a report was paused; to is zero while
// the report is still paused.
type pauseSpan struct{ from, to time.Time }

// report is a scheduled report.
type report struct {
	id          int
	templateID  int
	sched       schedule
	callbackURL string // stored only: the emulator sends no notifications
	demo        bool   // a demo schedule: its newest finished run never fails
	pauses      []pauseSpan
	created     time.Time
	modified    time.Time
}

// reportItem is an element of GET report.
type reportItem struct {
	ReportID         int    `json:"reportId"`
	TemplateID       int    `json:"templateId"`
	Schedule         string `json:"schedule"`
	IsActive         bool   `json:"isActive"`
	CreatedDatetime  string `json:"createdDatetime"`
	ModifiedDatetime string `json:"modifiedDatetime"`
}

// reportBody is the body of POST report and POST report/{id}. Keys match
// case-insensitively, so the edit example's PascalCase works too; ids and
// counts may be numbers or strings holding numbers.
type reportBody struct {
	TemplateID json.RawMessage `json:"templateId"`
	Schedule   *struct {
		StartTime          string          `json:"startTime"`
		RecurrenceInterval json.RawMessage `json:"recurrenceInterval"`
		Recurrence         json.RawMessage `json:"recurrence"`
	} `json:"schedule"`
	CallbackURL string `json:"callbackUrl"`
}

// createReport serves POST report: 201 {"data":{"reportId":N}}. An unknown
// template is a 400, as the template id is part of the body.
func (e *Emulator) createReport(w http.ResponseWriter, r *http.Request) error {
	rep, err := readReport(w, r)
	if err != nil {
		return err
	}
	if err := e.addReport(rep); err != nil {
		return err
	}
	writeData(w, http.StatusCreated, map[string]int{"reportId": rep.id})
	return nil
}

// addReport assigns rep an id and stores it, if its template exists.
func (e *Emulator) addReport(rep *report) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.templates[rep.templateID]; !ok {
		return badRequest("templateId %d does not exist", rep.templateID)
	}
	rep.id = e.nextReportID
	e.nextReportID++
	rep.created = e.now()
	rep.modified = rep.created
	e.reports[rep.id] = rep
	return nil
}

// editReport serves POST report/{id}: replaces the template id, the
// schedule and the callback URL. Runs are always derived from the current
// schedule, so runs of the old schedule disappear from reportdata.
func (e *Emulator) editReport(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id", "reportId")
	if err != nil {
		return err
	}
	next, err := readReport(w, r)
	if err != nil {
		return err
	}
	if err := e.replaceReport(id, next); err != nil {
		return err
	}
	writeData(w, http.StatusCreated, map[string]int{"reportId": id})
	return nil
}

// replaceReport gives report id the template, schedule and callback of next.
func (e *Emulator) replaceReport(id int, next *report) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	rep, ok := e.reports[id]
	switch {
	case !ok:
		return notFound("report %d does not exist", id)
	case e.templates[next.templateID] == nil:
		return badRequest("templateId %d does not exist", next.templateID)
	}
	rep.templateID, rep.sched, rep.callbackURL = next.templateID, next.sched, next.callbackURL
	rep.modified = e.now()
	return nil
}

// listReports serves GET report: all scheduled reports in id order. The
// docs list 201 for it, which is taken to be a doc error: it answers 200.
func (e *Emulator) listReports(w http.ResponseWriter, r *http.Request) error {
	e.mu.Lock()
	items := make([]reportItem, 0, len(e.reports))
	for _, rep := range e.reports {
		items = append(items, reportItem{
			ReportID:         rep.id,
			TemplateID:       rep.templateID,
			Schedule:         e.echoSchedule(rep.sched),
			IsActive:         rep.active(),
			CreatedDatetime:  rep.created.Format(listTimeLayout),
			ModifiedDatetime: rep.modified.Format(listTimeLayout),
		})
	}
	e.mu.Unlock()
	slices.SortFunc(items, func(a, b reportItem) int { return a.ReportID - b.ReportID })
	return writeList(e, w, r, items)
}

// pauseReport serves POST report/pause/{id}. Runs scheduled while a report
// is paused never happen. Pausing a paused report changes nothing.
func (e *Emulator) pauseReport(w http.ResponseWriter, r *http.Request) error {
	return e.setPaused(w, r, true)
}

// resumeReport serves POST report/resume/{id}. Resuming an active report
// changes nothing.
func (e *Emulator) resumeReport(w http.ResponseWriter, r *http.Request) error {
	return e.setPaused(w, r, false)
}

func (e *Emulator) setPaused(w http.ResponseWriter, r *http.Request, pause bool) error {
	id, err := pathID(r, "id", "reportId")
	if err != nil {
		return err
	}
	e.mu.Lock()
	rep, ok := e.reports[id]
	if ok {
		now := e.now()
		switch {
		case pause && rep.active():
			rep.pauses = append(rep.pauses, pauseSpan{from: now})
		case !pause && !rep.active():
			rep.pauses[len(rep.pauses)-1].to = now
		}
	}
	e.mu.Unlock()
	if !ok {
		return notFound("report %d does not exist", id)
	}
	writeData(w, http.StatusCreated, map[string]int{"reportId": id})
	return nil
}

// readReport decodes and validates the body of POST report and POST
// report/{id}. The template's existence is checked by the caller.
func readReport(w http.ResponseWriter, r *http.Request) (*report, error) {
	var body reportBody
	if err := decodeBody(w, r, &body); err != nil {
		return nil, err
	}
	templateID, ok, err := intField(body.TemplateID, "templateId")
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, badRequest("templateId is required")
	case body.Schedule == nil:
		return nil, badRequest("schedule is required: {startTime, recurrenceInterval, recurrence}")
	case body.Schedule.StartTime == "":
		return nil, badRequest("schedule.startTime is required, as yyyy-MM-ddTHH:mm:ssZ")
	}
	start, err := time.Parse(time.RFC3339, strings.TrimSpace(body.Schedule.StartTime))
	if err != nil {
		return nil, badRequest("schedule.startTime %q is not a time like 2018-07-24T00:00:00Z", body.Schedule.StartTime)
	}
	if start.Year() < minStartYear || start.Year() > maxStartYear {
		return nil, badRequest("schedule.startTime %q must be in the years %d to %d", body.Schedule.StartTime, minStartYear, maxStartYear)
	}
	interval, ok, err := intField(body.Schedule.RecurrenceInterval, "schedule.recurrenceInterval")
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, badRequest("schedule.recurrenceInterval is required (hours between runs, at least %d)", minRecurrenceInterval)
	case interval < minRecurrenceInterval || interval > maxRecurrenceInterval:
		return nil, badRequest("schedule.recurrenceInterval must be between %d and %d hours, got %d", minRecurrenceInterval, maxRecurrenceInterval, interval)
	}
	recurrence, ok, err := intField(body.Schedule.Recurrence, "schedule.recurrence")
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, badRequest("schedule.recurrence is required (the number of runs, at least 1)")
	case recurrence < 1 || recurrence > maxRecurrence:
		return nil, badRequest("schedule.recurrence must be between 1 and %d, got %d", maxRecurrence, recurrence)
	}
	if body.CallbackURL != "" {
		u, err := url.Parse(body.CallbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, badRequest("callbackUrl %q is not an absolute http(s) URL", body.CallbackURL)
		}
	}
	return &report{
		templateID:  templateID,
		sched:       schedule{start: start.UTC().Truncate(time.Second), interval: interval, recurrence: recurrence},
		callbackURL: body.CallbackURL,
	}, nil
}

// active reports whether the report is not paused.
func (rep *report) active() bool {
	return len(rep.pauses) == 0 || !rep.pauses[len(rep.pauses)-1].to.IsZero()
}

// pausedAt reports whether the report was paused at t.
func (rep *report) pausedAt(t time.Time) bool {
	for _, p := range rep.pauses {
		if !t.Before(p.from) && (p.to.IsZero() || t.Before(p.to)) {
			return true
		}
	}
	return false
}
