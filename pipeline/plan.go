package pipeline

import (
	"context"
	"errors"
	"fmt"
	"github.com/hdc-export/hdc-export/internal/lake"
	"slices"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/sinks"
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
	// endsOnRunDay is the reading of LastNDays first and last follow (see
	// coverage).
	endsOnRunDay bool
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
// date (a Last7Days run on the 21st covers the 14th..20th), or, if
// endsOnRunDay, the period's days ending with the run's date (the 15th..
// 21st); for an undated one, the run's own date.
//
// The reference does not say which reading of LastNDays the service
// follows. The rule:
//   - A dataset starts with the documented reading (the N days before the
//     run's day). Each file is checked against it. A file whose in-window
//     rows all fall within the other reading's days, and not within this
//     one's, switches the dataset to the other reading: the switch is
//     recorded in the lake (lake.Coverage), warned about with the run id,
//     and the report's runs are planned again before anything of that
//     run is committed (see Runner.export).
//   - Rows dated in the window but outside the days their run is taken to
//     cover, under the reading in force, are never dropped silently: they
//     are counted (rows_outside_coverage) and warned about with the run
//     id, and kept when no newer run covers their date (a newer run's
//     rows for it replace them).
//   - A file whose dates reach k days past its run's coverage does not
//     empty the k oldest dates it owns but has no rows for (see leftOut).
func coverage(rc ReportConfig, run devcenter.Run, endsOnRunDay bool) (first, last lake.Date) {
	d := lake.DateOf(run.Time)
	if !rc.Dated() {
		return d, d
	}
	if endsOnRunDay {
		d++
	}
	return d - lake.Date(devcenter.PeriodDays(rc.Template.DateRange.ReportPeriod)), d - 1
}

// plan lists the report's runs and decides which still need ingesting: for
// each date in the window, the newest finished run covering it owns it; a
// run that owns no date is skipped without download, and a run with a
// commit record is done.
func (r *Runner) plan(ctx context.Context, rc ReportConfig, reportID devcenter.ID, w lake.Window) (runPlan, error) {
	now := r.now()
	var reading lake.Coverage
	if err := lake.GetJSON(ctx, r.Sink, lake.CoverageKey(rc.Name), &reading); err != nil && !errors.Is(err, sinks.ErrNotFound) {
		return runPlan{}, fmt.Errorf("discover: read coverage record: %w", err)
	}
	ends := reading.EndsOnRunDay
	// Runs older than the window plus the period cannot cover a kept date.
	start := w.First.Time().AddDate(0, 0, 1)
	runs, err := r.API.ReportData(ctx, reportID, start, now)
	if err != nil {
		return runPlan{}, fmt.Errorf("discover: %w", err)
	}
	var finished []devcenter.Run
	for _, run := range runs {
		_, last := coverage(rc, run, ends)
		if run.Status == devcenter.StatusCompleted && run.Location != "" && w.Contains(last) {
			finished = append(finished, run)
		}
	}
	owner := map[lake.Date]int{} // date → index in finished of its newest run
	for i, run := range finished {
		first, last := coverage(rc, run, ends)
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
		first, last := coverage(rc, run, ends)
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
			p.jobs = append(p.jobs, job{run: run, owns: owns, first: first, last: last, keeps: keeps, endsOnRunDay: ends})
		}
	}
	slices.SortFunc(p.jobs, func(a, b job) int { return a.run.Time.Compare(b.run.Time) })
	return p, nil
}
