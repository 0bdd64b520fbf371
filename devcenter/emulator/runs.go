package emulator

import (
	"net/http"
	"net/url"
	"time"
)

// Run timing and outcome. Runs are at least 12 hours apart, so only the
// newest run can be younger than pendingAge.
const (
	pendingAge   = 10 * time.Minute // a run younger than this is Pending
	generateTime = time.Hour        // a run younger than this is In Progress
	failureRate  = 13               // about one run in failureRate fails
	lookBack     = 90 * 24 * time.Hour
)

// The documented ReportStatus values, plus "Success" as observed in the wild.
const (
	statusPending    = "Pending"
	statusInProgress = "In Progress"
	statusFailed     = "Failed"
	statusCompleted  = "Completed"
	statusSuccess    = "Success"
)

// runView is an element of GET reportdata/{id}; its keys are PascalCase, as
// documented.
type runView struct {
	ReportDatetime string `json:"ReportDatetime"`
	ReportStatus   string `json:"ReportStatus"`
	ReportLocation string `json:"ReportLocation"`
}

// reportData serves GET reportdata/{id}?startDate=yyyy-mm-dd&endDate=yyyy-mm-dd:
// the runs of the report scheduled within both dates (whole UTC days,
// inclusive) and not after now, oldest first. endDate defaults to today,
// startDate to 90 days before endDate.
//
// A run younger than 10 minutes is Pending, one younger than an hour In
// Progress. About one in 13 finished runs is Failed, by a hash of (seed,
// report, run) — except the newest finished run of a demo schedule. The
// others are Completed (or Success, see Options.StatusSuccess) and carry a
// download link valid for LinkTTL from this call.
func (e *Emulator) reportData(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id", "reportId")
	if err != nil {
		return err
	}
	now := e.now()
	from, to, err := runWindow(r.URL.Query(), now)
	if err != nil {
		return err
	}

	e.mu.Lock()
	rep, ok := e.reports[id]
	if !ok {
		e.mu.Unlock()
		return notFound("report %d does not exist", id)
	}
	runs := []runView{}
	newestFinished, hasFinished := rep.newestRun(now.Add(-generateTime))
	from, to, open := e.runBounds(from, to)
	if to.After(now) {
		to = now
	}
	if first, last, ok := rep.sched.runIndexes(from, to); ok && open {
		for k := first; k <= last; k++ {
			at := rep.sched.runAt(k)
			if rep.pausedAt(at) {
				continue
			}
			run := runView{
				ReportDatetime: at.Format(runTimeLayout),
				ReportStatus:   e.runStatus(rep, k, now, hasFinished && k == newestFinished),
			}
			if run.ReportStatus == statusCompleted || run.ReportStatus == statusSuccess {
				run.ReportLocation = e.reportLink(r, rep.id, at, now)
			}
			runs = append(runs, run)
		}
	}
	e.mu.Unlock()
	return writeList(e, w, r, runs)
}

// runWindow resolves reportdata's startDate and endDate into the first and
// last instants of the window.
func runWindow(q url.Values, now time.Time) (from, to time.Time, err error) {
	end := now.Truncate(24 * time.Hour)
	if s := q.Get("endDate"); s != "" {
		if end, err = time.Parse(queryDateLayout, s); err != nil {
			return from, to, badRequest("endDate %q is not a date like 2018-01-31 (yyyy-mm-dd)", s)
		}
	}
	start := end.Add(-lookBack)
	if s := q.Get("startDate"); s != "" {
		if start, err = time.Parse(queryDateLayout, s); err != nil {
			return from, to, badRequest("startDate %q is not a date like 2018-01-31 (yyyy-mm-dd)", s)
		}
	}
	if start.After(end) {
		return from, to, badRequest("startDate %s is after endDate %s", start.Format(queryDateLayout), end.Format(queryDateLayout))
	}
	return start, end.Add(24*time.Hour - time.Second), nil
}

// runStatus is the status of run k at now. newestFinished says whether k
// is the report's newest finished run.
func (e *Emulator) runStatus(rep *report, k int64, now time.Time, newestFinished bool) string {
	age := now.Sub(rep.sched.runAt(k))
	switch {
	case age < pendingAge:
		return statusPending
	case age < generateTime:
		return statusInProgress
	case hashOf(e.seed, tagRunFailure, uint64(rep.id), uint64(k))%failureRate == 0 && !(rep.demo && newestFinished):
		return statusFailed
	case e.opts.StatusSuccess:
		return statusSuccess
	default:
		return statusCompleted
	}
}

// finishedRun returns the file to serve for report id's run at `at`, if that
// run exists and has finished successfully by now.
func (e *Emulator) finishedRun(id int, at time.Time) (fileSpec, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rep, ok := e.reports[id]
	if !ok {
		return fileSpec{}, false
	}
	k, ok := rep.sched.runIndex(at)
	now := e.now()
	if !ok || at.After(now) || rep.pausedAt(at) {
		return fileSpec{}, false
	}
	newest, hasNewest := rep.newestRun(now.Add(-generateTime))
	if status := e.runStatus(rep, k, now, hasNewest && k == newest); status != statusCompleted && status != statusSuccess {
		return fileSpec{}, false
	}
	t := e.templates[rep.templateID]
	return fileSpec{
		key:    fileKey{reportID: id, run: at.Unix(), templateID: t.id, revision: t.revision},
		view:   t.view,
		query:  t.query,
		period: t.period,
		runDay: dayNumber(at),
	}, true
}

// runAt is the time of run k.
func (s schedule) runAt(k int64) time.Time {
	return time.Unix(s.start.Unix()+k*int64(s.interval)*3600, 0).UTC()
}

// runIndex returns k such that runAt(k) == t, if t is a scheduled run time.
func (s schedule) runIndex(t time.Time) (int64, bool) {
	step := int64(s.interval) * 3600
	offset := t.Unix() - s.start.Unix()
	if offset < 0 || offset%step != 0 || t.Nanosecond() != 0 || offset/step >= int64(s.recurrence) {
		return 0, false
	}
	return offset / step, true
}

// runIndexes returns the indexes of the first and last runs scheduled in
// [from, to], or ok false if there are none. Pauses are not considered.
func (s schedule) runIndexes(from, to time.Time) (first, last int64, ok bool) {
	step := int64(s.interval) * 3600
	start := s.start.Unix()
	lo, hi := from.Unix()-start, to.Unix()-start
	if from.Nanosecond() != 0 {
		lo++ // runs fall on whole seconds
	}
	if hi < 0 {
		return 0, 0, false
	}
	first = max(0, (lo+step-1)/step) // division truncates towards 0, so lo < 0 gives 0
	last = min(hi/step, int64(s.recurrence)-1)
	return first, last, first <= last
}

// newestRun returns the index of the newest run scheduled at or before t
// that a pause did not skip.
func (rep *report) newestRun(t time.Time) (int64, bool) {
	_, last, ok := rep.sched.runIndexes(rep.sched.start, t)
	if !ok {
		return 0, false
	}
	for k := last; k >= 0; k-- {
		if !rep.pausedAt(rep.sched.runAt(k)) {
			return k, true
		}
	}
	return 0, false
}
