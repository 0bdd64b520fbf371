package devcenter

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// TestDefaultClientKeepsItsConnections: the cab mirror's concurrent calls
// to one host reuse their connections instead of opening (over TLS,
// negotiating) one per call, as Go's default of two idle connections per
// host would.
func TestDefaultClientKeepsItsConnections(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("MSCF"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, TokenURL: srv.URL, ClientID: "id", ClientSecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 8, 20
	for range rounds {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				resp, err := c.http.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		wg.Wait()
	}
	// A connection is back in the pool a moment after its body's end, so
	// a round may open one while the last round's are on their way back;
	// Go's default (2 idle per host) opens about 6 per round, 120 in all.
	if n := conns.Load(); n > 2*workers {
		t.Errorf("%d calls in rounds of %d opened %d connections, want at most %d", workers*rounds, workers, n, 2*workers)
	}
}
