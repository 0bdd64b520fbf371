package retry

import (
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ShouldRetry is the status table: whether a call answered with status
// may be tried again. 429 and 503 say the service did not act, so every
// call may; 408 and the other 5xx may have acted, so only an idempotent
// call may. Every other status is final (4xx: see PermanentStatus).
func ShouldRetry(status int, idempotent bool) bool {
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable:
		return true
	case status == http.StatusRequestTimeout, status >= 500:
		return idempotent
	}
	return false
}

// PermanentStatus reports whether status is a 4xx that no retry of any
// call can fix: every 4xx but 408 (Request Timeout) and 429 (Too Many
// Requests). Error types carrying a status implement Permanent() with it.
func PermanentStatus(status int) bool {
	return status >= 400 && status < 500 &&
		status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}

// ShouldRetryError is the table's row for a call that got no answer (err
// from the transport): an idempotent call may be tried again; any other
// only if the request cannot have reached the server (the dial failed).
func ShouldRetryError(err error, idempotent bool) bool {
	var oe *net.OpError
	return idempotent || errors.As(err, &oe) && oe.Op == "dial"
}

// RetryAfter parses a Retry-After header, in seconds or as an HTTP date
// (compared with now). It returns 0 for none, a malformed value or a date
// not after now; a number of seconds too large for a Duration gives the
// largest Duration (a Policy caps its waits with MaxWait).
func RetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		if s > math.MaxInt64/int64(time.Second) {
			return math.MaxInt64
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
