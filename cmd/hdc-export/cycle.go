package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
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
	// exitInterrupted: a signal (SIGINT, SIGTERM) stopped the cycle before
	// it finished its work; the next run continues. 130 is the shell's code
	// for a command ended by SIGINT.
	exitInterrupted = 130
)

// exitCode classifies a cycle's outcome.
func exitCode(sum *pipeline.Summary, err error, reports int) int {
	switch {
	case errors.Is(err, pipeline.ErrLeaseHeld):
		return exitLeaseHeld
	case err == nil && sum != nil && sum.LeftWork():
		return exitPartial // a cab refused or failed, or a run held back
	case err == nil && sum != nil && sum.NothingToDo():
		return exitNothingNew
	case err == nil:
		return exitOK
	case sum != nil && sum.ReportsFailed > 0 && sum.ReportsFailed < reports && sum.RunsIngested > 0:
		return exitPartial
	}
	return exitFailed
}

// interruptedCode is code, or exitInterrupted if a signal cancelled ctx
// (the command's) while the cycle still had work: then the cycle returns
// an error (each stage returns the context's error, the cab mirror when it
// deferred cabs), so err != nil. A cycle that finished despite the signal
// keeps its code.
func interruptedCode(ctx context.Context, code int, err error) int {
	if ctx.Err() != nil && err != nil && code != exitLeaseHeld {
		return exitInterrupted
	}
	return code
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
	if line := cabLine(s); line != "" {
		fmt.Fprintln(w, line)
	}
}

// cabLine is the human summary of the cab stage, e.g. "cabs: 120 mirrored
// (3.1 MiB); refused 1 (host_not_allowed 1); retried 2 (md5_mismatch 2)",
// or "" if the stage saw no cab to fetch.
func cabLine(s *pipeline.Summary) string {
	if s.CabsMirrored == 0 && len(s.CabReasons) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cabs: %d mirrored (%.1f MiB)", s.CabsMirrored, float64(s.CabBytes)/(1<<20))
	for _, outcome := range slices.Sorted(maps.Keys(s.CabReasons)) {
		reasons := s.CabReasons[outcome]
		total := 0
		var parts []string
		for _, reason := range slices.Sorted(maps.Keys(reasons)) {
			total += reasons[reason]
			parts = append(parts, fmt.Sprintf("%s %d", reason, reasons[reason]))
		}
		fmt.Fprintf(&b, "; %s %d (%s)", outcome, total, strings.Join(parts, ", "))
	}
	return b.String()
}

func errorsIsLeaseHeld(err error) bool { return errors.Is(err, pipeline.ErrLeaseHeld) }
