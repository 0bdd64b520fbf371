package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// DefaultOffAllowlistURL is where CabFaults.OffAllowlist cabs redirect when
// OffAllowlistURL is empty: a host no allowlist holds (.invalid never
// resolves), so a client that followed it would fail loudly.
const DefaultOffAllowlistURL = "https://cabs.off-allowlist.invalid"

// Domain tags of the cab switches (kept apart from rand.go's).
const (
	tagCabOffAllowlist uint64 = 0x100 + iota
	tagCabCorrupt
)

// CabFaults are per-cab behaviours of the cab endpoints and blobs that
// the real service may show, chosen deterministically by CabIdHash: a
// list of hashes and/or a rate (the fraction of cabs whose hash, under
// the seed, falls below it, so the same cabs are chosen on every
// request). The zero value changes nothing.
type CabFaults struct {
	// OffAllowlist lists cabs (CabIdHash, any case) whose cab download
	// endpoint answers 302 to OffAllowlistURL instead of the emulator's
	// blob URL; OffAllowlistRate chooses a fraction of all cabs too.
	OffAllowlist     []string
	OffAllowlistRate float64
	// OffAllowlistURL is the scheme and host (and optional path prefix)
	// of the redirect; "" means DefaultOffAllowlistURL.
	OffAllowlistURL string

	// Corrupt lists cabs whose blob bytes are corrupted (one byte flipped
	// in the middle) while Content-MD5 and x-ms-blob-content-md5 still
	// report the true bytes' MD5; CorruptRate chooses a fraction too.
	Corrupt     []string
	CorruptRate float64
	// CorruptAttempts, if above 0, corrupts only a cab's first
	// CorruptAttempts downloads, so a client's retry heals. A download is
	// a request without Range, or from byte 0; a Range request from a
	// later byte resumes the last download and is corrupted like it.
	CorruptAttempts int
}

func (f CabFaults) validate() error {
	for _, r := range []float64{f.OffAllowlistRate, f.CorruptRate} {
		if !(r >= 0 && r <= 1) {
			return fmt.Errorf("rate %v is outside [0, 1]", r)
		}
	}
	if f.CorruptAttempts < 0 {
		return fmt.Errorf("CorruptAttempts %d is negative", f.CorruptAttempts)
	}
	if u := f.OffAllowlistURL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return fmt.Errorf("OffAllowlistURL %q is not an http(s) URL", u)
	}
	return nil
}

// cabFaultState is the emulator's cab switches and per-cab counters.
type cabFaultState struct {
	mu       sync.Mutex
	f        CabFaults
	links    map[string]int  // cab endpoint requests by lower-case CabIdHash
	blobs    map[string]int  // blob requests by lower-case CabIdHash
	attempts map[string]int  // downloads (not resumptions) by lower-case CabIdHash
	corrupt  map[string]bool // whether the last download was corrupted
}

func newCabFaultState(f CabFaults) *cabFaultState {
	return &cabFaultState{f: f, links: map[string]int{}, blobs: map[string]int{},
		attempts: map[string]int{}, corrupt: map[string]bool{}}
}

// SetCabFaults replaces the cab switches (see Options.CabFaults). It
// panics on an invalid value, as New does. Counters are kept.
func (e *Emulator) SetCabFaults(f CabFaults) {
	if err := f.validate(); err != nil {
		panic(fmt.Sprintf("emulator.SetCabFaults: %v", err))
	}
	e.cabFaults.mu.Lock()
	defer e.cabFaults.mu.Unlock()
	e.cabFaults.f = f
}

// CabRequests reports how many requests the emulator received for the cab
// with the given CabIdHash (any case): to its cab download endpoints
// (links: those that passed the token, fault and parameter checks) and to
// its blob (blobs: those with a valid signature, for a cab it serves).
func (e *Emulator) CabRequests(cabIDHash string) (links, blobs int) {
	h := strings.ToLower(strings.TrimSpace(cabIDHash))
	e.cabFaults.mu.Lock()
	defer e.cabFaults.mu.Unlock()
	return e.cabFaults.links[h], e.cabFaults.blobs[h]
}

// chosen reports whether the cab with lower-case hash h is on list or
// falls under rate (by its hash under tag and the seed).
func (e *Emulator) chosen(h string, list []string, rate float64, tag uint64) bool {
	if slices.ContainsFunc(list, func(s string) bool { return strings.EqualFold(strings.TrimSpace(s), h) }) {
		return true
	}
	if rate <= 0 {
		return false
	}
	var x uint64
	for i := 0; i < len(h); i++ {
		x = hashOf(x, uint64(h[i]))
	}
	return float64(hashOf(e.seed, tag, x)>>11)/(1<<53) < rate
}

// offAllowlistLink counts a cab endpoint request and returns the link to
// redirect to if the cab is switched off the allowlist, else "".
func (e *Emulator) offAllowlistLink(hash string) string {
	h := strings.ToLower(hash)
	s := e.cabFaults
	s.mu.Lock()
	defer s.mu.Unlock()
	s.links[h]++
	if !e.chosen(h, s.f.OffAllowlist, s.f.OffAllowlistRate, tagCabOffAllowlist) {
		return ""
	}
	base := s.f.OffAllowlistURL
	if base == "" {
		base = DefaultOffAllowlistURL
	}
	return strings.TrimSuffix(base, "/") + "/cabs/" + h + ".cab?sig=off-allowlist"
}

// corruptBlob counts a blob request for the cab with hash and returns
// the bytes to serve: data, or a corrupted copy if the switch applies.
func (e *Emulator) corruptBlob(r *http.Request, hash string, data []byte) []byte {
	h := strings.ToLower(hash)
	s := e.cabFaults
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[h]++
	rng := r.Header.Get("Range")
	if rng == "" || strings.HasPrefix(rng, "bytes=0-") {
		s.attempts[h]++
		s.corrupt[h] = e.chosen(h, s.f.Corrupt, s.f.CorruptRate, tagCabCorrupt) &&
			(s.f.CorruptAttempts == 0 || s.attempts[h] <= s.f.CorruptAttempts)
	}
	if !s.corrupt[h] || len(data) == 0 {
		return data
	}
	bad := slices.Clone(data)
	bad[len(bad)/2] ^= 0xFF
	return bad
}
