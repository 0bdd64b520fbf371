package emulator

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// blobStampLayout names a run's file after its time: /blobs/reports/{id}/{stamp}.{ext}.
const blobStampLayout = "20060102150405"

// Azure Storage error codes and messages the blob endpoints answer with.
const (
	blobAuthFailed      = "AuthenticationFailed"
	blobNotFound        = "ResourceNotFound"
	blobInternal        = "InternalError"
	msgBadSignature     = "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature."
	msgExpiredSignature = "Signature not valid in the specified time frame"
	msgNotFound         = "The specified resource does not exist."
)

// signedURL returns an absolute URL for path on the host r was sent to,
// with a signature (a stand-in for an Azure SAS) valid for ttl from now.
func (e *Emulator) signedURL(r *http.Request, path string, now time.Time, ttl time.Duration) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	expiry := now.Add(ttl).Unix()
	return fmt.Sprintf("%s://%s%s?se=%d&sig=%s", scheme, r.Host, path, expiry, e.signature(path, expiry))
}

// reportLink is the download link of report id's run at `at`.
func (e *Emulator) reportLink(r *http.Request, id int, at, now time.Time) string {
	path := fmt.Sprintf("/blobs/reports/%d/%s.%s", id, at.Format(blobStampLayout), e.fileExt())
	return e.signedURL(r, path, now, e.opts.LinkTTL)
}

// signature is the hex HMAC-SHA256 of path and expiry under the emulator's key.
func (e *Emulator) signature(path string, expiry int64) string {
	mac := hmac.New(sha256.New, e.key)
	mac.Write([]byte(path + "\n" + strconv.FormatInt(expiry, 10)))
	return hex.EncodeToString(mac.Sum(nil))
}

// checkSignature verifies r's se and sig query parameters against its path
// and the clock, writing a 403 and returning false if they do not hold.
func (e *Emulator) checkSignature(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query()
	expiry, err := strconv.ParseInt(q.Get("se"), 10, 64)
	sig, decodeErr := hex.DecodeString(q.Get("sig"))
	want, _ := hex.DecodeString(e.signature(r.URL.Path, expiry))
	switch {
	case err != nil || decodeErr != nil || !hmac.Equal(sig, want):
		writeBlobError(w, http.StatusForbidden, blobAuthFailed, msgBadSignature)
		return false
	case e.now().Unix() > expiry:
		writeBlobError(w, http.StatusForbidden, blobAuthFailed, msgExpiredSignature)
		return false
	}
	return true
}

// serveReportBlob serves GET /blobs/reports/{reportId}/{stamp}.{ext}, a
// run's report file, for a valid unexpired signature (no bearer token). The
// run must exist and have finished successfully; the file is generated on
// first request and cached.
func (e *Emulator) serveReportBlob(w http.ResponseWriter, r *http.Request) {
	if !e.checkSignature(w, r) {
		return
	}
	id, idErr := strconv.Atoi(r.PathValue("reportId"))
	stamp, ext, _ := strings.Cut(r.PathValue("file"), ".")
	at, timeErr := time.Parse(blobStampLayout, stamp)
	if idErr != nil || timeErr != nil || ext != e.fileExt() {
		writeBlobError(w, http.StatusNotFound, blobNotFound, msgNotFound)
		return
	}
	spec, ok := e.finishedRun(id, at)
	if !ok {
		writeBlobError(w, http.StatusNotFound, blobNotFound, msgNotFound)
		return
	}
	f, err := e.files.get(spec.key, func() ([]byte, error) { return e.renderReport(spec) })
	if err != nil {
		writeBlobError(w, http.StatusInternalServerError, blobInternal, err.Error())
		return
	}
	contentType := "text/plain; charset=utf-8"
	if e.opts.Gzip {
		contentType = "application/octet-stream"
	}
	e.serveBlob(w, r, at, f.data, f.md5, contentType)
}

// serveBlob serves data like Azure Blob Storage: with Range support (via
// http.ServeContent), an ETag, and the MD5 of the whole blob in
// x-ms-blob-content-md5 and, unless a range is requested (whose body is not
// the whole blob), in Content-MD5. Blob faults (see Faults) apply here.
func (e *Emulator) serveBlob(w http.ResponseWriter, r *http.Request, modified time.Time, data []byte, sum [md5.Size]byte, contentType string) {
	w, answered := e.blobFault(e.slowLink(w, r), r)
	if answered {
		return
	}
	digest := base64.StdEncoding.EncodeToString(sum[:])
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("ETag", `"0x`+strings.ToUpper(hex.EncodeToString(sum[:8]))+`"`)
	h.Set("x-ms-blob-type", "BlockBlob")
	h.Set("x-ms-blob-content-md5", digest)
	if r.Header.Get("Range") == "" {
		h.Set("Content-MD5", digest)
	}
	http.ServeContent(w, r, "", modified, bytes.NewReader(data))
}

// writeBlobError writes an Azure Storage style XML error.
func writeBlobError(w http.ResponseWriter, status int, code, message string) {
	body := `<?xml version="1.0" encoding="utf-8"?><Error><Code>` + code + `</Code><Message>` + xmlEscape(message) + `</Message></Error>`
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("x-ms-error-code", code)
	w.WriteHeader(status)
	w.Write([]byte(body))
}

// xmlEscape escapes s for XML character data.
func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
