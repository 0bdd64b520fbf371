package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseFaults(t *testing.T) {
	tests := []struct {
		spec    string
		want    Faults
		wantErr string
	}{
		{"", Faults{RetryAfter: DefaultRetryAfter, SlowDelay: DefaultSlowDelay}, ""},
		{"429=0.2,500=0.1,truncate=0.05,expire=0.1,slow=0.05", Faults{
			TooManyRequests: 0.2, ServerError: 0.1, Truncate: 0.05, Expire: 0.1, Slow: 0.05,
			RetryAfter: DefaultRetryAfter, SlowDelay: DefaultSlowDelay}, ""},
		{" 401=1 , SLOW=0 ,, retry-after=0s, slow-delay=250ms ", Faults{Unauthorized: 1, SlowDelay: 250 * time.Millisecond}, ""},
		{"retry-after=3,slow-delay=0.5", Faults{RetryAfter: 3 * time.Second, SlowDelay: 500 * time.Millisecond}, ""},
		{"404=0.1", Faults{}, `fault kind "404" is unknown`},
		{"timeout=0.1", Faults{}, `fault kind "timeout" is unknown`},
		{"429=abc", Faults{}, `fault 429: probability "abc"`},
		{"500=1.5", Faults{}, `fault 500: probability "1.5"`},
		{"truncate=-0.1", Faults{}, `fault truncate: probability "-0.1"`},
		{"expire=NaN", Faults{}, `fault expire: probability "NaN"`},
		{"slow", Faults{}, `fault "slow": want kind=probability`},
		{"429=0.1,429=0.2", Faults{}, `fault "429" is given twice`},
		{"retry-after=soon", Faults{}, `fault option retry-after: "soon" is not a duration`},
		{"slow-delay=-1s", Faults{}, `fault option slow-delay: "-1s" is negative`},
	}
	for _, tt := range tests {
		got, err := ParseFaults(tt.spec)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseFaults(%q): error %v, want one containing %q", tt.spec, err, tt.wantErr)
		case tt.wantErr == "" && err != nil:
			t.Errorf("ParseFaults(%q): %v", tt.spec, err)
		case tt.wantErr == "" && got != tt.want:
			t.Errorf("ParseFaults(%q) = %+v, want %+v", tt.spec, got, tt.want)
		}
	}
}

func TestInvalidFaultsPanic(t *testing.T) {
	em := New(Options{})
	for _, f := range []Faults{{Truncate: 2}, {Slow: -0.5}, {RetryAfter: -time.Second}} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("SetFaults(%+v) did not panic", f)
				}
			}()
			em.SetFaults(f)
		}()
	}
}

// wantCounts asserts the emulator's fault counts; kinds not in want are 0.
func wantCounts(t *testing.T, em *Emulator, want map[string]int64) {
	t.Helper()
	for kind, n := range em.FaultCounts() {
		if n != want[kind] {
			t.Errorf("FaultCounts()[%s] = %d, want %d (all: %v)", kind, n, want[kind], em.FaultCounts())
		}
	}
}

func TestAPIFaults(t *testing.T) {
	const list = "/analytics/driver/reporttemplate"
	h := newHarness(t, Options{}, testNow)
	cab, app := h.firstCab(DemoIHVReportID)
	cabPath := "/v1.0/my/analytics/driver/cabdownload?applicationId=" + app + "&cabIdHash=" + cab

	// 429 on the async API and the cab endpoints, with Retry-After.
	h.em.SetFaults(Faults{TooManyRequests: 1})
	resp, body := h.call(http.MethodGet, list, nil)
	var env testEnvelope
	if err := json.Unmarshal(body, &env); err != nil || resp.StatusCode != http.StatusTooManyRequests ||
		resp.Header.Get("Retry-After") != "0" || len(env.Errors) != 1 || env.Errors[0].Code != "TooManyRequests" {
		t.Errorf("429 fault: status %d Retry-After %q body %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	h.em.SetFaults(Faults{TooManyRequests: 1, RetryAfter: 1500 * time.Millisecond})
	resp, body = h.call(http.MethodGet, cabPath, nil)
	var se storeError
	if err := json.Unmarshal(body, &se); err != nil || resp.StatusCode != http.StatusTooManyRequests ||
		resp.Header.Get("Retry-After") != "2" || se.Source != "AnalyticsAPI" || se.Code != "TooManyRequests" {
		t.Errorf("429 fault on a cab endpoint: status %d Retry-After %q body %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// The token endpoint never fails.
	h.newToken()
	wantCounts(t, h.em, map[string]int64{FaultTooManyRequests: 2})

	// 500 with the envelope.
	h.em.SetFaults(Faults{ServerError: 1})
	h.apiError(http.StatusInternalServerError, "InternalServerError", "emulated fault", http.MethodGet, list, nil)
	if resp, _ := h.call(http.MethodGet, cabPath, nil); resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("500 fault on a cab endpoint: status %d", resp.StatusCode)
	}

	// 401 revokes the token: it keeps failing without faults, and a new
	// token works.
	h.em.SetFaults(Faults{Unauthorized: 1})
	h.apiError(http.StatusUnauthorized, "Unauthorized", "revoked", http.MethodGet, list, nil)
	h.em.SetFaults(Faults{})
	h.apiError(http.StatusUnauthorized, "Unauthorized", "not valid", http.MethodGet, list, nil)
	h.token = h.newToken()
	h.api(http.StatusOK, http.MethodGet, list, nil)
	wantCounts(t, h.em, map[string]int64{FaultTooManyRequests: 2, FaultServerError: 2, FaultUnauthorized: 1})

	// Blob faults do not touch API calls, API faults not blobs.
	h.em.SetFaults(Faults{Expire: 1, Truncate: 1, Slow: 1})
	link := h.newestLink(DemoOEMReportID)
	h.em.SetFaults(Faults{Unauthorized: 1, TooManyRequests: 1, ServerError: 1})
	h.download(link, '\t')
}

func TestZeroProbabilityNeverFires(t *testing.T) {
	h := newHarness(t, Options{Faults: Faults{RetryAfter: time.Second}}, testNow)
	cab, _ := h.firstCab(DemoOEMReportID)
	location := h.cabRedirect("/v1.0/my/analytics/hardware/cabdownload?cabIdHash=" + cab)
	link := h.newestLink(DemoIHVReportID)
	for range 100 {
		h.api(http.StatusOK, http.MethodGet, "/analytics/driver/report", nil)
	}
	for range 5 {
		h.download(link, '\t')
		if resp, _ := h.get(location); resp.StatusCode != http.StatusOK {
			t.Fatalf("cab: status %d", resp.StatusCode)
		}
	}
	wantCounts(t, h.em, nil)
}

func TestBlobFaultExpire(t *testing.T) {
	h := newHarness(t, Options{Faults: Faults{Expire: 1}}, testNow)
	resp, body := h.get(h.newestLink(DemoIHVReportID))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "<Code>AuthenticationFailed</Code><Message>"+msgExpiredSignature) {
		t.Errorf("expire fault: status %d body %s", resp.StatusCode, body)
	}
	wantCounts(t, h.em, map[string]int64{FaultExpire: 1})
}

func TestBlobFaultTruncate(t *testing.T) {
	h := newHarness(t, Options{Gzip: true}, testNow)
	link := h.newestLink(DemoOEMReportID)
	cab, _ := h.firstCab(DemoOEMReportID)
	location := h.cabRedirect("/v1.0/my/analytics/hardware/cabdownload?cabIdHash=" + cab)
	h.em.SetFaults(Faults{Truncate: 1})
	for _, u := range []string{link, location} {
		for _, rng := range []string{"", "bytes=10-4009"} {
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			if rng != "" {
				req.Header.Set("Range", rng)
			}
			resp := h.send(req)
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("GET %s (Range %q): read error %v, want unexpected EOF", u, rng, err)
			}
			if resp.ContentLength <= 0 || int64(len(got)) != resp.ContentLength/2 {
				t.Errorf("GET %s (Range %q): %d of %d bytes, want half", u, rng, len(got), resp.ContentLength)
			}
		}
	}
	wantCounts(t, h.em, map[string]int64{FaultTruncate: 4})
}

func TestBlobFaultSlow(t *testing.T) {
	const delay = 150 * time.Millisecond
	h := newHarness(t, Options{}, testNow)
	cab, _ := h.firstCab(DemoOEMReportID)
	location := h.cabRedirect("/v1.0/my/analytics/hardware/cabdownload?cabIdHash=" + cab)
	_, clean := h.get(location)
	h.em.SetFaults(Faults{Slow: 1, SlowDelay: delay})
	start := time.Now()
	resp, body := h.get(location)
	if elapsed := time.Since(start); elapsed < delay {
		t.Errorf("slow fault: took %v, want at least %v", elapsed, delay)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, clean) {
		t.Errorf("slow fault: status %d, %d bytes, want the whole cab of %d", resp.StatusCode, len(body), len(clean))
	}
	wantCounts(t, h.em, map[string]int64{FaultSlow: 1})
}

func TestFaultsAreReproducible(t *testing.T) {
	pattern := func() string {
		h := newHarness(t, Options{Seed: 5, Faults: Faults{TooManyRequests: 0.3, ServerError: 0.2}}, testNow)
		var b strings.Builder
		for range 60 {
			resp, _ := h.call(http.MethodGet, "/analytics/driver/report", nil)
			b.WriteString(strconv.Itoa(resp.StatusCode) + " ")
		}
		counts := h.em.FaultCounts()
		if counts[FaultTooManyRequests] == 0 || counts[FaultServerError] == 0 || counts[FaultTooManyRequests]+counts[FaultServerError] == 60 {
			t.Errorf("60 calls at 429=0.3, 500=0.2: counts %v", counts)
		}
		return b.String()
	}
	if a, b := pattern(), pattern(); a != b {
		t.Errorf("same seed, different faults:\n%s\n%s", a, b)
	}
}

func TestSetFaultsIsRaceFree(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 25 {
				h.em.SetFaults(Faults{ServerError: float64((i+j)%2) * 0.5})
				h.em.FaultCounts()
			}
		})
		wg.Go(func() {
			for range 25 {
				req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/analytics/driver/report", nil)
				req.Header.Set("Authorization", "Bearer "+h.token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusInternalServerError {
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
}
