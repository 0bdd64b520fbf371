package devcenter

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// ErrLinkExpired means a download link was refused as expired or invalid
// (Azure Blob answers 403 AuthenticationFailed). Call ReportData again for a
// fresh link.
var ErrLinkExpired = errors.New("download link expired or refused")

// linkEndpoint names a signed link in errors without its query (the SAS
// signature is a credential).
func linkEndpoint(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("devcenter: download link is not an absolute http(s) URL")
	}
	return "GET " + u.Scheme + "://" + u.Host + u.Path, nil
}

// Download opens a report file from a ReportData link. No bearer token is
// sent: the link carries its own signature, and the token must not leak to
// the storage host. A 403 wraps ErrLinkExpired. The caller closes the body.
func (c *Client) Download(ctx context.Context, link string) (io.ReadCloser, error) {
	endpoint, err := linkEndpoint(link)
	if err != nil {
		return nil, err
	}
	resp, err := c.getBlob(ctx, link, endpoint, 0)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// CabEndpoint selects one of the documented cab download methods.
type CabEndpoint string

// The cab download methods: Windows 10 drivers (needs the ApplicationId),
// Windows 7/8.x drivers, and OEM hardware.
const (
	CabDriver    CabEndpoint = "driver"
	CabIHVDriver CabEndpoint = "ihvdriver"
	CabHardware  CabEndpoint = "hardware"
)

// CabLink asks the cab download API for a cab and returns the link it
// redirects to (302 Location), without following it. applicationID is
// required for CabDriver and ignored otherwise.
func (c *Client) CabLink(ctx context.Context, ep CabEndpoint, applicationID, cabIDHash string) (string, error) {
	q := url.Values{"cabIdHash": {cabIDHash}}
	if ep == CabDriver {
		q.Set("applicationId", applicationID)
	}
	path := c.cfg.CabPath + "/" + string(ep) + "/cabdownload"
	req := request{method: http.MethodGet, url: c.cfg.BaseURL + path + "?" + q.Encode(), endpoint: "GET " + path, auth: true, idempotent: true}
	resp, err := c.do(ctx, req)
	if err != nil {
		return "", err
	}
	defer drain(resp)
	loc := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || loc == "" {
		return "", &APIError{Endpoint: req.endpoint, Status: resp.StatusCode, Message: "expected a redirect to the cab"}
	}
	base, _ := url.Parse(req.url)
	ref, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("devcenter: %s: bad Location header", req.endpoint)
	}
	return base.ResolveReference(ref).String(), nil
}

// NewReportReader prepares a downloaded report file for parsing: it sniffs
// gzip from the magic bytes (not the file name), strips a UTF-8 byte order
// mark, and sniffs the delimiter (tab, comma or semicolon) from the header
// line. The returned reader yields records including the header; it does
// not check field counts, so the caller can report bad rows itself. TSV is
// read with encoding/csv's LazyQuotes (a stray quote is data).
func NewReportReader(r io.Reader) (*RecordReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(2)
	var src io.Reader = br
	if bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("report file: gzip header: %w", err)
		}
		src = zr
	}
	tr := bufio.NewReaderSize(src, 64<<10)
	if bom, _ := tr.Peek(3); bytes.Equal(bom, []byte("\ufeff")) {
		_, _ = tr.Discard(3)
	}
	head, err := tr.Peek(64 << 10)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("report file: read header: %w", err)
	}
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	return newRecordReader(tr, sniffDelimiter(head), blockSize), nil
}

// sniffDelimiter picks the most frequent candidate in the header line; tab
// wins ties (the observed exports are TSV).
func sniffDelimiter(header []byte) rune {
	best, n := '\t', bytes.Count(header, []byte{'\t'})
	for _, d := range []rune{',', ';', '|'} {
		if c := bytes.Count(header, []byte{byte(d)}); c > n {
			best, n = d, c
		}
	}
	return best
}
