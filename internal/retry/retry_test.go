package retry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hdc-export/hdc-export/internal/retry"
)

func TestBackoffBounds(t *testing.T) {
	for _, p := range []retry.Policy{
		{}, // the defaults: 500ms doubling to 30s
		{Base: time.Millisecond, Max: 10 * time.Millisecond},
		{Base: 1 << 60, Max: 1 << 62}, // the doubling overflows
	} {
		base, ceil := p.Base, p.Max
		if base == 0 {
			base, ceil = retry.DefaultBase, retry.DefaultMax
		}
		for attempt := -1; attempt <= 70; attempt++ {
			step := ceil
			if n := max(attempt, 1) - 1; n < 20 && base<<n > 0 && base<<n < ceil {
				step = base << n
			}
			for range 50 {
				if d := p.Backoff(attempt); d < step/2 || d > step {
					t.Fatalf("%+v: Backoff(%d) = %v, want within [%v, %v]", p, attempt, d, step/2, step)
				}
			}
		}
	}
	// Jitter: a thousand draws are not all the same.
	seen := map[time.Duration]bool{}
	for range 1000 {
		seen[retry.Policy{}.Backoff(3)] = true
	}
	if len(seen) < 100 {
		t.Errorf("Backoff(3) took %d values in 1000 draws", len(seen))
	}
}

func TestShouldRetry(t *testing.T) {
	for _, tc := range []struct {
		status           int
		idempotent, post bool // want for an idempotent call, for a POST
		permanent        bool
	}{
		{200, false, false, false},
		{302, false, false, false},
		{400, false, false, true},
		{401, false, false, true},
		{403, false, false, true},
		{404, false, false, true},
		{408, true, false, false},
		{409, false, false, true},
		{429, true, true, false},
		{499, false, false, true},
		{500, true, false, false},
		{501, true, false, false},
		{502, true, false, false},
		{503, true, true, false},
		{504, true, false, false},
		{599, true, false, false},
	} {
		if got := retry.ShouldRetry(tc.status, true); got != tc.idempotent {
			t.Errorf("ShouldRetry(%d, idempotent) = %v", tc.status, got)
		}
		if got := retry.ShouldRetry(tc.status, false); got != tc.post {
			t.Errorf("ShouldRetry(%d, not idempotent) = %v", tc.status, got)
		}
		if got := retry.PermanentStatus(tc.status); got != tc.permanent {
			t.Errorf("PermanentStatus(%d) = %v", tc.status, got)
		}
	}
}

func TestShouldRetryError(t *testing.T) {
	dial := fmt.Errorf("get: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")})
	read := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset")}
	for _, tc := range []struct {
		err        error
		idempotent bool
		want       bool
	}{
		{dial, false, true}, // never reached the server
		{dial, true, true},
		{read, false, false}, // the server may have acted
		{read, true, true},
		{io.ErrUnexpectedEOF, false, false},
		{io.ErrUnexpectedEOF, true, true},
	} {
		if got := retry.ShouldRetryError(tc.err, tc.idempotent); got != tc.want {
			t.Errorf("ShouldRetryError(%v, %v) = %v", tc.err, tc.idempotent, got)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"3", 3 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"-5", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999999", math.MaxInt64}, // a Policy caps it
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"Fri, 04 Dec 2026 10:00:30 GMT", 30 * time.Second},
		{"Friday, 04-Dec-26 10:00:30 GMT", 30 * time.Second}, // RFC 850
		{"Fri Dec  4 10:00:30 2026", 30 * time.Second},       // asctime
		{now.Format(http.TimeFormat), 0},                     // now
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},     // in the past
		{"Fri, 04 Dec 2026 25:00:00 GMT", 0},                 // not a time
	} {
		if got := retry.RetryAfter(tc.h, now); got != tc.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := retry.Sleep(t.Context(), time.Minute); err != nil || time.Since(start) != time.Minute {
			t.Errorf("Sleep(1m) = %v after %v", err, time.Since(start))
		}
		if err := retry.Sleep(t.Context(), 0); err != nil {
			t.Errorf("Sleep(0) = %v", err)
		}

		ctx, cancel := context.WithCancel(t.Context())
		start = time.Now()
		time.AfterFunc(time.Second, cancel)
		if err := retry.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) || time.Since(start) != time.Second {
			t.Errorf("Sleep cancelled after 1s = %v after %v", err, time.Since(start))
		}
		if err := retry.Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
			t.Errorf("Sleep(0) on an ended context = %v", err)
		}
	})
}

// permanentErr marks itself the way devcenter.APIError does.
type permanentErr bool

func (e permanentErr) Error() string   { return fmt.Sprintf("permanent=%v", bool(e)) }
func (e permanentErr) Permanent() bool { return bool(e) }

func TestPermanent(t *testing.T) {
	sinkPermanent := errors.New("permanent storage error") // like sinks.ErrPermanent
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("boom"), false},
		{retry.ErrPermanent, true},
		{fmt.Errorf("put a: %w: %w", retry.ErrPermanent, errors.New("access denied")), true},
		{errors.Join(errors.New("one"), fmt.Errorf("two: %w", retry.ErrPermanent)), true},
		{permanentErr(true), true},
		{fmt.Errorf("call: %w", permanentErr(true)), true},
		{fmt.Errorf("call: %w", permanentErr(false)), false},
		{sinkPermanent, false}, // another package's sentinel: see Policy.Retryable
		{context.Canceled, false},
	} {
		if got := retry.Permanent(tc.err); got != tc.want {
			t.Errorf("Permanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// fast retries without waiting long.
var fast = retry.Policy{Attempts: 4, Base: time.Millisecond, Max: time.Millisecond}

func TestDo(t *testing.T) {
	errFlaky := errors.New("flaky")
	errSink := errors.New("permanent storage error") // like sinks.ErrPermanent
	for _, tc := range []struct {
		name      string
		policy    retry.Policy
		errs      []error // fn's answers, in order; then nil
		calls     int
		wantErr   error  // errors.Is; nil for success
		wantText  string // the whole error text, if set
		wantAfter bool   // wrapped as "after N attempts"
	}{
		{name: "first try", policy: fast, calls: 1},
		{name: "after failures", policy: fast, errs: []error{errFlaky, errFlaky, errFlaky}, calls: 4},
		{name: "attempts spent", policy: fast, errs: []error{errFlaky, errFlaky, errFlaky, errFlaky, errFlaky}, calls: 4,
			wantErr: errFlaky, wantText: "after 4 attempts: flaky"},
		{name: "ErrPermanent", policy: fast, errs: []error{errFlaky, fmt.Errorf("x: %w", retry.ErrPermanent)}, calls: 2,
			wantErr: retry.ErrPermanent, wantText: "x: permanent error"},
		{name: "Permanent method", policy: fast, errs: []error{fmt.Errorf("get: %w", permanentErr(true))}, calls: 1,
			wantText: "get: permanent=true"},
		{name: "Permanent method false", policy: fast, errs: []error{permanentErr(false)}, calls: 2},
		{name: "Retryable says no",
			policy: retry.Policy{Attempts: 4, Base: time.Millisecond, Retryable: func(err error) bool { return !errors.Is(err, errSink) }},
			errs:   []error{errFlaky, fmt.Errorf("put: %w", errSink)}, calls: 2, wantErr: errSink, wantText: "put: permanent storage error"},
		{name: "one attempt", policy: retry.Policy{Attempts: 1}, errs: []error{errFlaky}, calls: 1,
			wantErr: errFlaky, wantText: "after 1 attempts: flaky"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := tc.policy.Do(t.Context(), func(attempt int) (time.Duration, error) {
				calls++
				if attempt != calls {
					t.Errorf("attempt %d on call %d", attempt, calls)
				}
				if calls <= len(tc.errs) {
					return 0, tc.errs[calls-1]
				}
				return 0, nil
			})
			if calls != tc.calls {
				t.Errorf("%d calls, want %d", calls, tc.calls)
			}
			if (err == nil) != (tc.wantErr == nil && tc.wantText == "") || tc.wantErr != nil && !errors.Is(err, tc.wantErr) ||
				tc.wantText != "" && err.Error() != tc.wantText {
				t.Errorf("err = %v, want %v %q", err, tc.wantErr, tc.wantText)
			}
		})
	}
}

func TestDoWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := retry.Policy{Attempts: 5, Base: time.Second, Max: 4 * time.Second, MaxWait: time.Minute}
		var at []time.Duration
		start := time.Now()
		err := p.Do(t.Context(), func(attempt int) (time.Duration, error) {
			at = append(at, time.Since(start))
			switch attempt {
			case 1:
				return 42 * time.Second, errors.New("429") // Retry-After is honoured
			case 2:
				return time.Hour, errors.New("503") // but capped at MaxWait
			case 3:
				return 0, errors.New("500") // backoff: 3rd step of 1s, 2s, 4s
			}
			return 0, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(at) != 4 || at[1] != 42*time.Second || at[2]-at[1] != time.Minute ||
			at[3]-at[2] < 2*time.Second || at[3]-at[2] > 4*time.Second {
			t.Errorf("tries at %v: want 0, 42s, +1m, then +2s to 4s", at)
		}
	})
}

func TestDoContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Cancelled while waiting: ctx.Err() itself, at once.
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		calls := 0
		err := retry.Policy{}.Do(ctx, func(int) (time.Duration, error) {
			calls++
			return time.Minute, errors.New("503")
		})
		if err != context.Canceled || calls != 1 || time.Since(start) != time.Second { //nolint:errorlint // identity is the contract
			t.Errorf("cancelled while waiting: %v after %d calls and %v", err, calls, time.Since(start))
		}

		// Cancelled during a try: fn's error, unchanged, with no wait.
		ctx, cancel = context.WithCancel(t.Context())
		calls = 0
		err = retry.Policy{}.Do(ctx, func(int) (time.Duration, error) {
			calls++
			cancel()
			return 0, fmt.Errorf("get: %w", ctx.Err())
		})
		if err == nil || err.Error() != "get: context canceled" || calls != 1 {
			t.Errorf("cancelled in a try: %v after %d calls", err, calls)
		}
	})
}

func TestPacerRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := retry.NewPacer(10, 1) // one call each 100ms
		start := time.Now()
		for i := range 11 {
			if err := p.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got, want := time.Since(start), time.Duration(i)*100*time.Millisecond; got != want {
				t.Fatalf("call %d at %v, want %v", i, got, want)
			}
		}

		// A burst after a quiet spell, then the rate again.
		p = retry.NewPacer(10, 5)
		time.Sleep(time.Second)
		start = time.Now()
		for range 5 {
			_ = p.Wait(t.Context())
		}
		if time.Since(start) != 0 {
			t.Errorf("a burst of 5 took %v", time.Since(start))
		}
		_ = p.Wait(t.Context())
		if time.Since(start) != 100*time.Millisecond {
			t.Errorf("the 6th call came %v after the burst", time.Since(start))
		}

		// No limit.
		p = retry.NewPacer(0, 0)
		for range 1000 {
			_ = p.Wait(t.Context())
		}
		if time.Since(start) != 100*time.Millisecond {
			t.Errorf("an unlimited pacer waited %v", time.Since(start)-100*time.Millisecond)
		}
	})
}

func TestPacerStopAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := retry.NewPacer(1, 1)
		_ = p.Wait(t.Context()) // the next turn is in 1s

		// A caller that gives up hands its turn back.
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := p.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 300*time.Millisecond {
			t.Errorf("Wait with a 300ms deadline = %v after %v", err, time.Since(start))
		}
		if err := p.Wait(t.Context()); err != nil || time.Since(start) != time.Second {
			t.Errorf("the next Wait = %v after %v, want the turn the cancelled caller gave back, at 1s", err, time.Since(start))
		}

		// Stop wakes a waiting caller, and every later one.
		done := make(chan error)
		go func() { done <- p.Wait(t.Context()) }()
		time.Sleep(100 * time.Millisecond)
		p.Stop()
		p.Stop() // twice is fine
		if err := <-done; !errors.Is(err, retry.ErrStopped) || time.Since(start) != 1100*time.Millisecond {
			t.Errorf("waiting caller after Stop: %v at %v", err, time.Since(start))
		}
		if err := p.Wait(t.Context()); !errors.Is(err, retry.ErrStopped) {
			t.Errorf("Wait after Stop = %v", err)
		}
	})
}
