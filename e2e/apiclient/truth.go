package apiclient

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DateLayout formats failure dates as map keys and Hive partition values.
const DateLayout = "2006-01-02"

// periodDays maps dateRange.reportPeriod to the failure dates a run covers.
var periodDays = map[string]int{
	"yesterday":  1,
	"last3days":  3,
	"last7days":  7,
	"last10days": 10,
	"last15days": 15,
	"last30days": 30,
	"last60days": 60,
	"last90days": 90,
}

// PeriodDays returns the days a reportPeriod covers, or 0 if unknown.
func PeriodDays(period string) int { return periodDays[strings.ToLower(strings.TrimSpace(period))] }

// Totals are the aggregates of one failure date that the lake must match.
type Totals struct {
	Rows       int64
	EventCount int64 // SUM(EventCount)
	// FailureMillis is SUM of FailureDateTime as Unix milliseconds (the
	// naive timestamps taken as UTC): a check on timestamp conversion.
	FailureMillis int64
}

// Truth is what one dataset's partitions must hold on a given day.
type Truth struct {
	View        string
	ReportID    int64
	Period      int       // failure dates a run covers
	Today       time.Time // the UTC day the truth was computed for
	WindowFirst time.Time // oldest failure date kept
	// Days holds, for each kept failure date with at least one row, the
	// totals of the rows of the newest finished run covering it.
	Days map[string]Totals
	// Owner is, for each kept date, the time of the newest finished run
	// covering it (also for owned dates that have no rows).
	Owner map[string]time.Time
	// What was seen on the wire, to prove a variant is really exercised.
	Statuses   map[string]int
	Gzipped    int // files that were gzip-compressed
	Delimiters map[rune]int
	Files      int            // files downloaded
	DateForms  map[string]int // FailureDate spellings seen (see DateForm)
}

// FindReport returns the scheduled report that exports a view: the oldest
// active schedule of a template of that view (paused ones only if no active
// one exists), and its template.
func (c *Client) FindReport(ctx context.Context, view string) (Report, Template, error) {
	templates, err := c.Templates(ctx)
	if err != nil {
		return Report{}, Template{}, err
	}
	byID := map[int64]Template{}
	for _, t := range templates {
		byID[t.ID] = t
	}
	reports, err := c.Reports(ctx)
	if err != nil {
		return Report{}, Template{}, err
	}
	var best *Report
	for i, r := range reports {
		t, ok := byID[r.TemplateID]
		if !ok || !strings.EqualFold(t.View, view) {
			continue
		}
		if best == nil || (r.Active && !best.Active) || (r.Active == best.Active && r.ID < best.ID) {
			best = &reports[i]
		}
	}
	if best == nil {
		return Report{}, Template{}, fmt.Errorf("no scheduled report of view %s", view)
	}
	return *best, byID[best.TemplateID], nil
}

// GroundTruth computes, from the API alone, what a lake exported at time
// now with the given retention must hold for the view's report:
//
//   - a run at time R of a LastNDays report covers the failure dates
//     R.date-N .. R.date-1;
//   - a failure date D is kept on UTC day T iff T - D < retentionDays;
//   - each kept date is owned by the newest finished (Completed or Success)
//     run covering it, and its partition holds exactly that run's rows whose
//     FailureDate is D.
func (c *Client) GroundTruth(ctx context.Context, view string, retentionDays int, now time.Time) (*Truth, error) {
	rep, tmpl, err := c.FindReport(ctx, view)
	if err != nil {
		return nil, err
	}
	period := PeriodDays(tmpl.Period)
	if period == 0 {
		return nil, fmt.Errorf("report %d: unknown reportPeriod %q", rep.ID, tmpl.Period)
	}
	today := now.UTC().Truncate(24 * time.Hour)
	tr := &Truth{
		View:        view,
		ReportID:    rep.ID,
		Period:      period,
		Today:       today,
		WindowFirst: today.AddDate(0, 0, -(retentionDays - 1)),
		Days:        map[string]Totals{},
		Owner:       map[string]time.Time{},
		Statuses:    map[string]int{},
		Delimiters:  map[rune]int{},
		DateForms:   map[string]int{},
	}
	// Any run that can cover a kept date was generated after WindowFirst.
	runs, err := c.Runs(ctx, rep.ID, tr.WindowFirst, today)
	if err != nil {
		return nil, err
	}
	owner := map[string]Run{}
	for _, run := range runs {
		tr.Statuses[run.Status]++
		if !run.Finished() {
			continue
		}
		runDay := run.Time.Truncate(24 * time.Hour)
		for d := runDay.AddDate(0, 0, -period); d.Before(runDay); d = d.AddDate(0, 0, 1) {
			if d.Before(tr.WindowFirst) {
				continue
			}
			k := d.Format(DateLayout)
			if cur, ok := owner[k]; !ok || run.Time.After(cur.Time) {
				owner[k] = run
			}
		}
	}
	// Download each owning run once, and keep the rows of the dates it owns.
	byRun := map[time.Time][]string{}
	for d, run := range owner {
		tr.Owner[d] = run.Time
		byRun[run.Time] = append(byRun[run.Time], d)
	}
	times := make([]time.Time, 0, len(byRun))
	for t := range byRun {
		times = append(times, t)
	}
	slices.SortFunc(times, time.Time.Compare)
	for _, t := range times {
		dates := byRun[t]
		run := owner[dates[0]]
		if run.Location == "" {
			return nil, fmt.Errorf("report %d run %s is %s but has no ReportLocation", rep.ID, run.Time.Format(time.RFC3339), run.Status)
		}
		body, err := c.Download(ctx, run.Location)
		if err != nil {
			return nil, fmt.Errorf("report %d run %s: %w", rep.ID, run.Time.Format(time.RFC3339), err)
		}
		f, err := ParseFile(body)
		if err != nil {
			return nil, fmt.Errorf("report %d run %s: %w", rep.ID, run.Time.Format(time.RFC3339), err)
		}
		tr.Files++
		tr.Delimiters[f.Delimiter]++
		if f.Gzipped {
			tr.Gzipped++
		}
		if err := tr.add(f, dates); err != nil {
			return nil, fmt.Errorf("report %d run %s: %w", rep.ID, run.Time.Format(time.RFC3339), err)
		}
	}
	return tr, nil
}

// add accumulates f's rows whose FailureDate is one of dates.
func (tr *Truth) add(f *File, dates []string) error {
	iDate, iCount, iTime := f.Column("FailureDate"), f.Column("EventCount"), f.Column("FailureDateTime")
	if iDate < 0 || iCount < 0 || iTime < 0 {
		return fmt.Errorf("header lacks FailureDate, FailureDateTime or EventCount: %q", f.Header)
	}
	want := map[string]bool{}
	for _, d := range dates {
		want[d] = true
	}
	for n, rec := range f.Rows {
		line := n + 2 // 1-based, after the header
		d, err := ParseFailureDate(rec[iDate])
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		tr.DateForms[DateForm(rec[iDate])]++
		k := d.Format(DateLayout)
		if !want[k] {
			continue
		}
		cnt, err := ParseCount(rec[iCount])
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		ts, err := ParseTimestamp(rec[iTime])
		if err != nil {
			return fmt.Errorf("line %d: FailureDateTime: %w", line, err)
		}
		t := tr.Days[k]
		t.Rows++
		t.EventCount += cnt
		t.FailureMillis += ts.UnixMilli()
		tr.Days[k] = t
	}
	return nil
}
