package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/hdc-export/hdc-export/internal/lake"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hdc-export/hdc-export/sinks"
)

// Errors of the lease.
var (
	// ErrLeaseHeld: another runner holds an unexpired lease on the lake.
	ErrLeaseHeld = errors.New("lease held by another runner")
	// ErrLeaseLost: this runner's lease expired or was taken over; it must
	// not write anything more.
	ErrLeaseLost = errors.New("lease lost")
	// ErrNoCreateOnly: the sink cannot do create-only puts, so no lease.
	ErrNoCreateOnly = errors.New("sink has no create-only put: cannot take a lease")
)

// Lease is this runner's hold on one lake: one cycle at a time per lake,
// across processes and machines. Its methods are safe for concurrent use.
type Lease struct {
	sink   sinks.Sink
	holder string
	ttl    time.Duration
	now    func() time.Time

	mu      sync.Mutex
	epoch   int64
	expires time.Time
}

// leaseSafety is how long before its expiry a holder stops trusting its
// lease, to absorb clock skew and slow writes.
const leaseSafety = 5 * time.Second

// AcquireLease takes the lake's lease for ttl. It fails with ErrLeaseHeld
// if another holder's lease has not expired. A lease whose holder died
// expires after its ttl and is then taken over with the next epoch.
func AcquireLease(ctx context.Context, s sinks.Sink, holder string, ttl time.Duration, now func() time.Time) (*Lease, error) {
	co, ok := s.(sinks.CreateOnly)
	if !ok {
		return nil, ErrNoCreateOnly
	}
	if now == nil {
		now = time.Now
	}
	latest, rec, err := latestLease(ctx, s)
	if err != nil {
		return nil, err
	}
	t := now()
	if latest > 0 && t.Before(rec.Expires) {
		return nil, fmt.Errorf("%w (%s, until %s)", ErrLeaseHeld, rec.Holder, rec.Expires.UTC().Format(time.RFC3339))
	}
	l := &Lease{sink: s, holder: holder, ttl: ttl, now: now, epoch: latest + 1, expires: t.Add(ttl)}
	b, _ := json.Marshal(lake.LeaseRecord{Holder: holder, Epoch: l.epoch, Expires: l.expires})
	if err := co.PutIfAbsent(ctx, lake.LeaseKey(l.epoch), bytes.NewReader(b)); err != nil {
		if errors.Is(err, sinks.ErrExists) {
			return nil, fmt.Errorf("%w (taken at the same moment)", ErrLeaseHeld)
		}
		return nil, fmt.Errorf("take lease: %w", err)
	}
	// Older epochs are history now; remove them (best effort).
	var old []string
	for e := latest; e > 0 && e > latest-16; e-- {
		old = append(old, lake.LeaseKey(e))
	}
	_ = s.Delete(ctx, old...)
	return l, nil
}

// latestLease returns the highest epoch and its record (0 if none).
func latestLease(ctx context.Context, s sinks.Sink) (int64, lake.LeaseRecord, error) {
	var latest int64
	err := s.List(ctx, lake.LeaseDir, func(o sinks.Object) error {
		name := strings.TrimSuffix(strings.TrimPrefix(o.Key, lake.LeaseDir), ".json")
		if e, err := strconv.ParseInt(name, 10, 64); err == nil && e > latest {
			latest = e
		}
		return nil
	})
	if err != nil || latest == 0 {
		return latest, lake.LeaseRecord{}, err
	}
	var rec lake.LeaseRecord
	if err := lake.GetJSON(ctx, s, lake.LeaseKey(latest), &rec); err != nil {
		if errors.Is(err, sinks.ErrNotFound) { // deleted under us: treat as free
			return latest, lake.LeaseRecord{}, nil
		}
		return 0, rec, fmt.Errorf("read lease: %w", err)
	}
	return latest, rec, nil
}

// Epoch is the fencing token.
func (l *Lease) Epoch() int64 { return l.epoch }

// Check is the fence: it fails with ErrLeaseLost if the lease is about to
// expire or a later epoch exists. Every commit calls it first.
func (l *Lease) Check(ctx context.Context) error {
	l.mu.Lock()
	expires := l.expires
	l.mu.Unlock()
	if l.now().Add(leaseSafety).After(expires) {
		return fmt.Errorf("%w: expired at %s", ErrLeaseLost, expires.UTC().Format(time.RFC3339))
	}
	latest, _, err := latestLease(ctx, l.sink)
	if err != nil {
		return err
	}
	if latest != l.epoch {
		return fmt.Errorf("%w: epoch %d superseded by %d", ErrLeaseLost, l.epoch, latest)
	}
	return nil
}

// Renew extends the lease by its ttl, if it is still ours.
func (l *Lease) Renew(ctx context.Context) error {
	if err := l.Check(ctx); err != nil {
		return err
	}
	l.mu.Lock()
	expires := l.now().Add(l.ttl)
	l.mu.Unlock()
	b, _ := json.Marshal(lake.LeaseRecord{Holder: l.holder, Epoch: l.epoch, Expires: expires})
	if err := l.sink.Put(ctx, lake.LeaseKey(l.epoch), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	l.mu.Lock()
	l.expires = expires
	l.mu.Unlock()
	return nil
}

// KeepAlive renews the lease every ttl/3 until ctx ends. It returns when
// renewal fails, with the reason.
func (l *Lease) KeepAlive(ctx context.Context) error {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := l.Renew(ctx); err != nil {
				return err
			}
		}
	}
}

// Release ends the lease early by deleting it, so the next runner need not
// wait for the ttl and an idle cycle leaves the lake byte-identical. A
// runner that died instead leaves its epoch to expire; the next holder
// takes the following epoch, which fences the dead one out.
func (l *Lease) Release(ctx context.Context) error {
	if err := l.Check(ctx); err != nil {
		return nil // not ours any more: nothing to release
	}
	if err := l.sink.Delete(ctx, lake.LeaseKey(l.epoch)); err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	l.mu.Lock()
	l.expires = time.Time{}
	l.mu.Unlock()
	return nil
}
