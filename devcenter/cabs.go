package devcenter

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// DefaultCabHosts is the link allowlist used when none is configured: the
// Azure Blob Storage host suffix, over https only (section 7 of the API
// reference: cab links are blob SAS URLs).
var DefaultCabHosts = []string{".blob.core.windows.net"}

// ErrHostNotAllowed means a link points at a host outside the allowlist.
// Nothing was sent to that host. Following such a link would let whoever
// controls the redirect make this process fetch arbitrary URLs (SSRF).
var ErrHostNotAllowed = errors.New("link host is not on the allowlist")

// HostList is an allowlist of hosts that links may point to. It is
// immutable and safe for concurrent use.
//
// Each entry is one of:
//
//	.blob.core.windows.net      a suffix: any host ending in it, https, default port
//	acct.blob.core.windows.net  one host, https, default port
//	https://host:8443           one host with a scheme and port
//	http://127.0.0.1:5000       plain http, for an emulator on loopback
//
// Hosts compare case-insensitively. An entry without a port allows only
// the scheme's default port. A link with user information is never
// allowed.
type HostList struct {
	entries []hostEntry
}

type hostEntry struct {
	scheme string // "https" or "http"
	host   string // lower case; for a suffix, starting with "."
	port   string // "" = the scheme's default port
	suffix bool
}

// ParseHostList parses allowlist entries (see HostList). An error names
// the entry by its position.
func ParseHostList(specs []string) (*HostList, error) {
	l := &HostList{}
	var errs []error
	for i, s := range specs {
		e, err := parseHostEntry(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("[%d]: %w", i, err))
			continue
		}
		l.entries = append(l.entries, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return l, nil
}

// CheckHostEntry reports whether spec is a valid allowlist entry.
func CheckHostEntry(spec string) error {
	_, err := parseHostEntry(spec)
	return err
}

func parseHostEntry(spec string) (hostEntry, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return hostEntry{}, errors.New("empty host")
	}
	e := hostEntry{scheme: "https"}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return hostEntry{}, fmt.Errorf("%q is not a URL", spec)
		}
		if u.Scheme != "https" && u.Scheme != "http" {
			return hostEntry{}, fmt.Errorf("%q: scheme must be https or http", spec)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return hostEntry{}, fmt.Errorf("%q: give scheme://host[:port] only", spec)
		}
		e.scheme, s = u.Scheme, u.Host
	}
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return hostEntry{}, fmt.Errorf("%q: bad port", spec)
		}
	}
	host = strings.ToLower(host)
	if strings.HasPrefix(host, ".") {
		// A suffix must name at least a registrable domain and a label
		// below it (".blob.core.windows.net", not ".net").
		if strings.Count(host, ".") < 2 || strings.Contains(host, "..") || !validHostname(host[1:]) {
			return hostEntry{}, fmt.Errorf("%q: a suffix needs at least two labels, e.g. .blob.core.windows.net", spec)
		}
		e.suffix = true
	} else if net.ParseIP(host) == nil && !validHostname(host) {
		return hostEntry{}, fmt.Errorf("%q is not a host name or IP address", spec)
	}
	e.host, e.port = host, port
	return e, nil
}

// validHostname accepts LDH labels separated by dots.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// Allows reports whether u may be fetched.
func (l *HostList) Allows(u *url.URL) bool {
	if l == nil || u == nil || u.User != nil || u.Host == "" {
		return false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	for _, e := range l.entries {
		if e.scheme != u.Scheme {
			continue
		}
		if e.port == "" {
			if port != "" && port != defaultPort(u.Scheme) {
				continue
			}
		} else if port != e.port {
			continue
		}
		if e.suffix && strings.HasSuffix(host, e.host) && len(host) > len(e.host) && validHostname(host) {
			return true
		}
		if !e.suffix && host == e.host {
			return true
		}
	}
	return false
}

func defaultPort(scheme string) string {
	if scheme == "http" {
		return "80"
	}
	return "443"
}

// CabMeta is what a cab blob's host reported about the whole blob.
type CabMeta struct {
	// Size is the blob's total size in bytes (Content-Length of a full
	// answer, the total of Content-Range of a partial one).
	Size int64
	// MD5 is the blob's MD5 from x-ms-blob-content-md5, or from
	// Content-MD5 of a full answer; nil if the host reported none.
	MD5 []byte
}

// OpenCab opens a cab blob at a link from CabLink, from byte offset on
// (a Range request when offset > 0), so an interrupted download can resume.
// The body starts exactly at offset. The link's host must be on allow;
// otherwise nothing is sent and the error wraps ErrHostNotAllowed. No
// bearer token is sent: the link carries its own signature. Redirects are
// not followed. Network errors, 408, 429 and 5xx are retried; a 403 wraps
// ErrLinkExpired (ask CabLink again), a 404 wraps ErrNotFound (the cab is
// gone). Errors name the link's host, never its path or signature. The
// caller closes the body.
func (c *Client) OpenCab(ctx context.Context, link string, offset int64, allow *HostList) (io.ReadCloser, CabMeta, error) {
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, CabMeta{}, errors.New("devcenter: cab link is not an absolute http(s) URL")
	}
	endpoint := "GET " + u.Scheme + "://" + u.Host + "/…" // the path names the cab
	if !allow.Allows(u) {
		return nil, CabMeta{}, fmt.Errorf("devcenter: %s: %w", endpoint, ErrHostNotAllowed)
	}
	if offset < 0 {
		return nil, CabMeta{}, fmt.Errorf("devcenter: %s: negative offset", endpoint)
	}
	resp, err := c.getBlob(ctx, link, endpoint, offset)
	if err != nil {
		return nil, CabMeta{}, err
	}
	meta, skip, err := cabMeta(endpoint, resp, offset)
	if err != nil {
		drain(resp)
		return nil, CabMeta{}, err
	}
	if skip > 0 { // the host ignored the Range header
		if _, err := io.CopyN(io.Discard, resp.Body, skip); err != nil {
			drain(resp)
			return nil, CabMeta{}, fmt.Errorf("devcenter: %s: skip to offset: %w", endpoint, scrubURLError(err))
		}
	}
	return resp.Body, meta, nil
}

// getBlob sends a blob GET with the client's retry policy (see do), with
// the headers a cab download needs: identity encoding, so Content-Length
// and the MD5 hold, and a Range from offset.
func (c *Client) getBlob(ctx context.Context, link, endpoint string, offset int64) (*http.Response, error) {
	h := http.Header{"Accept-Encoding": {"identity"}}
	if offset > 0 {
		h.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, url: link, endpoint: endpoint, idempotent: true, header: h, idle: c.cfg.IdleTimeout})
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
			return nil, &linkExpiredError{err}
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		drain(resp)
		return nil, &APIError{Endpoint: endpoint, Status: resp.StatusCode, Message: "unexpected status (redirects are not followed)"}
	}
	return resp, nil
}

// cabMeta checks a 200 or 206 answer against the requested offset and
// reads the blob's size and MD5. skip is how many leading body bytes to
// drop (a 200 to a Range request).
func cabMeta(endpoint string, resp *http.Response, offset int64) (meta CabMeta, skip int64, err error) {
	bad := func(msg string) error { return &APIError{Endpoint: endpoint, Status: resp.StatusCode, Message: msg} }
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength < 0 {
			return meta, 0, bad("no Content-Length: the size cannot be verified")
		}
		if resp.ContentLength < offset {
			return meta, 0, bad("blob is shorter than the resume offset")
		}
		meta.Size, skip = resp.ContentLength, offset
	case http.StatusPartialContent:
		first, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || first != offset || (resp.ContentLength >= 0 && first+resp.ContentLength != total) {
			return meta, 0, bad("Content-Range does not match the requested range")
		}
		meta.Size = total
	}
	for _, h := range []string{"x-ms-blob-content-md5", "Content-MD5"} {
		v := resp.Header.Get(h)
		if v == "" || (h == "Content-MD5" && resp.StatusCode != http.StatusOK) {
			continue // a partial answer's Content-MD5 would be the range's
		}
		sum, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(sum) != 16 {
			return meta, 0, bad(h + " is not a base64 MD5")
		}
		if meta.MD5 != nil && !bytes.Equal(meta.MD5, sum) {
			return meta, 0, bad("Content-MD5 and x-ms-blob-content-md5 disagree")
		}
		meta.MD5 = sum
	}
	return meta, skip, nil
}

// parseContentRange parses "bytes first-last/total" (total known).
func parseContentRange(h string) (first, total int64, ok bool) {
	rest, found := strings.CutPrefix(h, "bytes ")
	if !found {
		return 0, 0, false
	}
	span, tot, found := strings.Cut(rest, "/")
	a, b, found2 := strings.Cut(span, "-")
	if !found || !found2 {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	total, err3 := strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || first < 0 || last < first || total <= last {
		return 0, 0, false
	}
	return first, total, true
}
