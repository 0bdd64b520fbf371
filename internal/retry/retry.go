// Package retry is the one retry policy of every HTTP caller in
// hdc-export: which answers are worth another try (the status table),
// how long to wait before it (Retry-After, else exponential backoff with
// jitter), when to stop (attempts spent, the context ended, or a permanent
// error), and a pacer that spaces calls (golang.org/x/time/rate).
//
// Permanent errors are recognised without knowing where they come from:
// an error is permanent if it wraps ErrPermanent or if an error in its
// chain has a method Permanent() bool that returns true (as
// devcenter.APIError does for the API's 4xx). So the packages that
// produce errors need not import this one, and this one imports none of
// ours. A caller whose errors use another sentinel (sinks.ErrPermanent)
// says so with Policy.Retryable.
//
// The S3 sink keeps the SDK's own retryer (configured in sinks/s3); it
// does not go through this package.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// The defaults of a Policy's zero fields.
const (
	DefaultAttempts = 6
	DefaultBase     = 500 * time.Millisecond
	DefaultMax      = 30 * time.Second
	DefaultMaxWait  = 5 * time.Minute
)

// Policy says how often and how patiently to try a call. Zero fields take
// the defaults above; a Policy is a value, safe to copy and to share.
type Policy struct {
	// Attempts bounds tries in all, the first included.
	Attempts int
	// Base is the first backoff, doubled each try up to Max.
	Base, Max time.Duration
	// MaxWait caps any one wait, a server's Retry-After included.
	MaxWait time.Duration
	// Retryable, if set, is asked about every failure that is not
	// Permanent; false stops at once. Nil retries every such failure.
	Retryable func(error) bool
}

func (p Policy) withDefaults() Policy {
	if p.Attempts <= 0 {
		p.Attempts = DefaultAttempts
	}
	if p.Base <= 0 {
		p.Base = DefaultBase
	}
	if p.Max <= 0 {
		p.Max = DefaultMax
	}
	if p.MaxWait <= 0 {
		p.MaxWait = DefaultMaxWait
	}
	return p
}

// Backoff is the wait after failed try number attempt (from 1) when the
// server named none: Base doubled per try, capped at Max, then jittered
// uniformly over its upper half, so that callers failing together do not
// come back together and no wait is shorter than half its step.
func (p Policy) Backoff(attempt int) time.Duration {
	p = p.withDefaults()
	d := p.Base << min(max(attempt, 1)-1, 20)
	if d <= 0 || d > p.Max {
		d = p.Max
	}
	return d/2 + rand.N(d/2+1)
}

// wait is the pause after failed try attempt: the server's retryAfter if
// it named one, else the backoff; never more than MaxWait.
func (p Policy) wait(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter <= 0 {
		retryAfter = p.Backoff(attempt)
	}
	return min(retryAfter, p.MaxWait)
}

// Do calls fn, numbering tries from 1, until it returns a nil error, and
// returns nil then. fn returns how long the server asked it to wait
// (RetryAfter; 0 for none) with its error. Do stops and returns fn's error
// unchanged when the error is Permanent, when Retryable says no, or when
// ctx has ended; once Attempts tries have failed it returns the last error
// wrapped as "after N attempts: ...". If ctx ends while Do waits, it
// returns ctx.Err() itself (callers may compare with ==).
func (p Policy) Do(ctx context.Context, fn func(attempt int) (retryAfter time.Duration, err error)) error {
	p = p.withDefaults()
	for attempt := 1; ; attempt++ {
		after, err := fn(attempt)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil, Permanent(err), p.Retryable != nil && !p.Retryable(err):
			return err
		case attempt >= p.Attempts:
			return fmt.Errorf("after %d attempts: %w", attempt, err)
		}
		if err := Sleep(ctx, p.wait(attempt, after)); err != nil {
			return err
		}
	}
}

// ErrPermanent marks failures that no retry can fix. Wrap it
// (fmt.Errorf("...: %w: %w", retry.ErrPermanent, err)) to stop Do.
var ErrPermanent = errors.New("permanent error")

// Permanent reports whether err is a failure that no retry can fix: it
// wraps ErrPermanent, or the first error in its chain that has a method
// Permanent() bool says true. Such a method lets a package mark its
// errors without importing this one.
func Permanent(err error) bool {
	if errors.Is(err, ErrPermanent) {
		return true
	}
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// Sleep waits for d, or until ctx ends; then it returns ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
