package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/hdc-export/hdc-export/pipeline"
)

// Exit codes a scheduler can act on. Lease held and nothing to do are not
// failures: `run` exits 0 for both unless --detailed-exitcode asks for 4
// and 5 (see schedulerCode).
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

// newCycler wires a pipeline.Cycler from the configuration: the one
// composition of runner, lease and metrics that run, serve, apply and purge
// share. env.client may be nil (purge needs storage only); m may be nil.
func newCycler(cfg *Config, env *environment, log *slog.Logger, m *metrics) *pipeline.Cycler {
	c := &pipeline.Cycler{
		Runner:   pipeline.Runner{Config: cfg.Pipeline, Sink: env.sink, Log: log, Format: env.format},
		LeaseTTL: cfg.Lease.TTL,
		OnCycle:  m.observeCycle,
		OnPurge:  m.observePurge,
	}
	if env.client != nil {
		c.Runner.API = env.client
	}
	return c
}

// printTable writes the human summary.
func printTable(w io.Writer, s *pipeline.Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "runs ingested\trows\tpartitions\tbytes\trows dropped (old)\trows bad\tpurged\ttime\t")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", s.RunsIngested, s.Rows, s.Partitions, s.Bytes,
		s.RowsTooOld, s.RowsBad, s.ObjectsPurged, s.Duration)
	_ = tw.Flush()
}

func errorsIsLeaseHeld(err error) bool { return errors.Is(err, pipeline.ErrLeaseHeld) }
