// Package devcentertest starts an emulator and a client wired to it, for
// tests of the client and of code that uses it.
package devcentertest

import (
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/devcenter/emulator"
)

// Clock is a settable clock safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Start serves an emulator with opts on a loopback port for the test's
// lifetime and returns its server and a client configured for it (fast
// retries). The credentials are the emulator's defaults.
func Start(t testing.TB, opts emulator.Options) (*httptest.Server, *devcenter.Client) {
	t.Helper()
	srv := httptest.NewServer(emulator.New(opts).Handler())
	t.Cleanup(srv.Close)
	return srv, NewClient(t, srv.URL)
}

// NewClient returns a client for an emulator at base.
func NewClient(t testing.TB, base string) *devcenter.Client {
	t.Helper()
	c, err := devcenter.New(devcenter.Config{
		BaseURL:      base,
		TokenURL:     base + "/demo-tenant/oauth2/token",
		TenantID:     "demo-tenant",
		ClientID:     "demo-client",
		ClientSecret: "demo-secret",
		RetryBase:    time.Millisecond,
		RetryMax:     10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
