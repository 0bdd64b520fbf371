package pipeline

import (
	"context"
	"fmt"
	"github.com/hdc-export/hdc-export/internal/lake"
	"slices"

	"github.com/hdc-export/hdc-export/devcenter"
)

// job is one run to ingest and the dates it is to write.
type job struct {
	run devcenter.Run
	// owns are the in-window dates for which this run is the newest
	// finished run. A date it owns but has no rows for becomes an empty
	// partition (its old data is removed), unless the file's dates show
	// that it covers other days (see Runner.ingest).
	owns map[lake.Date]bool
	// first and last bound the dates the run is taken to cover (see
	// coverage).
	first, last lake.Date
	// keeps are the in-window dates outside first..last that no newer
	// finished run covers: rows of those dates, if the file holds any, are
	// kept rather than lost (see Runner.route).
	keeps map[lake.Date]bool
}

// runPlan is the discovery result for one report.
type runPlan struct {
	jobs       []job // oldest first
	seen       int   // finished runs that cover the window
	committed  int   // of those, already committed
	superseded int   // of those, owning no date: newer runs cover them all
}

// coverage returns the partition dates a run of rc writes: for a dated
// report, the failure dates it covers, the period's days before the run's
// date (a Last7Days run on the 21st covers the 14th..20th); for an undated
// one, the run's own date.
//
// That reading of LastNDays is an assumption (the reference does not say
// whether the N days end before or with the run's day), and it is checked
// against each file: rows dated in the window but outside it are counted
// (rows_outside_coverage), warned about with the run id, and kept when no
// newer run covers their date; and a file whose dates reach past the
// assumed coverage does not empty the dates it leaves out at the other
// end (see Runner.ingest).
func coverage(rc ReportConfig, run devcenter.Run) (first, last lake.Date) {
	d := lake.DateOf(run.Time)
	if !rc.Dated() {
		return d, d
	}
	return d - lake.Date(devcenter.PeriodDays(rc.Template.DateRange.ReportPeriod)), d - 1
}

// plan lists the report's runs and decides which still need ingesting: for
// each date in the window, the newest finished run covering it owns it; a
// run that owns no date is skipped without download, and a run with a
// commit record is done.
func (r *Runner) plan(ctx context.Context, rc ReportConfig, reportID devcenter.ID, w lake.Window) (runPlan, error) {
	now := r.now()
	// Runs older than the window plus the period cannot cover a kept date.
	start := w.First.Time().AddDate(0, 0, 1)
	runs, err := r.API.ReportData(ctx, reportID, start, now)
	if err != nil {
		return runPlan{}, fmt.Errorf("discover: %w", err)
	}
	var finished []devcenter.Run
	for _, run := range runs {
		_, last := coverage(rc, run)
		if run.Status == devcenter.StatusCompleted && run.Location != "" && w.Contains(last) {
			finished = append(finished, run)
		}
	}
	owner := map[lake.Date]int{} // date → index in finished of its newest run
	for i, run := range finished {
		first, last := coverage(rc, run)
		for d := max(first, w.First); d <= last; d++ {
			if j, ok := owner[d]; !ok || !finished[j].Time.After(run.Time) {
				owner[d] = i
			}
		}
	}
	p := runPlan{seen: len(finished)}
	for i, run := range finished {
		owns, keeps := map[lake.Date]bool{}, map[lake.Date]bool{}
		for d, j := range owner {
			if j == i {
				owns[d] = true
			}
		}
		first, last := coverage(rc, run)
		for d := w.First; d <= w.Last; d++ {
			if j, ok := owner[d]; (d < first || d > last) && (!ok || finished[j].Time.Before(run.Time)) {
				keeps[d] = true
			}
		}
		done, err := lake.Exists(ctx, r.Sink, lake.CommitKey(rc.Name, int64(reportID), run.Time))
		if err != nil {
			return runPlan{}, fmt.Errorf("discover: read commit record: %w", err)
		}
		switch {
		case done:
			p.committed++
		case len(owns) == 0:
			p.superseded++
		default:
			p.jobs = append(p.jobs, job{run: run, owns: owns, first: first, last: last, keeps: keeps})
		}
	}
	slices.SortFunc(p.jobs, func(a, b job) int { return a.run.Time.Compare(b.run.Time) })
	return p, nil
}
