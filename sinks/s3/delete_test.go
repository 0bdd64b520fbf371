package s3_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hdc-export/hdc-export/sinks"
	"github.com/hdc-export/hdc-export/sinks/s3/miniotest"
)

// TestDeleteBatches deletes 1500 keys, missing ones among them, in two
// DeleteObjects calls.
func TestDeleteBatches(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	rec := newRecorder()
	s := newStoreVia(t, srv, srv.Config(bucket, "del"), rec)
	keys := make([]string, 1500)
	for i := range keys {
		keys[i] = fmt.Sprintf("date=2026-11-%02d/part-%05d", i%30+1, i)
	}
	putKeys(t, s, keys[:1050]) // both batches hold existing keys; the last 450 never exist
	if err := s.Put(t.Context(), "keep", strings.NewReader("k")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), keys...); err != nil {
		t.Fatalf("Delete(1500 keys): %v", err)
	}
	if n := len(rec.requests(http.MethodPost, "delete")); n != 2 {
		t.Errorf("%d DeleteObjects requests, want 2", n)
	}
	if got := listKeys(t, s, ""); !equal(got, []string{"keep"}) {
		t.Errorf("left after Delete: %d keys, first %q", len(got), got[:min(3, len(got))])
	}
}

// TestDeletePerKeyErrors checks that per-key failures inside a successful
// DeleteObjects response are reported, mapped and joined.
func TestDeletePerKeyErrors(t *testing.T) {
	srv := miniotest.Shared(t)
	rec := newRecorder()
	rec.inject = func(r *http.Request) (*http.Response, error) {
		if r.Method != http.MethodPost || !strings.Contains(r.URL.RawQuery, "delete") {
			return nil, nil
		}
		body := `<?xml version="1.0" encoding="UTF-8"?><DeleteResult>` +
			`<Error><Key>a</Key><Code>AccessDenied</Code><Message>no</Message></Error>` +
			`<Error><Key>b</Key><Code>InternalError</Code><Message>try again</Message></Error>` +
			`<Error><Key>c</Key><Code>NoSuchKey</Code><Message>gone</Message></Error>` +
			`</DeleteResult>`
		return &http.Response{StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/xml"}}, Request: r,
			Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}, nil
	}
	s := newStoreVia(t, srv, srv.Config(srv.NewBucket(t), ""), rec)
	err := s.Delete(t.Context(), "a", "b", "c")
	if err == nil || !errors.Is(err, sinks.ErrPermanent) {
		t.Fatalf("Delete = %v, want a joined error with ErrPermanent", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `"a"`) || !strings.Contains(msg, `"b"`) || strings.Contains(msg, `"c"`) {
		t.Errorf("Delete error %q: want keys a and b, not the missing c", msg)
	}
}
