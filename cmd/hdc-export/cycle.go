package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hdc-export/hdc-export/pipeline"
)

// Exit codes a scheduler can act on. Lease held and nothing to do are not
// failures: tell the scheduler so (systemd SuccessExitStatus=4 5,
// Kubernetes podFailurePolicy Ignore on 4 and 5, Airflow
// skip_on_exit_code=[4, 5]).
const (
	exitOK         = 0 // the cycle did work and everything landed
	exitFailed     = 1 // the cycle failed
	exitUsage      = 2 // bad flags or configuration
	exitPartial    = 3 // some reports failed, others landed
	exitLeaseHeld  = 4 // another runner holds the lake's lease
	exitNothingNew = 5 // no new run, nothing to purge: the lake is up to date
)

// exitCode classifies a cycle's outcome.
func exitCode(sum *pipeline.Summary, err error, reports int) int {
	switch {
	case errors.Is(err, pipeline.ErrLeaseHeld):
		return exitLeaseHeld
	case err == nil && sum != nil && sum.NothingToDo():
		return exitNothingNew
	case err == nil:
		return exitOK
	case sum != nil && sum.ReportsFailed > 0 && sum.ReportsFailed < reports && sum.RunsIngested > 0:
		return exitPartial
	}
	return exitFailed
}

// cycler runs export cycles under the lake's lease. One cycle at a time
// per process (an overlapping call is refused) and per lake (the lease).
type cycler struct {
	cfg      *Config
	env      *environment
	log      *slog.Logger
	metrics  *metrics     // may be nil
	progress func(string) // may be nil
	mu       sync.Mutex
}

// errBusy: a cycle is already running in this process.
var errBusy = errors.New("a cycle is already running")

// run performs one cycle: take the lease (waiting for it if wait), keep it
// alive, run the pipeline fenced by it, release it. only, if non-empty,
// restricts the cycle to those report names.
func (c *cycler) run(ctx context.Context, wait bool, only []string) (*pipeline.Summary, error) {
	if !c.mu.TryLock() {
		return nil, errBusy
	}
	defer c.mu.Unlock()
	lease, err := c.acquire(ctx, wait)
	if err != nil {
		c.metrics.observeCycle(nil, err)
		return nil, err
	}
	cfg := c.cfg.Pipeline
	if len(only) > 0 {
		cfg.Reports = nil
		for _, r := range c.cfg.Pipeline.Reports {
			for _, name := range only {
				if r.Name == name {
					cfg.Reports = append(cfg.Reports, r)
				}
			}
		}
	}
	runner := &pipeline.Runner{Config: cfg, API: c.env.client, Sink: c.env.sink, Log: c.log, Progress: c.progress}
	var sum *pipeline.Summary
	err = c.withLease(ctx, lease, func(ctx context.Context) error {
		runner.Fence = lease.Check
		var err error
		sum, err = runner.Run(ctx)
		return err
	})
	c.metrics.observeCycle(sum, err)
	return sum, err
}

// purge enforces retention alone, under the lease.
func (c *cycler) purge(ctx context.Context) (*pipeline.PurgeReport, error) {
	if !c.mu.TryLock() {
		return nil, errBusy
	}
	defer c.mu.Unlock()
	lease, err := c.acquire(ctx, false)
	if err != nil {
		return nil, err
	}
	runner := &pipeline.Runner{Config: c.cfg.Pipeline, Sink: c.env.sink, Log: c.log, Fence: lease.Check}
	var rep *pipeline.PurgeReport
	err = c.withLease(ctx, lease, func(ctx context.Context) error {
		var err error
		rep, err = runner.Purge(ctx, false)
		return err
	})
	c.metrics.observePurge(rep, err)
	return rep, err
}

// acquire takes the lease, polling while it is held if wait is set.
func (c *cycler) acquire(ctx context.Context, wait bool) (*pipeline.Lease, error) {
	for {
		lease, err := pipeline.AcquireLease(ctx, c.env.sink, c.cfg.Pipeline.RunnerID, c.cfg.Lease.TTL, nil)
		if err == nil || !wait || !errors.Is(err, pipeline.ErrLeaseHeld) {
			return lease, err
		}
		c.log.Info("lease held by another runner; waiting", "reason", err.Error())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

// withLease runs fn while renewing the lease, then releases it. If
// renewal fails, fn's context is cancelled.
func (c *cycler) withLease(ctx context.Context, lease *pipeline.Lease, fn func(context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := lease.KeepAlive(ctx); err != nil {
			cancel(fmt.Errorf("lease: %w", err))
		}
	}()
	err := fn(ctx)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = errors.Join(err, cause)
	}
	cancel(nil)
	<-done
	if rerr := lease.Release(context.WithoutCancel(ctx)); rerr != nil {
		c.log.Warn("release lease", "error", rerr.Error())
	}
	return err
}

// printTable writes the human summary.
func printTable(w io.Writer, s *pipeline.Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "runs ingested\trows\tpartitions\tbytes\trows dropped (old)\trows bad\tpurged\ttime\t")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", s.RunsIngested, s.Rows, s.Partitions, s.Bytes,
		s.RowsTooOld, s.RowsBad, s.ObjectsPurged, s.Duration)
	_ = tw.Flush()
}

// progressWriter returns a live one-line progress display for a terminal,
// or nil when w is not one (logs and summaries suffice there).
func progressWriter(w io.Writer) func(string) {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	var mu sync.Mutex
	var last time.Time
	return func(line string) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < 100*time.Millisecond && line != "" {
			return
		}
		last = time.Now()
		fmt.Fprintf(f, "\r\033[K%s", line)
	}
}

func errorsIsLeaseHeld(err error) bool { return errors.Is(err, pipeline.ErrLeaseHeld) }
