package devcenter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// DefaultIdleTimeout is Config.IdleTimeout's default.
const DefaultIdleTimeout = time.Minute

// ErrIdleTimeout is wrapped by the error of a download that received no
// byte for Config.IdleTimeout. The error is also a net.Error whose
// Timeout() is true, so callers that retry broken downloads retry it.
var ErrIdleTimeout = errors.New("no data received within the idle timeout")

// idleTimeoutError is a download cut for want of progress.
type idleTimeoutError struct {
	endpoint string
	idle     time.Duration
}

func (e *idleTimeoutError) Error() string {
	return fmt.Sprintf("devcenter: %s: no data for %v (idle timeout)", e.endpoint, e.idle)
}
func (e *idleTimeoutError) Is(target error) bool { return target == ErrIdleTimeout }
func (e *idleTimeoutError) Timeout() bool        { return true }
func (e *idleTimeoutError) Temporary() bool      { return true }

// idleWatch cancels a request's context once no progress has been made
// for idle: from the request's start until its response headers, and
// then between body reads that return data. A slow but steady transfer
// never trips it, whatever its total time.
type idleWatch struct {
	endpoint string
	idle     time.Duration
	timer    *time.Timer
	cancel   context.CancelFunc
	fired    atomic.Bool
}

// watchIdle returns a context for one request and the watch that cancels it.
func watchIdle(ctx context.Context, endpoint string, idle time.Duration) (context.Context, *idleWatch) {
	ctx, cancel := context.WithCancel(ctx)
	w := &idleWatch{endpoint: endpoint, idle: idle, cancel: cancel}
	w.timer = time.AfterFunc(idle, func() {
		w.fired.Store(true)
		cancel()
	})
	return ctx, w
}

// progress restarts the idle period.
func (w *idleWatch) progress() { w.timer.Reset(w.idle) }

// stop ends the watch and releases its context.
func (w *idleWatch) stop() {
	w.timer.Stop()
	w.cancel()
}

// check returns err, or the idle timeout error if the watch cut the request.
func (w *idleWatch) check(err error) error {
	if err != nil && w.fired.Load() {
		return &idleTimeoutError{endpoint: w.endpoint, idle: w.idle}
	}
	return err
}

// idleBody is a response body under an idleWatch; Close stops the watch.
type idleBody struct {
	io.ReadCloser
	w *idleWatch
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.progress()
	}
	if err != nil && err != io.EOF {
		err = b.w.check(err)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.w.stop()
	return b.ReadCloser.Close()
}
