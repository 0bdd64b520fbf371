package emulator

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// apiFault draws the fault of an API call whose bearer token has been
// accepted. It returns nil for no fault, else the error to answer with
// (its headers, such as Retry-After, already set on w). A 401 fault revokes
// the call's token.
func (e *Emulator) apiFault(w http.ResponseWriter, r *http.Request) error {
	k, f, ok := e.drawFault(apiFaultKinds)
	if !ok {
		return nil
	}
	e.faultCounts[k].Add(1)
	switch k {
	case faultUnauthorized:
		e.mu.Lock()
		delete(e.tokens, bearerToken(r))
		e.mu.Unlock()
		return unauthorized("the access token has been revoked (emulated fault)")
	case faultTooManyRequests:
		secs := int64((f.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		return &apiError{http.StatusTooManyRequests, "TooManyRequests",
			fmt.Sprintf("Rate limit is exceeded. Try again in %d seconds. (emulated fault)", secs)}
	default:
		return &apiError{http.StatusInternalServerError, "InternalServerError",
			"An unexpected error occurred while processing the request. (emulated fault)"}
	}
}

// blobFault draws the fault of a blob download about to be served. An
// expire fault is answered here (answered is true); truncate and slow
// faults return a writer that applies them to the body; otherwise w is
// returned as it is.
func (e *Emulator) blobFault(w http.ResponseWriter, r *http.Request) (_ http.ResponseWriter, answered bool) {
	k, f, ok := e.drawFault(blobFaultKinds)
	if !ok {
		return w, false
	}
	if k == faultExpire {
		e.faultCounts[k].Add(1)
		writeBlobError(w, http.StatusForbidden, blobAuthFailed, msgExpiredSignature)
		return w, true
	}
	delay := f.SlowDelay
	if delay == 0 {
		delay = DefaultSlowDelay
	}
	return &faultWriter{ResponseWriter: w, ctx: r.Context(), kind: k, delay: delay,
		fired: func() { e.faultCounts[k].Add(1) }}, false
}

// faultWriter applies a truncate or slow fault to a response body: once
// half of the announced Content-Length has been written, it flushes, then
// either aborts the connection (truncate) or stalls for delay (slow). It
// only acts on 200 and 206 answers with a Content-Length.
type faultWriter struct {
	http.ResponseWriter
	ctx   context.Context
	kind  faultKind // faultTruncate or faultSlow
	delay time.Duration
	fired func()

	wroteHeader bool
	armed       bool
	cut         int64 // body bytes to write before the fault
	written     int64
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (fw *faultWriter) Unwrap() http.ResponseWriter { return fw.ResponseWriter }

func (fw *faultWriter) WriteHeader(code int) {
	if !fw.wroteHeader {
		fw.wroteHeader = true
		n, err := strconv.ParseInt(fw.Header().Get("Content-Length"), 10, 64)
		if (code == http.StatusOK || code == http.StatusPartialContent) && err == nil && n > 0 {
			fw.armed, fw.cut = true, n/2
		}
	}
	fw.ResponseWriter.WriteHeader(code)
}

func (fw *faultWriter) Write(p []byte) (int, error) {
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	if !fw.armed || fw.written+int64(len(p)) <= fw.cut {
		n, err := fw.ResponseWriter.Write(p)
		fw.written += int64(n)
		return n, err
	}
	head := fw.cut - fw.written
	n, err := fw.ResponseWriter.Write(p[:head])
	fw.written += int64(n)
	if err != nil {
		return n, err
	}
	http.NewResponseController(fw.ResponseWriter).Flush()
	fw.armed = false
	fw.fired()
	if fw.kind == faultTruncate {
		// The server closes the connection without logging: the client
		// has the headers and half of the body, then EOF.
		panic(http.ErrAbortHandler)
	}
	t := time.NewTimer(fw.delay)
	select {
	case <-t.C:
	case <-fw.ctx.Done():
		t.Stop()
	}
	m, err := fw.ResponseWriter.Write(p[head:])
	fw.written += int64(m)
	return n + m, err
}
