package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTokenResponseIsAADv1(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	status, body := h.postForm("/demo-tenant/oauth2/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"demo-client"},
		"client_secret": {"demo-secret"}, "resource": {"https://manage.devcenter.microsoft.com"},
	})
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"token_type":     "Bearer",
		"expires_in":     "3599", // a string, as AAD v1 sends it
		"ext_expires_in": "3599",
		"expires_on":     strconv.FormatInt(testNow.Add(time.Hour).Unix(), 10),
		"not_before":     strconv.FormatInt(testNow.Unix(), 10),
		"resource":       "https://manage.devcenter.microsoft.com",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if tok, _ := got["access_token"].(string); len(tok) < 32 || tok == h.token {
		t.Errorf("access_token %q: want a fresh random token", tok)
	}
}

func TestTokenAcceptsBasicAuthAndScope(t *testing.T) {
	// A secret with characters that form-encoding changes, as
	// golang.org/x/oauth2 encodes Basic credentials.
	h := newHarness(t, Options{ClientSecret: "s3cr:t/+x y"}, testNow)
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/demo-tenant/oauth2/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"https://manage.devcenter.microsoft.com/.default"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape("demo-client"), url.QueryEscape("s3cr:t/+x y"))
	resp := h.send(req)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var tok tokenResponse
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatal(err)
	}
	h.api(http.StatusOK, http.MethodGet, "/analytics/driver/reporttemplate", nil) // the harness's own token
	resp, body = h.callWithToken(tok.AccessToken, http.MethodGet, "/analytics/driver/report", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("API call with the Basic-auth token: status %d: %s", resp.StatusCode, body)
	}
}

func TestTokenRejectsBadRequests(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	good := func() url.Values {
		return url.Values{
			"grant_type": {"client_credentials"}, "client_id": {"demo-client"},
			"client_secret": {"demo-secret"}, "resource": {devCenterResource},
		}
	}
	tests := []struct {
		name   string
		tenant string
		change func(url.Values)
		status int
		code   string
	}{
		{"wrong tenant", "other-tenant", func(url.Values) {}, http.StatusUnauthorized, "invalid_client"},
		{"wrong client", "demo-tenant", func(v url.Values) { v.Set("client_id", "x") }, http.StatusUnauthorized, "invalid_client"},
		{"wrong secret", "demo-tenant", func(v url.Values) { v.Set("client_secret", "x") }, http.StatusUnauthorized, "invalid_client"},
		{"no grant", "demo-tenant", func(v url.Values) { v.Del("grant_type") }, http.StatusBadRequest, "invalid_request"},
		{"other grant", "demo-tenant", func(v url.Values) { v.Set("grant_type", "password") }, http.StatusBadRequest, "unsupported_grant_type"},
		{"no client", "demo-tenant", func(v url.Values) { v.Del("client_id") }, http.StatusBadRequest, "invalid_request"},
		{"no resource", "demo-tenant", func(v url.Values) { v.Del("resource") }, http.StatusBadRequest, "invalid_request"},
		{"wrong resource", "demo-tenant", func(v url.Values) { v.Set("resource", "https://graph.windows.net") }, http.StatusBadRequest, "invalid_request"},
		{"wrong scope", "demo-tenant", func(v url.Values) { v.Del("resource"); v.Set("scope", "https://graph.windows.net/.default") }, http.StatusBadRequest, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := good()
			tt.change(form)
			status, body := h.postForm("/"+tt.tenant+"/oauth2/token", form)
			var e oauthError
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("decoding %s: %v", body, err)
			}
			if status != tt.status || e.Error != tt.code || e.ErrorDescription == "" {
				t.Errorf("got %d %+v, want %d %s with a description", status, e, tt.status, tt.code)
			}
		})
	}
	resp, _ := h.get(h.srv.URL + "/demo-tenant/oauth2/token")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET token endpoint: status %d, want 405", resp.StatusCode)
	}
}

func TestTokenExpiresWithTheClock(t *testing.T) {
	h := newHarness(t, Options{TokenTTL: 30 * time.Minute}, testNow)
	h.clock.Advance(29 * time.Minute)
	h.api(http.StatusOK, http.MethodGet, "/analytics/driver/report", nil)
	h.clock.Advance(time.Minute)
	h.apiError(http.StatusUnauthorized, "Unauthorized", "expired", http.MethodGet, "/analytics/driver/report", nil)
	h.token = h.newToken()
	h.api(http.StatusOK, http.MethodGet, "/analytics/driver/report", nil)
}

func TestAPIRequiresBearerToken(t *testing.T) {
	h := newHarness(t, Options{}, testNow)
	paths := []string{
		"/analytics/driver/reporttemplate",
		"/v1.0/my/analytics/driver/reporttemplate/1",
		"/analytics/driver/report",
		"/analytics/driver/reportdata/1",
	}
	for _, path := range paths {
		for _, token := range []string{"", "not-a-token"} {
			resp, body := h.callWithToken(token, http.MethodGet, path, nil)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("GET %s with token %q: status %d, want 401", path, token, resp.StatusCode)
			}
			var env testEnvelope
			if err := json.Unmarshal(body, &env); err != nil {
				t.Fatal(err)
			}
			if string(env.Data) != "null" || len(env.Errors) != 1 || env.Errors[0].Code != "Unauthorized" {
				t.Errorf("GET %s: body %s, want an Unauthorized error envelope", path, body)
			}
		}
	}
	resp, _ := h.callWithToken("", http.MethodGet, "/v1.0/my/analytics/hardware/cabdownload?cabIdHash=x", nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("cab download without a token: status %d, want 401", resp.StatusCode)
	}
}
