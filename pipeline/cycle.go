package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrBusy: a cycle or purge is already running in this process.
var ErrBusy = errors.New("a cycle is already running")

// Cycler runs cycles and purges under the lake's lease: one at a time per
// process (an overlapping call fails with ErrBusy) and per lake (the
// lease). It takes the lease, keeps it alive while the work runs, fences
// every write with it, and releases it. Set its fields once; its methods
// are safe for concurrent use.
type Cycler struct {
	// Runner is the template of each cycle's runner: its Config, API, Sink,
	// Log, Now and Progress. Its Fence is set by the Cycler.
	Runner Runner
	// LeaseTTL is how long the lease lasts without renewal (renewed every
	// TTL/3 while work runs).
	LeaseTTL time.Duration
	// OnCycle and OnPurge, if set, are told each outcome (the summary or
	// report is nil when the lease could not be taken), for metrics.
	OnCycle func(*Summary, error)
	OnPurge func(*PurgeReport, error)

	mu  sync.Mutex
	req requests // see Request
}

// Cycle runs one cycle under the lease, waiting for the lease while
// another runner holds it if wait is set (else failing with
// ErrLeaseHeld). only, if non-empty, restricts the cycle to those
// configured report names.
func (c *Cycler) Cycle(ctx context.Context, wait bool, only []string) (*Summary, error) {
	if !c.mu.TryLock() {
		return nil, ErrBusy
	}
	defer c.mu.Unlock()
	runner := c.Runner
	if len(only) > 0 {
		runner.Config.Reports = nil
		for _, r := range c.Runner.Config.Reports {
			for _, name := range only {
				if r.Name == name {
					runner.Config.Reports = append(runner.Config.Reports, r)
				}
			}
		}
	}
	var sum *Summary
	err := c.leased(ctx, wait, &runner, func(ctx context.Context) error {
		var err error
		sum, err = runner.Run(ctx)
		return err
	})
	if c.OnCycle != nil {
		c.OnCycle(sum, err)
	}
	return sum, err
}

// Purge enforces retention alone, under the lease (see Runner.Purge).
func (c *Cycler) Purge(ctx context.Context) (*PurgeReport, error) {
	if !c.mu.TryLock() {
		return nil, ErrBusy
	}
	defer c.mu.Unlock()
	runner := c.Runner
	var rep *PurgeReport
	err := c.leased(ctx, false, &runner, func(ctx context.Context) error {
		var err error
		rep, err = runner.Purge(ctx, false)
		return err
	})
	if c.OnPurge != nil {
		c.OnPurge(rep, err)
	}
	return rep, err
}

// leased takes the lease (see acquire), fences runner with it, and runs
// fn while renewing it; then releases it. If renewal fails, fn's context
// is cancelled and the error says why.
func (c *Cycler) leased(ctx context.Context, wait bool, runner *Runner, fn func(context.Context) error) error {
	lease, err := c.acquire(ctx, wait)
	if err != nil {
		return err
	}
	runner.Fence = lease.Check
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := lease.KeepAlive(ctx); err != nil {
			cancel(fmt.Errorf("lease: %w", err))
		}
	}()
	err = fn(ctx)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = errors.Join(err, cause)
	}
	cancel(nil)
	<-done
	if rerr := lease.Release(context.WithoutCancel(ctx)); rerr != nil {
		c.Runner.Log.Warn("release lease", "error", rerr.Error())
	}
	return err
}

// leaseWait is how often a waiting runner tries the lease again.
const leaseWait = 5 * time.Second

// acquire takes the lease, polling while it is held if wait is set.
func (c *Cycler) acquire(ctx context.Context, wait bool) (*Lease, error) {
	for {
		lease, err := AcquireLease(ctx, c.Runner.Sink, c.Runner.Config.RunnerID, c.LeaseTTL, nil)
		if err == nil || !wait || !errors.Is(err, ErrLeaseHeld) {
			return lease, err
		}
		c.Runner.Log.Info("lease held by another runner; waiting", "reason", err.Error())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(leaseWait):
		}
	}
}

// wait blocks until no cycle or purge of this Cycler runs.
func (c *Cycler) wait() {
	c.mu.Lock()
	c.mu.Unlock() //nolint:staticcheck // an empty critical section: waiting is the point
}

// Apply reconciles the configured templates and schedules with Dev
// Center under the lease, waiting for it (see Runner.Reconcile).
func (c *Cycler) Apply(ctx context.Context) ([]Change, error) {
	if !c.mu.TryLock() {
		return nil, ErrBusy
	}
	defer c.mu.Unlock()
	runner := c.Runner
	var plan []Change
	err := c.leased(ctx, true, &runner, func(ctx context.Context) error {
		var err error
		plan, _, err = runner.Reconcile(ctx, false)
		return err
	})
	return plan, err
}
