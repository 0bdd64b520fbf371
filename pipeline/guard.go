package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/schema"
	"github.com/hdc-export/hdc-export/sinks"
)

// ErrUnknownColumns marks a report file with more undocumented columns
// than limits.max_unknown_columns. Nothing of the run is committed.
var ErrUnknownColumns = errors.New("too many undocumented columns")

// checkUnknownColumns fails a run whose header adds more undocumented
// columns than allowed, before the schema is checked, so that the dataset's
// schema record never takes them in.
func (r *Runner) checkUnknownColumns(file string, l *schema.Layout) error {
	n := 0
	for _, f := range l.Fields {
		if f.Extra {
			n++
		}
	}
	if max := r.Config.Limits.MaxUnknownColumns; n > max {
		return fmt.Errorf("%s: %w: the header has %d columns the %s dataset does not document, above limits.max_unknown_columns %d: nothing of this run is committed and the schema record is unchanged (raise the limit if the columns are wanted)",
			file, ErrUnknownColumns, n, l.Dataset.View, max)
	}
	return nil
}

// warnCoverage warns, with the run id and counts only, about rows dated
// outside the days the run is taken to cover.
func (r *Runner) warnCoverage(rc ReportConfig, run string, c *lake.Commit, j job) {
	if c.Uncovered == 0 {
		return
	}
	reading := "the N days before the run's day"
	if j.endsOnRunDay {
		reading = "the N days ending with the run's day"
	}
	r.Log.Warn("the report file holds rows dated outside the days its run is taken to cover: they are kept where no newer run covers their date, and counted in rows_outside_coverage",
		"report", rc.Name, "run", run, "rows", c.Uncovered, "period", rc.Template.DateRange.ReportPeriod, "reading", reading)
}

// errReadingChanged: a run's file showed that the dataset's files follow
// the other reading of LastNDays; the switch is recorded and the report's
// runs must be planned again (see coverage). Nothing of the run was
// committed.
var errReadingChanged = errors.New("the report's files follow the other reading of LastNDays: its runs are planned again")

// learnReading records the other reading of LastNDays for the dataset
// when the run's in-window rows all fall within the other reading's days
// and not within those of the reading in force (see coverage), and
// reports whether it did.
func (r *Runner) learnReading(ctx context.Context, rc ReportConfig, run string, rt *router) (bool, error) {
	j := rt.j
	if !rc.Dated() || rt.newest == noDate || (rt.oldest >= j.first && rt.newest <= j.last) {
		return false, nil
	}
	shift := lake.Date(1)
	if j.endsOnRunDay {
		shift = -1
	}
	if rt.oldest < j.first+shift || rt.newest > j.last+shift {
		return false, nil // neither reading: counted and kept by the rules in force
	}
	if err := r.fence(ctx); err != nil {
		return false, err
	}
	rec := lake.Coverage{Dataset: rc.Name, EndsOnRunDay: !j.endsOnRunDay}
	if err := lake.PutJSON(ctx, r.Sink, lake.CoverageKey(rc.Name), rec); err != nil {
		return false, fmt.Errorf("write coverage record: %w", err)
	}
	r.Log.Warn("the report's files follow the other reading of LastNDays: recorded in the lake, and the report's runs are planned again",
		"report", rc.Name, "run", run, "ends_on_run_day", rec.EndsOnRunDay, "rows_outside_coverage", rt.c.Uncovered)
	return true, nil
}

// leftOut returns the owned dates a run does not empty although it has no
// rows for them: when the file's newest in-window date is k days past the
// run's assumed coverage, the file covers days shifted by k (LastNDays
// read as the N days ending with the run's day, for k = 1), and the k
// oldest dates of the assumed coverage are not its to empty. Their
// partitions stay as an older run wrote them.
func (r *Runner) leftOut(rc ReportConfig, run string, rt *router) map[lake.Date]bool {
	if !rc.Dated() || rt.newest == noDate || rt.newest <= rt.j.last {
		return nil
	}
	leave := map[lake.Date]bool{}
	for d := rt.j.first; d < rt.j.first+(rt.newest-rt.j.last); d++ {
		if rt.j.owns[d] {
			leave[d] = true
		}
	}
	if len(leave) > 0 {
		r.Log.Info("the report file's dates reach past the days its run is taken to cover: the oldest dates it leaves out are not emptied",
			"report", rc.Name, "run", run, "dates_left", len(leave))
	}
	return leave
}

// shrink is a partition a run would empty or cut sharply.
type shrink struct {
	date     lake.Date
	old, new int64 // rows now, rows after the run
	oldRun   string
}

// checkShrink compares each partition the run would write (rows in sp, if
// any, or none for an owned date not in leave) with what an older run left there.
// A partition emptied, or cut by more than limits.max_shrink, holds the
// run back: checkShrink returns those partitions and warns, and the run
// commits nothing. limits.accept_shrink lets it commit, with a warning.
func (r *Runner) checkShrink(ctx context.Context, dataset, run string, j job, sp *spill, leave map[lake.Date]bool) ([]shrink, error) {
	var out []shrink
	dates := map[lake.Date]int64{}
	for d := range j.owns {
		if !leave[d] {
			dates[d] = 0
		}
	}
	if sp != nil {
		for d, p := range sp.parts {
			if j.owns[d] || j.keeps[d] {
				dates[d] = p.rows
			}
		}
	}
	for d, rows := range dates {
		var m lake.Manifest
		switch err := lake.GetJSON(ctx, r.Sink, lake.ManifestKey(dataset, d), &m); {
		case errors.Is(err, sinks.ErrNotFound):
			continue
		case err != nil:
			return nil, fmt.Errorf("partition %s: %w", d, err)
		}
		if m.Run >= run || m.Rows == 0 {
			continue // this run's own, a newer run's (kept), or empty
		}
		if float64(rows) < float64(m.Rows)*(1-r.Config.Limits.MaxShrink) {
			out = append(out, shrink{date: d, old: m.Rows, new: rows, oldRun: m.Run})
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	var oldRows, newRows int64
	for _, s := range out {
		oldRows += s.old
		newRows += s.new
	}
	if r.Config.Limits.AcceptShrink {
		r.Log.Warn("run empties or sharply shrinks partitions an older run filled; committed because limits.accept_shrink (or --accept-shrink) is set",
			"report", dataset, "run", run, "partitions", len(out), "rows_before", oldRows, "rows_after", newRows)
		return nil, nil
	}
	r.Log.Warn("run held back: it would empty or sharply shrink partitions an older run filled, so nothing of it is committed and the data stays; the next cycle tries it again. If the change is right, run once with --accept-shrink (or set limits.accept_shrink)",
		"report", dataset, "run", run, "partitions", len(out), "rows_before", oldRows, "rows_after", newRows, "max_shrink", r.Config.Limits.MaxShrink)
	return out, nil
}

// sameObject reports whether key holds exactly the bytes of f (read from
// its start; f is rewound afterwards).
func sameObject(ctx context.Context, s sinks.Sink, key string, f *os.File) (bool, error) {
	local, n, err := hashFile(f)
	if err != nil {
		return false, err
	}
	rc, err := s.Get(ctx, key)
	if errors.Is(err, sinks.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer rc.Close()
	h := sha256.New()
	m, err := io.Copy(h, io.LimitReader(rc, n+1))
	if err != nil {
		return false, err
	}
	return m == n && bytes.Equal(h.Sum(nil), local), nil
}

// hashFile returns the SHA-256 and size of f from its start, and rewinds it.
func hashFile(f *os.File) ([]byte, int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, err
	}
	return h.Sum(nil), n, nil
}
