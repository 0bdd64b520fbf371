package pipeline

import (
	"context"
	"errors"
	"fmt"
	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/internal/retry"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/hdc-export/hdc-export/cabmirror"
	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/sinks"
)

// API is what a cycle needs from Dev Center (implemented by
// *devcenter.Client).
type API interface {
	ListTemplates(ctx context.Context) ([]devcenter.Template, error)
	CreateTemplate(ctx context.Context, def devcenter.TemplateDef) (devcenter.ID, error)
	EditTemplate(ctx context.Context, id devcenter.ID, def devcenter.TemplateDef) error
	ListReports(ctx context.Context) ([]devcenter.Report, error)
	ScheduleReport(ctx context.Context, templateID devcenter.ID, s devcenter.Schedule, callbackURL string) (devcenter.ID, error)
	EditReport(ctx context.Context, id, templateID devcenter.ID, s devcenter.Schedule) error
	ResumeReport(ctx context.Context, id devcenter.ID) error
	ReportData(ctx context.Context, reportID devcenter.ID, start, end time.Time) ([]devcenter.Run, error)
	Download(ctx context.Context, link string) (io.ReadCloser, error)
	// CabLink and OpenCab download cabs.
	cabmirror.Client
}

// Runner runs export cycles. Its fields are set once; Run may be called
// repeatedly but not concurrently.
type Runner struct {
	Config Config
	API    API
	Sink   sinks.Sink
	Log    *slog.Logger
	// Now is the clock; nil means time.Now. Tests share it with the emulator.
	Now func() time.Time
	// Fence, if set, is called before every write that commits or deletes
	// lake data; an error (such as ErrLeaseLost) stops the write. The CLI
	// sets it to the lease's Check.
	Fence func(ctx context.Context) error
	// Progress, if set, receives a one-line status now and then (for a live
	// terminal display). It must be fast.
	Progress func(line string)
	// Format, if set, is the lake's table format (see TableFormat); nil
	// is plain Hive files.
	Format TableFormat

	// live is the run being ingested, for Progress; nil between runs.
	live *liveRun

	// cycleStart is the real time Run began, after the lease was taken
	// (see sweepSinkTemp); zero outside Run.
	cycleStart time.Time
}

// progress reports a status line, if anyone listens.
func (r *Runner) progress(format string, args ...any) {
	if r.Progress != nil {
		r.Progress(fmt.Sprintf(format, args...))
	}
}

// fence runs the Fence, if any.
func (r *Runner) fence(ctx context.Context) error {
	if r.Fence == nil {
		return nil
	}
	return r.Fence(ctx)
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

// Run performs one cycle: reconcile, discover, ingest, purge. The purge
// runs even when Dev Center cannot be reached. The summary is filled as far
// as the cycle got; the error joins every failure.
func (r *Runner) Run(ctx context.Context) (*Summary, error) {
	start := r.now()
	sum := &Summary{Started: start}
	window := lake.NewWindow(start, r.Config.Retention.Days)
	sum.WindowStart = window.First.String()
	r.cycleStart = time.Now()
	defer func() { r.cycleStart = time.Time{} }()

	var errs []error
	tempLock, err := claimTemp(r.Config.TempDir, start)
	defer tempLock.release()
	if err != nil {
		errs = append(errs, err)
	}
	// Purge first, before anything that could fail or run out of memory
	// (reconcile, download, encode): a crash, an OOM kill or an API outage
	// never stops retention. It runs again at the end for the dates that
	// left the window meanwhile and the versions the cycle replaced.
	first, purgeErr := r.Purge(context.WithoutCancel(ctx), false)
	if purgeErr != nil {
		errs = append(errs, purgeErr)
	}
	sum.ObjectsPurged = first.Deleted
	sum.notePurged(first)
	sum.OldestDate = first.OldestDate
	r.warnStore(first)
	// One reconcile (two list calls) serves every report of the cycle.
	_, ids, failed, listErr := r.reconcileAll(ctx, false)
	for _, rc := range r.Config.Reports {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		err := listErr
		if err == nil {
			err = failed[rc.Name]
		}
		if err == nil {
			err = r.export(ctx, rc, ids[rc.Name], window, sum)
		}
		if err != nil {
			sum.ReportsFailed++
			errs = append(errs, fmt.Errorf("report %s: %w", rc.Name, err))
		}
	}
	if err := r.mirror(ctx, window, sum); err != nil {
		errs = append(errs, fmt.Errorf("cabs: %w", err))
	}
	// Purge even if ingestion failed: retention is a legal limit. It runs
	// to completion even when the cycle was cancelled.
	purged, purgeErr := r.Purge(context.WithoutCancel(ctx), false)
	if purgeErr != nil {
		errs = append(errs, purgeErr)
	}
	sum.ObjectsPurged += purged.Deleted
	sum.notePurged(purged)
	sum.sortSignal()
	sum.Retention = purged
	if d := purged.OldestDate; d != "" && (sum.OldestDate == "" || d < sum.OldestDate) {
		sum.OldestDate = d // YYYY-MM-DD strings sort as dates
	}
	sum.Unrecognised = purged.Unrecognised
	sum.Interrupted = ctx.Err() != nil
	sum.Duration = r.now().Sub(start).Round(time.Millisecond).String()
	sum.Errors = len(errs)
	return sum, errors.Join(errs...)
}

// warnStore warns about what the first purge of a cycle found that the
// purge cannot fix by itself: a lock period that keeps new objects past
// the window, and objects it cannot date.
func (r *Runner) warnStore(rep *PurgeReport) {
	if rep.Store.DefaultRetention != "" {
		r.Log.Warn("the bucket locks every new object for a default retention period: data written near the end of the window will be kept past it, and purge cannot destroy it; remove the bucket's default retention",
			"default_retention", rep.Store.DefaultRetention, "retention_days", r.Config.Retention.Days)
	}
	if !rep.Store.Complete {
		r.Log.Warn("the sink cannot show every object it holds (no sinks.Inventory): retention covers only its listed objects")
	}
	if rep.Unrecognised > 0 {
		r.Log.Warn("objects under the lake cannot be dated, so purge leaves them; run `hdc-export purge --check` to list them", "objects", rep.Unrecognised)
	}
}

// tempSpaceHint says what to do when the temp folder ran out of space.
func tempSpaceHint(err error, dir string) error {
	if !errors.Is(err, syscall.ENOSPC) {
		return err
	}
	if dir == "" {
		dir = os.TempDir()
	}
	return fmt.Errorf("%w: the temp folder %s is full; a run needs free space there of about the in-window rows of its largest report, uncompressed (see the README, \"Temp space\"): set temp_dir in the config, or TMPDIR, to a larger volume", err, dir)
}

// ingestAttempts is how many times a run is ingested when its download
// breaks off; each attempt starts over with a fresh download and spill
// (ingest commits nothing before the whole file has been read).
const ingestAttempts = 3

// brokenDownload reports whether err is a download that broke off: a body
// shorter than announced, a reset or timed-out connection, or a link that
// expired in between.
func brokenDownload(err error) bool {
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, devcenter.ErrLinkExpired) || (errors.As(err, &ne) && ne.Timeout())
}

// export ingests one reconciled report's pending runs, oldest first. When
// a run's file shows that the report follows the other reading of
// LastNDays (see coverage), the runs are planned again, once.
func (r *Runner) export(ctx context.Context, rc ReportConfig, reportID devcenter.ID, window lake.Window, sum *Summary) error {
	err := r.exportPlan(ctx, rc, reportID, window, sum)
	if errors.Is(err, errReadingChanged) {
		err = r.exportPlan(ctx, rc, reportID, window, sum)
	}
	return err
}

// exportPlan plans a report's runs and ingests the pending ones.
func (r *Runner) exportPlan(ctx context.Context, rc ReportConfig, reportID devcenter.ID, window lake.Window, sum *Summary) (err error) {
	plan, err := r.plan(ctx, rc, reportID, window)
	if err != nil {
		return err
	}
	defer func() {
		if !errors.Is(err, errReadingChanged) { // else the next plan counts them
			sum.RunsSeen += plan.seen
			sum.RunsCommitted += plan.committed
			sum.RunsSuperseded += plan.superseded
		}
	}()
	for _, job := range plan.jobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		// A download that broke off is ingested again from the start:
		// ingest commits nothing before the whole file has been read.
		var res runResult
		err := retry.Policy{Attempts: ingestAttempts, Retryable: brokenDownload}.Do(ctx, func(attempt int) (time.Duration, error) {
			if attempt > 1 {
				r.Log.Warn("report download broke off; ingesting the run again", "report", rc.Name, "run", lake.RunID(job.run.Time), "attempt", attempt)
			}
			var err error
			res, err = r.ingest(ctx, rc, reportID, job, window)
			return 0, err
		})
		if errors.Is(err, errReadingChanged) {
			sum.RowsOutsideCoverage += res.commit.Uncovered
			return err
		}
		if err != nil {
			return fmt.Errorf("run %s: %w", lake.RunID(job.run.Time), tempSpaceHint(err, r.Config.TempDir))
		}
		if len(res.heldBack) > 0 {
			sum.RunsHeldBack++
			sum.PartitionsHeldBack += len(res.heldBack)
			continue
		}
		sum.add(res)
	}
	return nil
}
