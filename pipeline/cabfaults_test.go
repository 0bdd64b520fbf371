package pipeline_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hdc-export/hdc-export/cabmirror"
	"github.com/hdc-export/hdc-export/devcenter/emulator"
	"github.com/hdc-export/hdc-export/internal/lake"
)

// firstInQueue is the cab the mirror asks for first: the oldest date's,
// smallest CabIdHash first (the one that used to halt every run).
func firstInQueue(want map[string]lake.Date) string {
	var first string
	for h, d := range want {
		if first == "" || d < want[first] || d == want[first] && h < first {
			first = h
		}
	}
	return first
}

// without is want less one cab.
func without(want map[string]lake.Date, hash string) map[string]lake.Date {
	out := maps.Clone(want)
	delete(out, hash)
	return out
}

// TestMirrorRefusalRemembered: one cab among many whose link points off
// the allowlist (emulator switch OffAllowlist) is refused; every other cab
// lands in the same run, which is partial. The next runs do not ask for it
// again, even once the service would serve it, until the allowlist
// changes; then it lands.
func TestMirrorRefusalRemembered(t *testing.T) {
	h := newCabHarness(t, cabOptions(), nil)
	h.ingestOnly(t)
	want := wantCabs(t, h.lakeDir, h.clock.Now())
	bad := firstInQueue(want)
	h.em.SetCabFaults(emulator.CabFaults{OffAllowlist: []string{bad}})

	sum, err := h.runner.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.CabsRefused != 1 || sum.CabsMirrored != len(want)-1 || sum.CabsDeferred+sum.CabsFailed != 0 ||
		sum.CabReasons[cabmirror.OutcomeRefused][cabmirror.ReasonHostNotAllowed] != 1 || !sum.CabsIncomplete() || sum.NothingToDo() {
		t.Fatalf("first run: %+v; want 1 refused and %d mirrored", sum, len(want)-1)
	}
	h.checkCabs(t, without(want, bad))
	if links, blobs := h.em.CabRequests(bad); links != 1 || blobs != 0 {
		t.Fatalf("refused cab: %d link and %d blob requests, want 1 and 0", links, blobs)
	}
	if strings.Contains(h.log.String(), bad) {
		t.Error("the log names the refused CabIdHash")
	}

	// The switch is off now, but the allowlist is the same: not asked again.
	h.em.SetCabFaults(emulator.CabFaults{})
	for run := 2; run <= 3; run++ {
		sum = h.run(t)
		if links, _ := h.em.CabRequests(bad); links != 1 {
			t.Fatalf("run %d asked for the refused cab again", run)
		}
		if sum.CabsRefused != 0 || sum.CabReasons[cabmirror.OutcomeRefusedEarlier][cabmirror.ReasonHostNotAllowed] != 1 ||
			sum.CabsIncomplete() || !sum.NothingToDo() {
			t.Errorf("run %d: %+v; want the refusal remembered, nothing new", run, sum)
		}
	}
	if !strings.Contains(h.log.String(), "not asked for again until cabs.allow_hosts changes") {
		t.Error("remembered refusals are not logged")
	}

	// A changed allowlist: the refused cab is asked for again and lands.
	h.runner.Config.Cabs.AllowHosts = append(h.runner.Config.Cabs.AllowHosts, ".example.net")
	sum = h.run(t)
	if links, _ := h.em.CabRequests(bad); links != 2 || sum.CabsMirrored != 1 || sum.CabReasons != nil {
		t.Errorf("after the allowlist changed: %d link requests, summary %+v", links, sum)
	}
	h.checkCabs(t, want)
}

// TestMirrorRefusalRememberedBesideAFailedCab: a refused cab that shares
// its partition with a cab that keeps failing is still remembered: the
// failed cab is tried again on the next run, the refused one is not.
func TestMirrorRefusalRememberedBesideAFailedCab(t *testing.T) {
	h := newCabHarness(t, fewDays(), nil)
	h.ingestOnly(t)
	want := wantCabs(t, h.lakeDir, h.clock.Now())
	refused := firstInQueue(want)
	var failing string
	for hash, d := range want {
		if hash != refused && d == want[refused] && (failing == "" || hash < failing) {
			failing = hash
		}
	}
	if failing == "" {
		t.Fatal("no second cab under the refused cab's date")
	}
	h.em.SetCabFaults(emulator.CabFaults{OffAllowlist: []string{refused}, Corrupt: []string{failing}})
	sum, err := h.runner.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.CabsRefused != 1 || sum.CabsFailed != 1 {
		t.Fatalf("first run: %+v; want 1 refused and 1 failed", sum)
	}
	sum, err = h.runner.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if links, _ := h.em.CabRequests(refused); links != 1 {
		t.Errorf("the refused cab was asked for %d times, want once", links)
	}
	if _, blobs := h.em.CabRequests(failing); blobs != 6 {
		t.Errorf("%d blob requests for the failing cab, want 6 (tried again on the second run)", blobs)
	}
	if sum.CabsRefused != 0 || sum.CabsFailed != 1 ||
		sum.CabReasons[cabmirror.OutcomeRefusedEarlier][cabmirror.ReasonHostNotAllowed] != 1 {
		t.Errorf("second run: %+v; want the refusal remembered and the failed cab failing again", sum)
	}
	h.em.SetCabFaults(emulator.CabFaults{})
	h.run(t)
	h.checkCabs(t, without(want, refused))
	if links, _ := h.em.CabRequests(refused); links != 1 {
		t.Errorf("the refused cab was asked for %d times after the partition settled, want once", links)
	}
}

// TestMirrorRefusedAgainUnderNewAllowlist: a changed allowlist that still
// refuses the cab records the refusal under the new allowlist.
func TestMirrorRefusedAgainUnderNewAllowlist(t *testing.T) {
	h := newCabHarness(t, fewDays(), nil)
	h.ingestOnly(t)
	want := wantCabs(t, h.lakeDir, h.clock.Now())
	bad := firstInQueue(want)
	h.em.SetCabFaults(emulator.CabFaults{OffAllowlist: []string{bad}})
	h.run(t)
	h.runner.Config.Cabs.AllowHosts = append(h.runner.Config.Cabs.AllowHosts, ".example.net")
	if sum := h.run(t); sum.CabsRefused != 1 {
		t.Errorf("new allowlist: %+v, want the cab refused again", sum)
	}
	if sum := h.run(t); sum.CabsRefused != 0 {
		t.Errorf("same allowlist: %+v, want the refusal remembered", sum)
	}
	if links, _ := h.em.CabRequests(bad); links != 2 {
		t.Errorf("%d link requests for the refused cab, want 2", links)
	}
	h.checkCabs(t, without(want, bad))
}

// TestMirrorMD5CorruptionHeals: a cab whose first download fails its MD5
// (emulator switch Corrupt, CorruptAttempts 1) is downloaded again within
// the run and lands with the true bytes.
func TestMirrorMD5CorruptionHeals(t *testing.T) {
	h := newCabHarness(t, fewDays(), nil)
	h.ingestOnly(t)
	want := wantCabs(t, h.lakeDir, h.clock.Now())
	bad := firstInQueue(want)
	h.em.SetCabFaults(emulator.CabFaults{Corrupt: []string{bad}, CorruptAttempts: 1})
	sum := h.run(t)
	if sum.CabsMirrored != len(want) || sum.CabsFailed != 0 || sum.CabsIncomplete() ||
		sum.CabReasons[cabmirror.OutcomeRetried][cabmirror.ReasonMD5Mismatch] != 1 {
		t.Errorf("summary %+v; want every cab mirrored after one retry", sum)
	}
	if _, blobs := h.em.CabRequests(bad); blobs != 2 {
		t.Errorf("%d blob requests for the corrupt cab, want 2", blobs)
	}
	h.checkCabs(t, want)
}

// TestMirrorMD5CorruptionPermanent: a cab whose every download fails its
// MD5 fails, with its reason, after a bounded number of attempts; the
// others land in the same run, which is partial and no error. The next
// run tries the cab again (a failure is not remembered).
func TestMirrorMD5CorruptionPermanent(t *testing.T) {
	h := newCabHarness(t, fewDays(), nil)
	h.ingestOnly(t)
	want := wantCabs(t, h.lakeDir, h.clock.Now())
	bad := firstInQueue(want)
	h.em.SetCabFaults(emulator.CabFaults{Corrupt: []string{bad}})
	sum, err := h.runner.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.CabsFailed != 1 || sum.CabsMirrored != len(want)-1 || sum.CabsDeferred != 0 || !sum.CabsIncomplete() ||
		sum.CabReasons[cabmirror.OutcomeFailed][cabmirror.ReasonMD5Mismatch] != 1 ||
		sum.CabReasons[cabmirror.OutcomeRetried][cabmirror.ReasonMD5Mismatch] != 2 {
		t.Fatalf("summary %+v; want 1 failed (md5_mismatch, 2 retries), the rest mirrored", sum)
	}
	if _, blobs := h.em.CabRequests(bad); blobs != 3 {
		t.Errorf("%d blob requests for the corrupt cab, want 3 (bounded attempts)", blobs)
	}
	h.checkCabs(t, without(want, bad))
	if log := h.log.String(); !strings.Contains(log, "cabs failed") || !strings.Contains(log, "md5_mismatch") || strings.Contains(log, bad) {
		t.Errorf("log should name the failure and its reason, never the CabIdHash:\n%s", log)
	}
	sum = h.run(t)
	if _, blobs := h.em.CabRequests(bad); blobs != 6 || sum.CabsFailed != 1 {
		t.Errorf("second run: %d blob requests in all, summary %+v; want the cab tried again", blobs, sum)
	}
}

// TestMirrorInterruptedIsNotClean: a cycle cancelled in the middle of the
// cab mirror returns the cancellation, says it was interrupted, and counts
// the cabs it left as deferred; the next run finishes them.
func TestMirrorInterruptedIsNotClean(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var blobs atomic.Int64
	h := newCabHarness(t, cabOptions(), func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/blobs/cabs/") && blobs.Add(1) == 10 {
				cancel()
			}
			next.ServeHTTP(w, r)
		})
	})
	h.ingestOnly(t)
	sum, err := h.runner.Run(ctx)
	if !errors.Is(err, context.Canceled) || !sum.Interrupted || sum.CabsDeferred == 0 ||
		sum.CabReasons[cabmirror.OutcomeDeferred][cabmirror.ReasonInterrupted] != sum.CabsDeferred {
		t.Fatalf("interrupted run: err %v, summary %+v; want the cancellation and deferred cabs", err, sum)
	}
	h.run(t)
	h.checkCabs(t, wantCabs(t, h.lakeDir, h.clock.Now()))
}
