package retry

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ErrStopped is returned by Pacer.Wait once the pacer is stopped.
var ErrStopped = errors.New("pacer stopped")

// Pacer spaces calls to a service: a token bucket (golang.org/x/time/rate)
// that can also be stopped, waking every caller still waiting for its
// turn. It is safe for concurrent use.
type Pacer struct {
	lim  *rate.Limiter
	stop chan struct{}
	once sync.Once
}

// NewPacer lets through perSecond calls a second on average, and bursts
// of up to burst (at least 1) after a quiet spell; burst 1 spaces calls
// at least 1/perSecond apart. perSecond <= 0 or +Inf means no limit.
func NewPacer(perSecond float64, burst int) *Pacer {
	limit := rate.Limit(perSecond)
	if perSecond <= 0 || math.IsInf(perSecond, 1) {
		limit = rate.Inf
	}
	return &Pacer{lim: rate.NewLimiter(limit, max(burst, 1)), stop: make(chan struct{})}
}

// Wait blocks until the caller's turn. It returns ctx.Err() if ctx ends
// first and ErrStopped once Stop is called; a caller that gives up hands
// its turn back.
func (p *Pacer) Wait(ctx context.Context) error {
	select {
	case <-p.stop:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	default:
	}
	r := p.lim.Reserve() // OK: burst >= 1
	d := r.Delay()
	if d == 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	case <-p.stop:
		r.Cancel()
		return ErrStopped
	}
}

// Stop makes every Wait, under way or to come, return ErrStopped. It may
// be called more than once.
func (p *Pacer) Stop() { p.once.Do(func() { close(p.stop) }) }
