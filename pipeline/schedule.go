package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is when a long-running service runs cycles and purges: cron
// specs in UTC (five fields, or descriptors such as "@every 1h").
type Schedule struct {
	Cycle string
	Purge string
}

// cronParser accepts standard five-field specs and descriptors.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ValidateSpec reports whether spec is a cron spec Serve accepts.
func ValidateSpec(spec string) error {
	_, err := cronParser.Parse(spec)
	return err
}

// shutdownWait bounds how long Serve waits, after ctx is cancelled, for a
// running cycle to stop between objects.
const shutdownWait = 10 * time.Second

// Serve runs cycles and purges on s until ctx is cancelled (SIGTERM), and
// a cycle at once if runAtStart. A tick that finds a cycle running is
// skipped. When ctx is cancelled, running work stops between objects (the
// lake stays consistent) and Serve returns once it has, or with an error
// after shutdownWait.
func (c *Cycler) Serve(ctx context.Context, s Schedule, runAtStart bool) error {
	sched := cron.New(cron.WithLocation(time.UTC), cron.WithParser(cronParser), cron.WithLogger(cronLog{c.Runner.Log}))
	if _, err := sched.AddFunc(s.Cycle, func() { c.Trigger(ctx) }); err != nil {
		return fmt.Errorf("cycle schedule: %w", err)
	}
	if _, err := sched.AddFunc(s.Purge, func() {
		_, err := c.Purge(ctx)
		switch {
		case errors.Is(err, ErrBusy), errors.Is(err, ErrLeaseHeld):
			c.Runner.Log.Info("purge skipped: a cycle is running, and purges too", "reason", err.Error())
		case err != nil && !errors.Is(err, context.Canceled):
			c.Runner.Log.Error("purge failed", "error", err.Error())
		}
	}); err != nil {
		return fmt.Errorf("purge schedule: %w", err)
	}
	sched.Start()
	if runAtStart {
		go c.Trigger(ctx)
	}
	<-ctx.Done()
	stopped := sched.Stop() // no new ticks; running jobs see ctx cancelled
	select {
	case <-stopped.Done():
	case <-time.After(shutdownWait):
		return errors.New("a cycle did not stop within 10s")
	}
	c.wait() // a cycle that Trigger started outside the schedule
	return nil
}

// Trigger runs one cycle of the reports named in only (all if none) and
// logs its outcome; a cycle already running makes it a logged no-op.
func (c *Cycler) Trigger(ctx context.Context, only ...string) {
	sum, err := c.Cycle(ctx, false, only)
	c.logOutcome(sum, err)
}

// logOutcome logs a triggered cycle's outcome.
func (c *Cycler) logOutcome(sum *Summary, err error) {
	log := c.Runner.Log
	switch {
	case errors.Is(err, ErrBusy):
		log.Info("tick skipped: the previous cycle is still running")
	case errors.Is(err, context.Canceled):
	case err != nil:
		log.Error("cycle failed", "error", err.Error())
	default:
		log.Info("cycle done", "runs_ingested", sum.RunsIngested, "rows", sum.Rows, "purged", sum.ObjectsPurged, "duration", sum.Duration)
	}
}

// cronLog sends the cron scheduler's own messages to the slog logger (its
// default logger prints plain lines on stdout).
type cronLog struct{ log *slog.Logger }

func (l cronLog) Info(msg string, keysAndValues ...any) {
	l.log.Debug("cron: "+msg, keysAndValues...)
}

func (l cronLog) Error(err error, msg string, keysAndValues ...any) {
	l.log.Error("cron: "+msg, append(keysAndValues, "error", err.Error())...)
}
