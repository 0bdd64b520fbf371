package emulator

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The Azure AD resource and scope that grant access to the Dev Center API.
const (
	devCenterResource = "https://manage.devcenter.microsoft.com"
	devCenterScope    = devCenterResource + "/.default"
)

// tokenResponse is an Azure AD v1 client-credentials token response. As in
// AAD v1, every number is sent as a string.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    string `json:"expires_in"`
	ExtExpiresIn string `json:"ext_expires_in"`
	ExpiresOn    string `json:"expires_on"`
	NotBefore    string `json:"not_before"`
	Resource     string `json:"resource"`
	AccessToken  string `json:"access_token"`
}

// oauthError is an Azure AD token endpoint error body.
type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes,omitempty"`
}

// handleToken serves POST /{tenant}/oauth2/token, the client-credentials
// grant of Azure AD v1. The client may authenticate with client_id and
// client_secret form fields or with HTTP Basic auth (URL-encoded as RFC 6749
// section 2.3.1 requires; golang.org/x/oauth2 sends either). The request must
// name the Dev Center API as resource (v1) or scope (v2 style).
//
// Wrong tenant, client id or secret: 401 invalid_client. Other problems: 400
// invalid_request or unsupported_grant_type. Success: 200 with a random
// opaque token valid for TokenTTL by the emulator's clock; expires_in is one
// second less than TokenTTL, like AAD's "3599" for an hour.
func (e *Emulator) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "the request body must be application/x-www-form-urlencoded: "+err.Error())
		return
	}
	form := r.PostForm
	switch grant := form.Get("grant_type"); grant {
	case "client_credentials":
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '"+grant+"'.")
		return
	}

	clientID, secret := form.Get("client_id"), form.Get("client_secret")
	if user, pass, ok := r.BasicAuth(); ok {
		clientID, secret = formUnescape(user), formUnescape(pass)
	}
	switch {
	case clientID == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
		return
	case r.PathValue("tenant") != e.opts.TenantID:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", 90002, "Tenant '"+r.PathValue("tenant")+"' not found.")
		return
	case clientID != e.opts.ClientID:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", 700016, "Application with identifier '"+clientID+"' was not found in the directory.")
		return
	case subtle.ConstantTimeCompare([]byte(secret), []byte(e.opts.ClientSecret)) != 1:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided.")
		return
	}

	resource, scope := form.Get("resource"), form.Get("scope")
	switch {
	case resource == "" && scope == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'resource' or 'scope'.")
		return
	case resource != "" && strings.TrimSuffix(resource, "/") != devCenterResource:
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 500011, "The resource '"+resource+"' is not "+devCenterResource+".")
		return
	case scope != "" && !slices.Contains(strings.Fields(scope), devCenterScope):
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 70011, "The provided scope '"+scope+"' does not contain "+devCenterScope+".")
		return
	}

	now := e.now()
	expires := now.Add(e.opts.TokenTTL)
	token := newAccessToken()
	e.mu.Lock()
	for t, exp := range e.tokens {
		if !now.Before(exp) {
			delete(e.tokens, t)
		}
	}
	e.tokens[token] = expires
	e.mu.Unlock()

	lifetime := strconv.FormatInt(max(int64(e.opts.TokenTTL/time.Second)-1, 0), 10)
	writeJSON(w, http.StatusOK, tokenResponse{
		TokenType:    "Bearer",
		ExpiresIn:    lifetime,
		ExtExpiresIn: lifetime,
		ExpiresOn:    strconv.FormatInt(expires.Unix(), 10),
		NotBefore:    strconv.FormatInt(now.Unix(), 10),
		Resource:     devCenterResource,
		AccessToken:  token,
	})
}

// checkBearer returns a 401 *apiError unless r carries a bearer token that
// the token endpoint issued and that has not expired by the emulator's clock.
func (e *Emulator) checkBearer(r *http.Request) error {
	token := bearerToken(r)
	if token == "" {
		return unauthorized("an Authorization: Bearer <access token> header is required")
	}
	e.mu.Lock()
	expires, found := e.tokens[token]
	e.mu.Unlock()
	switch {
	case !found:
		return unauthorized("the access token is not valid")
	case !e.now().Before(expires):
		return unauthorized("the access token has expired")
	}
	return nil
}

// bearerToken is the token of r's Authorization: Bearer header, or "".
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// tokenMethodNotAllowed answers non-POST requests to the token endpoint.
func tokenMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", http.MethodPost)
	writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts POST requests. Received a "+r.Method+" request.")
}

// writeOAuthError writes an Azure AD style error; the AADSTS code prefixes
// the description as AAD does.
func writeOAuthError(w http.ResponseWriter, status int, code string, aadsts int, description string) {
	writeJSON(w, status, oauthError{
		Error:            code,
		ErrorDescription: "AADSTS" + strconv.Itoa(aadsts) + ": " + description,
		ErrorCodes:       []int{aadsts},
	})
}

// newAccessToken returns a random opaque access token.
func newAccessToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails: crypto/rand.Read aborts the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}

// formUnescape undoes the form encoding clients apply to Basic credentials,
// leaving s as it is if it is not validly encoded.
func formUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
