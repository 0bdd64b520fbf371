package pipeline_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/devcenter/devcentertest"
	"github.com/hdc-export/hdc-export/devcenter/emulator"
	"github.com/hdc-export/hdc-export/pipeline"
	"github.com/hdc-export/hdc-export/sinks/local"
)

func TestLeaseExactlyOneWinner(t *testing.T) {
	s, _ := local.New(t.TempDir())
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners, held := 0, 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := pipeline.AcquireLease(ctx, s, "r"+string(rune('0'+i)), time.Minute, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners++
			case errors.Is(err, pipeline.ErrLeaseHeld):
				held++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if winners != 1 || held != 7 {
		t.Fatalf("%d winners, %d refused; want 1 and 7", winners, held)
	}
}

func TestLeaseExpiryTakeoverAndFencing(t *testing.T) {
	s, _ := local.New(t.TempDir())
	ctx := context.Background()
	clock := devcentertest.NewClock(t0)
	a, err := pipeline.AcquireLease(ctx, s, "a", time.Minute, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Check(ctx); err != nil {
		t.Fatalf("fresh lease fails its fence: %v", err)
	}
	if _, err := pipeline.AcquireLease(ctx, s, "b", time.Minute, clock.Now); !errors.Is(err, pipeline.ErrLeaseHeld) {
		t.Fatalf("second acquire: %v", err)
	}
	clock.Advance(30 * time.Second)
	if err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(45 * time.Second) // past the first expiry, inside the renewed one
	if _, err := pipeline.AcquireLease(ctx, s, "b", time.Minute, clock.Now); !errors.Is(err, pipeline.ErrLeaseHeld) {
		t.Fatalf("acquire of a renewed lease: %v", err)
	}
	clock.Advance(time.Minute) // a died: its lease expires
	if err := a.Check(ctx); !errors.Is(err, pipeline.ErrLeaseLost) {
		t.Fatalf("expired holder passes its fence: %v", err)
	}
	b, err := pipeline.AcquireLease(ctx, s, "b", time.Minute, clock.Now)
	if err != nil {
		t.Fatalf("takeover: %v", err)
	}
	if b.Epoch() != a.Epoch()+1 {
		t.Errorf("epochs %d then %d", a.Epoch(), b.Epoch())
	}
	if err := a.Renew(ctx); !errors.Is(err, pipeline.ErrLeaseLost) {
		t.Errorf("superseded holder renewed: %v", err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.AcquireLease(ctx, s, "c", time.Minute, clock.Now); err != nil {
		t.Errorf("acquire after release: %v", err)
	}
}

// TestFencedRunnerWritesNothing: a runner whose fence fails commits no
// partition, no commit record and deletes nothing.
func TestFencedRunnerWritesNothing(t *testing.T) {
	h := newHarness(t, emulator.Options{RowsPerDay: 5})
	h.runner.Fence = func(context.Context) error { return pipeline.ErrLeaseLost }
	if _, err := h.runner.Run(context.Background()); !errors.Is(err, pipeline.ErrLeaseLost) {
		t.Fatalf("run err = %v", err)
	}
	if keys := listKeys(t, h.sink); len(keys) != 0 {
		t.Fatalf("fenced runner wrote %d objects, e.g. %s", len(keys), keys[0])
	}
}
