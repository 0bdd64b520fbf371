package pipeline

import (
	"context"
	"errors"
	"sync"
)

// requests are the cycles asked for by Request and not yet started: the
// report names (coalesced), or all of them.
type requests struct {
	mu     sync.Mutex
	worker bool            // a goroutine runs the queued requests
	all    bool            // a request named no report: all of them
	names  map[string]bool // else the reports asked for
}

// add queues a request for the reports in only (all if none). q.mu is
// held.
func (q *requests) add(only []string) {
	if len(only) == 0 {
		q.all = true
	}
	for _, name := range only {
		if q.names == nil {
			q.names = map[string]bool{}
		}
		q.names[name] = true
	}
}

// Request asks for a cycle of the reports named in only (all if none),
// such as a report-ready callback does, and never drops it: if no cycle or
// purge is running, the cycle starts now, in its own goroutine, and
// Request returns false; else the request is queued, coalesced with the
// others queued (a report asked for twice runs once), to run as soon as
// the running work ends, and Request returns true. The outcome is logged.
// A request queued when ctx is cancelled does not run.
func (c *Cycler) Request(ctx context.Context, only ...string) (queued bool) {
	q := &c.req
	q.mu.Lock()
	defer q.mu.Unlock()
	queued = q.worker || c.busy()
	q.add(only)
	if !q.worker {
		q.worker = true
		go c.runRequests(ctx)
	}
	return queued
}

// busy reports whether a cycle or purge of c is running at this moment.
func (c *Cycler) busy() bool {
	if !c.mu.TryLock() {
		return true
	}
	c.mu.Unlock()
	return false
}

// runRequests runs the queued requests, one coalesced cycle at a time,
// until none is left.
func (c *Cycler) runRequests(ctx context.Context) {
	q := &c.req
	for {
		q.mu.Lock()
		if (!q.all && len(q.names) == 0) || ctx.Err() != nil {
			q.worker, q.all, q.names = false, false, nil
			q.mu.Unlock()
			return
		}
		var only []string
		if !q.all {
			for name := range q.names {
				only = append(only, name)
			}
		}
		q.all, q.names = false, nil
		q.mu.Unlock()

		c.wait() // for the running cycle or purge, if any
		sum, err := c.Cycle(ctx, false, only)
		if errors.Is(err, ErrBusy) { // a scheduled tick came first: queue again
			q.mu.Lock()
			q.add(only)
			q.mu.Unlock()
			continue
		}
		c.logOutcome(sum, err)
	}
}
