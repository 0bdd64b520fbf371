package emulator

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Fault kinds, as ParseFaults spells them and FaultCounts keys them.
const (
	// FaultUnauthorized: an API call answers 401 as if its access token had
	// been revoked, and the token is revoked (later calls with it get a
	// genuine 401), so the client must get a new token and retry.
	FaultUnauthorized = "401"
	// FaultTooManyRequests: an API call answers 429 with Retry-After.
	FaultTooManyRequests = "429"
	// FaultServerError: an API call answers 500 ("HDC sometimes fails").
	FaultServerError = "500"
	// FaultExpire: a blob download answers 403 AuthenticationFailed as if
	// its link had expired, though it has not.
	FaultExpire = "expire"
	// FaultTruncate: a blob download announces its full Content-Length,
	// sends half of the body and closes the connection, so the client reads
	// an unexpected EOF. The handler aborts with panic(http.ErrAbortHandler),
	// which net/http's server turns into a silently closed connection; a
	// caller invoking the handler directly (httptest.NewRecorder) sees the
	// panic.
	FaultTruncate = "truncate"
	// FaultSlow: a blob download stalls for SlowDelay after half of the
	// body, then completes.
	FaultSlow = "slow"
)

// Defaults ParseFaults applies (SlowDelay's also applies to a zero SlowDelay).
const (
	DefaultRetryAfter = time.Second
	DefaultSlowDelay  = 2 * time.Second
)

// Faults configures failure injection. The zero value injects nothing.
//
// API calls are the async endpoints and the cab download endpoints, after
// their bearer token has been accepted (the token endpoint never fails);
// blob downloads are report files and cabs, after their signature has been
// accepted and the blob found. A request suffers at most one fault: it
// draws one number u uniform in [0, 1), and the kinds that apply to it, in
// the order 401, 429, 500 for API calls and expire, truncate, slow for
// blob downloads, take consecutive slices of [0, 1) as wide as their
// probabilities. So each kind fires with exactly its probability while
// the probabilities of a request's kinds add up to at most 1; beyond that,
// the later kinds get what is left.
//
// The numbers come from a SplitMix64 sequence keyed by Options.Seed and a
// per-emulator request counter, not from crypto/rand: a test that sends
// its requests one at a time sees the same faults on every run, while
// concurrent requests draw in arrival order.
type Faults struct {
	// Probabilities in [0, 1] of each kind (see the Fault* constants).
	Unauthorized    float64
	TooManyRequests float64
	ServerError     float64
	Expire          float64
	Truncate        float64
	Slow            float64

	// RetryAfter is the Retry-After of 429 answers, rounded up to whole
	// seconds. Zero sends "Retry-After: 0" (what tests want); ParseFaults
	// sets DefaultRetryAfter unless the spec says otherwise.
	RetryAfter time.Duration
	// SlowDelay is how long a slow download stalls; 0 means DefaultSlowDelay.
	SlowDelay time.Duration
}

// faultKind indexes the kinds in FaultCounts' counters and Faults' fields.
type faultKind int

const (
	faultUnauthorized faultKind = iota
	faultTooManyRequests
	faultServerError
	faultExpire
	faultTruncate
	faultSlow
	numFaultKinds
)

var faultNames = [numFaultKinds]string{
	faultUnauthorized:    FaultUnauthorized,
	faultTooManyRequests: FaultTooManyRequests,
	faultServerError:     FaultServerError,
	faultExpire:          FaultExpire,
	faultTruncate:        FaultTruncate,
	faultSlow:            FaultSlow,
}

// The kinds that apply to each kind of request, in drawing order.
var (
	apiFaultKinds  = []faultKind{faultUnauthorized, faultTooManyRequests, faultServerError}
	blobFaultKinds = []faultKind{faultExpire, faultTruncate, faultSlow}
)

// probability returns a pointer to the field of f holding k's probability.
func (f *Faults) probability(k faultKind) *float64 {
	return [numFaultKinds]*float64{
		faultUnauthorized:    &f.Unauthorized,
		faultTooManyRequests: &f.TooManyRequests,
		faultServerError:     &f.ServerError,
		faultExpire:          &f.Expire,
		faultTruncate:        &f.Truncate,
		faultSlow:            &f.Slow,
	}[k]
}

// ParseFaults parses a fault spec such as
// "429=0.2,500=0.1,truncate=0.05,expire=0.1,slow=0.05": comma-separated
// kind=probability items (kinds as the Fault* constants; probabilities
// from 0 to 1), plus optionally retry-after=DURATION and
// slow-delay=DURATION (Go durations such as "0s" or "500ms", or a number of
// seconds). The result has RetryAfter DefaultRetryAfter and SlowDelay
// DefaultSlowDelay unless the spec sets them. An empty spec injects
// nothing. Unknown kinds, bad numbers and repeated items are errors naming
// the item.
func ParseFaults(spec string) (Faults, error) {
	f := Faults{RetryAfter: DefaultRetryAfter, SlowDelay: DefaultSlowDelay}
	seen := make(map[string]bool)
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, ok := strings.Cut(item, "=")
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		if !ok {
			return Faults{}, fmt.Errorf("fault %q: want kind=probability", item)
		}
		if seen[name] {
			return Faults{}, fmt.Errorf("fault %q is given twice", name)
		}
		seen[name] = true
		switch name {
		case "retry-after", "slow-delay":
			d, err := parseFaultDuration(value)
			if err != nil {
				return Faults{}, fmt.Errorf("fault option %s: %w", name, err)
			}
			if name == "retry-after" {
				f.RetryAfter = d
			} else {
				f.SlowDelay = d
			}
			continue
		}
		k := faultKind(indexFold(faultNames[:], name))
		if k < 0 {
			return Faults{}, fmt.Errorf("fault kind %q is unknown: use %s, retry-after or slow-delay", name, strings.Join(faultNames[:], ", "))
		}
		p, err := strconv.ParseFloat(value, 64)
		if err != nil || !(p >= 0 && p <= 1) {
			return Faults{}, fmt.Errorf("fault %s: probability %q is not a number from 0 to 1", name, value)
		}
		*f.probability(k) = p
	}
	return f, nil
}

// parseFaultDuration parses a Go duration or a number of seconds, >= 0.
func parseFaultDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, numErr := strconv.ParseFloat(s, 64)
		if numErr != nil || math.IsNaN(secs) || secs > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("%q is not a duration like 1s or 500ms", s)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// validate checks the probabilities and durations of f.
func (f Faults) validate() error {
	for k := range numFaultKinds {
		if p := *f.probability(k); !(p >= 0 && p <= 1) {
			return fmt.Errorf("fault %s: probability %v is not from 0 to 1", faultNames[k], p)
		}
	}
	if f.RetryAfter < 0 || f.SlowDelay < 0 {
		return fmt.Errorf("fault durations must not be negative (RetryAfter %v, SlowDelay %v)", f.RetryAfter, f.SlowDelay)
	}
	return nil
}

// SetFaults replaces the fault configuration from the next request on. It
// is safe for concurrent use with requests and other calls. It panics if a
// probability is outside [0, 1] or a duration negative, as New does for
// Options.Faults: that is a programming error.
func (e *Emulator) SetFaults(f Faults) {
	if err := f.validate(); err != nil {
		panic("emulator.SetFaults: " + err.Error())
	}
	e.faults.Store(&f)
}

// FaultCounts returns how many times each fault kind has fired so far,
// keyed by kind (every kind is present). Truncate and slow faults count
// when the body is actually cut or stalled, which a download whose answer
// has no body (HEAD, 304, 416) never reaches.
func (e *Emulator) FaultCounts() map[string]int64 {
	counts := make(map[string]int64, numFaultKinds)
	for k, name := range faultNames {
		counts[name] = e.faultCounts[k].Load()
	}
	return counts
}

// drawFault draws the fault, if any, of a request to which kinds apply.
func (e *Emulator) drawFault(kinds []faultKind) (faultKind, *Faults, bool) {
	f := e.faults.Load()
	total := 0.0
	for _, k := range kinds {
		total += *f.probability(k)
	}
	if total == 0 {
		return 0, f, false
	}
	u := float64(hashOf(e.seed, tagFault, e.faultDraws.Add(1))>>11) / (1 << 53)
	for _, k := range kinds {
		p := *f.probability(k)
		if u < p {
			return k, f, true
		}
		u -= p
	}
	return 0, f, false
}
