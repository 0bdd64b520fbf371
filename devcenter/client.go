// Package devcenter is a client for Microsoft Hardware Dev Center's
// asynchronous driver-failure report API: report templates, scheduled
// reports, report data (runs and their download links), report downloads
// and cab downloads. ../shared/docs/devcenter-api.md is the reference.
//
// Every call goes through the one retry policy, internal/retry (network
// errors, 408, 429 with Retry-After, 5xx; the API's other 4xx are
// permanent), and one token source (client credentials, refreshed
// before expiry and once more on a 401). Decoding tolerates the API's known
// inconsistencies: key casing, ids as numbers or strings, "Completed" or
// "Success". Errors name the endpoint and status, never the token or a
// link's signature.
package devcenter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/hdc-export/hdc-export/internal/retry"
)

// Resource is the token audience the API requires.
const Resource = "https://manage.devcenter.microsoft.com"

// Config configures a Client.
type Config struct {
	// BaseURL is the API host, default "https://manage.devcenter.microsoft.com".
	BaseURL string `yaml:"url"`
	// ReportPath prefixes the async report endpoints; default "/analytics/driver".
	ReportPath string `yaml:"report_path"`
	// CabPath prefixes the cab download endpoints; default "/v1.0/my/analytics".
	CabPath string `yaml:"cab_path"`
	// TokenURL is the client-credentials endpoint; default
	// "https://login.microsoftonline.com/{TenantID}/oauth2/token".
	TokenURL     string `yaml:"token_url"`
	TenantID     string `yaml:"tenant_id"`
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"-"` // from the environment only
	// MaxAttempts bounds tries per call (default retry.DefaultAttempts, 6);
	// RetryBase is the first backoff (default 500ms), doubled each try up
	// to RetryMax (default 30s). They make the client's retry.Policy.
	MaxAttempts int           `yaml:"max_attempts"`
	RetryBase   time.Duration `yaml:"retry_base"`
	RetryMax    time.Duration `yaml:"retry_max"`
	// IdleTimeout cuts a download (a report file or a cab) that has
	// received no byte for this long, from the request until its headers
	// and then between reads; default DefaultIdleTimeout (1 minute). A
	// download has no limit on its total time, so a slow but steady link
	// completes. The cut is retried like a broken connection.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// HTTPClient is used for every request; default a client with a 5-minute
	// overall timeout per request and a connection pool that keeps
	// idleConnsPerHost connections to each host. Its Timeout applies to API
	// calls only: downloads use IdleTimeout instead. It must not follow
	// redirects for cab calls; Client wraps it to ensure that.
	HTTPClient *http.Client `yaml:"-"`
}

// withDefaults fills unset fields.
func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = Resource
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.ReportPath == "" {
		c.ReportPath = "/analytics/driver"
	}
	if c.CabPath == "" {
		c.CabPath = "/v1.0/my/analytics"
	}
	if c.TokenURL == "" {
		c.TokenURL = "https://login.microsoftonline.com/" + url.PathEscape(c.TenantID) + "/oauth2/token"
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = retry.DefaultAttempts
	}
	if c.RetryBase <= 0 {
		c.RetryBase = retry.DefaultBase
	}
	if c.RetryMax <= 0 {
		c.RetryMax = retry.DefaultMax
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = idleConnsPerHost
		t.MaxIdleConns = 2 * idleConnsPerHost // the default's 100 in all would cap the per-host pool
		c.HTTPClient = &http.Client{Timeout: 5 * time.Minute, Transport: t}
	}
	return c
}

// idleConnsPerHost is how many idle connections the default client keeps
// to one host. The cab mirror asks for links and downloads blobs with up
// to 64 calls of each at once (the API and the blobs may share a host);
// with Go's default of 2, every call beyond the second would open (and,
// over TLS, negotiate) a new connection.
const idleConnsPerHost = 128

// Validate reports every missing or malformed setting, by field name.
func (c Config) Validate() error {
	var errs []error
	for _, u := range []struct{ name, val string }{{"url", c.BaseURL}, {"token_url", c.TokenURL}} {
		if u.val == "" {
			continue
		}
		if p, err := url.Parse(u.val); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			errs = append(errs, fmt.Errorf("devcenter.%s: must be an absolute http(s) URL", u.name))
		}
	}
	if c.TenantID == "" && c.TokenURL == "" {
		errs = append(errs, errors.New("devcenter.tenant_id: required (or set devcenter.token_url)"))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("devcenter.client_id: required"))
	}
	if c.ClientSecret == "" {
		errs = append(errs, errors.New("devcenter client secret: required (set HDC_CLIENT_SECRET)"))
	}
	return errors.Join(errs...)
}

// Client calls the Dev Center API. It is safe for concurrent use.
type Client struct {
	cfg    Config
	policy retry.Policy
	http   *http.Client // never follows redirects
	blob   *http.Client // http without its overall Timeout, for downloads
	tokens *tokenSource
}

// New returns a client. It does not contact the service.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hc := *cfg.HTTPClient
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cc := &clientcredentials.Config{
		ClientID:       cfg.ClientID,
		ClientSecret:   cfg.ClientSecret.Reveal(),
		TokenURL:       cfg.TokenURL,
		EndpointParams: url.Values{"resource": {Resource}},
		AuthStyle:      oauth2.AuthStyleInParams,
	}
	policy := retry.Policy{Attempts: cfg.MaxAttempts, Base: cfg.RetryBase, Max: cfg.RetryMax}
	blob := hc
	blob.Timeout = 0 // downloads are bounded by IdleTimeout instead
	return &Client{cfg: cfg, policy: policy, http: &hc, blob: &blob, tokens: &tokenSource{conf: cc, http: cfg.HTTPClient}}, nil
}

// tokenSource caches the access token and refreshes it 5 minutes before it
// expires (tokens live 60 minutes), or at once after a 401.
type tokenSource struct {
	conf *clientcredentials.Config
	http *http.Client
	mu   sync.Mutex
	tok  *oauth2.Token
}

const tokenMargin = 5 * time.Minute

func (ts *tokenSource) token(ctx context.Context) (string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.tok != nil && (ts.tok.Expiry.IsZero() || time.Until(ts.tok.Expiry) > tokenMargin) {
		return ts.tok.AccessToken, nil
	}
	tok, err := ts.conf.Token(context.WithValue(ctx, oauth2.HTTPClient, ts.http))
	if err != nil {
		return "", fmt.Errorf("devcenter: get token: %w", scrubTokenError(err))
	}
	ts.tok = tok
	return tok.AccessToken, nil
}

// invalidate drops the cached token if it is still the one that failed.
func (ts *tokenSource) invalidate(failed string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.tok != nil && ts.tok.AccessToken == failed {
		ts.tok = nil
	}
}

// scrubTokenError keeps the status and OAuth error code of a token failure
// but drops the response body, which may echo request parameters. An
// OAuth error code (RFC 6749 §5.2) makes the failure permanent whatever the
// status: a wrong secret does not heal by retrying, and some servers
// answer it with a 200 or a 5xx.
func scrubTokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		ae := &APIError{Endpoint: "POST token", Status: status, Code: re.ErrorCode}
		if re.ErrorCode != "" {
			return &TokenError{api: ae}
		}
		return ae
	}
	return err
}

// TokenError is the token endpoint's refusal with an OAuth error code.
// It is permanent: the request is not tried again.
type TokenError struct{ api *APIError }

// Code is the OAuth error code, such as "invalid_client".
func (e *TokenError) Code() string { return e.api.Code }

func (e *TokenError) Error() string {
	switch e.api.Code {
	case "invalid_client", "unauthorized_client":
		return e.api.Error() + ": the client credentials were refused; check the client secret (HDC_CLIENT_SECRET), " +
			"the client id (HDC_CLIENT_ID or devcenter.client_id) and the tenant (HDC_TENANT_ID or devcenter.tenant_id)"
	}
	return e.api.Error()
}

func (e *TokenError) Unwrap() error   { return e.api }
func (e *TokenError) Permanent() bool { return true }

// APIError is a call that the service answered with an error status.
type APIError struct {
	Endpoint string // method and path, never the query of a signed link
	Status   int
	Code     string // the service's error code, if any
	Message  string // the service's message, shortened
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("devcenter: %s: status %d", e.Endpoint, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// ErrNotFound is wrapped by errors for 404 answers.
var ErrNotFound = errors.New("not found")

func (e *APIError) Unwrap() error {
	if e.Status == http.StatusNotFound {
		return ErrNotFound
	}
	return nil
}

// Permanent reports whether no retry can fix the error: a 4xx other than
// 408 and 429. retry.Permanent reads it, so every caller's retry stops.
func (e *APIError) Permanent() bool { return retry.PermanentStatus(e.Status) }

// linkExpiredError is a signed link's 403: it wraps ErrLinkExpired and the
// *APIError, but it is not permanent, because a fresh link cures it (the
// cab mirror asks CabLink again, the run ingests again).
type linkExpiredError struct{ err error }

func (e *linkExpiredError) Error() string   { return ErrLinkExpired.Error() + ": " + e.err.Error() }
func (e *linkExpiredError) Unwrap() []error { return []error{ErrLinkExpired, e.err} }
func (e *linkExpiredError) Permanent() bool { return false }

// request describes one call.
type request struct {
	method   string
	url      string // absolute
	endpoint string // for errors: method + path
	body     []byte // JSON; nil for none
	auth     bool   // send the bearer token
	// idempotent calls are retried on any retryable status; others only
	// where the service cannot have acted (429, 503) or on connect errors.
	idempotent bool
	header     http.Header // extra headers
	// idle, if set, makes this a download: no overall timeout, but one
	// try fails once no byte has arrived for idle (see idleWatch).
	idle time.Duration
}

// do sends req with the client's retry.Policy and returns the response,
// whose body the caller closes. Error statuses become *APIError.
func (c *Client) do(ctx context.Context, req request) (*http.Response, error) {
	p := c.policy
	// An *APIError at the top is the service's answer; anything else
	// (the token call's failures included) got no answer from it.
	p.Retryable = func(err error) bool {
		if ae, ok := err.(*APIError); ok {
			return retry.ShouldRetry(ae.Status, req.idempotent)
		}
		return retry.ShouldRetryError(err, req.idempotent)
	}
	var resp *http.Response
	refreshed := false
	err := p.Do(ctx, func(int) (wait time.Duration, err error) {
		resp, wait, err = c.try(ctx, req, &refreshed)
		return wait, err
	})
	if err != nil && err == ctx.Err() { // cancelled while waiting to retry
		return nil, fmt.Errorf("devcenter: %s: %w", req.endpoint, err)
	}
	return resp, err
}

// try makes one try of req and returns the response (status < 400), or
// the error with the wait the server asked for. A 401 to an authenticated
// call refreshes the token and sends again at once, once per call
// (*refreshed): a refresh is not a failed try.
func (c *Client) try(ctx context.Context, req request, refreshed *bool) (*http.Response, time.Duration, error) {
	for {
		resp, token, err := c.send(ctx, req)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, 0, fmt.Errorf("devcenter: %s: %w", req.endpoint, ctx.Err())
			}
			if errors.Is(err, ErrIdleTimeout) { // names the endpoint already
				return nil, 0, err
			}
			return nil, 0, fmt.Errorf("devcenter: %s: %w", req.endpoint, scrubURLError(err))
		case resp.StatusCode == http.StatusUnauthorized && req.auth && !*refreshed:
			drain(resp)
			c.tokens.invalidate(token)
			*refreshed = true
			continue
		case resp.StatusCode < 400:
			return resp, 0, nil
		}
		wait := retry.RetryAfter(resp.Header.Get("Retry-After"), time.Now())
		return nil, wait, readAPIError(req.endpoint, resp)
	}
}

// send makes one HTTP request; it returns the token it used.
func (c *Client) send(ctx context.Context, req request) (*http.Response, string, error) {
	if req.idle <= 0 {
		return c.sendWith(ctx, c.http, req)
	}
	ctx, w := watchIdle(ctx, req.endpoint, req.idle)
	resp, token, err := c.sendWith(ctx, c.blob, req)
	if err != nil {
		w.stop()
		return nil, token, w.check(err)
	}
	resp.Body = &idleBody{ReadCloser: resp.Body, w: w}
	return resp, token, nil
}

// sendWith makes one HTTP request with hc.
func (c *Client) sendWith(ctx context.Context, hc *http.Client, req request) (*http.Response, string, error) {
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, req.url, body)
	if err != nil {
		return nil, "", fmt.Errorf("build request: %w", err)
	}
	hr.Header.Set("Accept", "application/json")
	for k, v := range req.header {
		hr.Header[k] = v
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	token := ""
	if req.auth {
		if token, err = c.tokens.token(ctx); err != nil {
			return nil, "", err
		}
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(hr)
	return resp, token, err
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// scrubURLError removes the URL (which may carry a SAS signature) from a
// transport error.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// readAPIError builds an *APIError from an error response and closes it.
func readAPIError(endpoint string, resp *http.Response) error {
	defer drain(resp)
	e := &APIError{Endpoint: endpoint, Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	var env struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &env) == nil {
		e.Code, e.Message = env.Code, env.Message
		if len(env.Errors) > 0 {
			e.Code, e.Message = env.Errors[0].Code, env.Errors[0].Message
		}
	} else if i := bytes.Index(b, []byte("<Code>")); i >= 0 { // Azure Blob XML
		rest := b[i+len("<Code>"):]
		if j := bytes.IndexByte(rest, '<'); j >= 0 {
			e.Code = string(rest[:j])
		}
	}
	if len(e.Message) > 300 {
		e.Message = e.Message[:300] + "…"
	}
	return e
}
