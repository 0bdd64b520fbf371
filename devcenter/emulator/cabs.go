package emulator

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// cabLinkTTL is the lifetime of the signed cab links the cab endpoints
// redirect to (undocumented for the real service).
const cabLinkTTL = time.Hour

// Cab sizes by default (both Options.CabSizeMin and CabSizeMax 0): mostly
// small minidumps, one in bigCabRate several MiB.
const (
	bigCabRate = 10
	smallCabLo = 100 << 10
	smallCabHi = 600 << 10
	bigCabLo   = 2 << 20
	bigCabHi   = 6 << 20
)

// Limits of configured cab sizes.
const (
	cabHeaderSize = 36      // a CFHEADER without reserved fields
	maxCabSize    = 1 << 30 // cabs are generated in memory
)

// cabEndpoint is one of the three cab download endpoints.
type cabEndpoint int

const (
	cabEndpointDriver    cabEndpoint = iota // driver/cabdownload (Windows 10 IHV)
	cabEndpointIHVDriver                    // ihvdriver/cabdownload (Windows 7/8.x IHV)
	cabEndpointHardware                     // hardware/cabdownload (OEM)
)

// cabDownload serves one cab endpoint: GET ...?cabIdHash=..
// (driver/cabdownload also requires applicationId). With a valid bearer
// token and a cab of the endpoint's view that the data set produced, it
// answers 302 with Location set to a signed /blobs/cabs/{cabIdHash}.cab URL
// valid for an hour. A missing parameter is a 400; an unknown cab or
// application a 404, and so is a cab whose CabExpirationTime has passed by
// the emulator's clock (the docs do not say what an expired cab answers; a
// 404 "expired" is the most plausible). Errors use the Store-analytics
// error body documented for the /v1.0/my/analytics endpoints. API faults
// (see Faults) apply after the token check.
func (e *Emulator) cabDownload(ep cabEndpoint) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := e.checkBearer(r); err != nil {
			writeStoreError(w, err)
			return
		}
		if err := e.apiFault(w, r); err != nil {
			writeStoreError(w, err)
			return
		}
		q := r.URL.Query()
		app, hash := strings.TrimSpace(q.Get("applicationId")), strings.TrimSpace(q.Get("cabIdHash"))
		switch {
		case ep == cabEndpointDriver && app == "":
			writeStoreError(w, badRequest("applicationId is required"))
			return
		case hash == "":
			writeStoreError(w, badRequest("cabIdHash is required"))
			return
		}
		view := viewIHV
		if ep == cabEndpointHardware {
			view = viewOEM
		}
		ref, ok := e.knownCab(hash)
		now := e.now()
		offAllowlist := e.offAllowlistLink(hash)
		switch {
		case !ok || ref.view != view:
			writeStoreError(w, notFound("no cab with cabIdHash %q", hash))
			return
		case ep == cabEndpointDriver && !slices.Contains(e.data.catalogs[viewIHV].apps, app):
			writeStoreError(w, notFound("no driver product with applicationId %q", app))
			return
		case e.cabExpired(ref, now):
			writeStoreError(w, notFound("the cab with cabIdHash %q expired at %s", hash, e.cabExpiry(ref).Format(rowTimeLayout)))
			return
		}
		path := "/blobs/cabs/" + encodeCabID(e.seed, ref) + ".cab"
		if offAllowlist != "" {
			w.Header().Set("Location", offAllowlist)
		} else {
			w.Header().Set("Location", e.signedURL(r, path, now, cabLinkTTL))
		}
		w.WriteHeader(http.StatusFound)
	}
}

// serveCabBlob serves GET /blobs/cabs/{cabIdHash}.cab for a valid unexpired
// signature: a deterministic pseudo-cab, generated on each request. A cab
// past its CabExpirationTime is gone: 404 ResourceNotFound, even with a link
// obtained before.
func (e *Emulator) serveCabBlob(w http.ResponseWriter, r *http.Request) {
	if !e.checkSignature(w, r) {
		return
	}
	hash, isCab := strings.CutSuffix(r.PathValue("file"), ".cab")
	ref, ok := e.knownCab(hash)
	if !isCab || !ok || e.cabExpired(ref, e.now()) {
		writeBlobError(w, http.StatusNotFound, blobNotFound, msgNotFound)
		return
	}
	data := e.cabContent(ref)
	sum := md5.Sum(data) // the true bytes' MD5, even if CabFaults corrupt them
	e.serveBlob(w, r, e.data.cab(ref.view, ref.day, ref.index).collected, e.corruptBlob(r, hash, data), sum, "application/octet-stream")
}

// CabBytes returns the exact bytes the emulator serves for the cab with
// the given CabIdHash (hex digits in any case), without HTTP: ground truth
// for tests and benchmarks. ok is false if the data set never produced
// that cab. Expired cabs are returned too, although the endpoints no
// longer serve them.
func (e *Emulator) CabBytes(cabIDHash string) ([]byte, bool) {
	ref, ok := e.knownCab(strings.TrimSpace(cabIDHash))
	if !ok {
		return nil, false
	}
	return e.cabContent(ref), true
}

// knownCab resolves a CabIdHash the data set produced: one that decodes,
// of a date before today and within the date's cab pool.
func (e *Emulator) knownCab(hash string) (cabRef, bool) {
	ref, ok := decodeCabID(e.seed, hash)
	if !ok || ref.index >= e.data.cabPool() || ref.day >= dayNumber(e.now()) {
		return cabRef{}, false
	}
	return ref, true
}

// cabExpiry is the cab's CabExpirationTime, as the rows show it.
func (e *Emulator) cabExpiry(ref cabRef) time.Time {
	return e.data.cab(ref.view, ref.day, ref.index).collected.Add(cabRetention)
}

// cabExpired reports whether the cab can no longer be downloaded at now:
// from its CabExpirationTime on.
func (e *Emulator) cabExpired(ref cabRef, now time.Time) bool {
	return !now.Before(e.cabExpiry(ref))
}

// cabSize is the cab's size in bytes (see Options.CabSizeMin), a pure
// function of (seed, cab).
func (e *Emulator) cabSize(ref cabRef) int {
	h := hashOf(e.seed, tagCabSize, ref.payload())
	if lo, hi := e.opts.CabSizeMin, e.opts.CabSizeMax; hi > 0 {
		return lo + int((h>>8)%uint64(hi-lo+1))
	}
	if h%bigCabRate == 0 {
		return bigCabLo + int((h>>8)%(bigCabHi-bigCabLo))
	}
	return smallCabLo + int((h>>8)%(smallCabHi-smallCabLo))
}

// cabContent is the cab's bytes: a cabinet header (signature "MSCF", total
// size, one folder, one file) followed by pseudo-random bytes, all a pure
// function of (seed, cab), cabSize(ref) long.
func (e *Emulator) cabContent(ref cabRef) []byte {
	payload := ref.payload()
	h := hashOf(e.seed, tagCabSize, payload)
	size := e.cabSize(ref)
	data := make([]byte, size)
	s := newStream(e.seed, tagCabBytes, payload)
	for i := 0; i < len(data); i += 8 {
		if i+8 <= len(data) {
			binary.LittleEndian.PutUint64(data[i:], s.next())
			continue
		}
		var tail [8]byte
		binary.LittleEndian.PutUint64(tail[:], s.next())
		copy(data[i:], tail[:])
	}
	// CFHEADER, as in the Microsoft Cabinet Format specification.
	copy(data, "MSCF")
	binary.LittleEndian.PutUint32(data[4:], 0)              // reserved1
	binary.LittleEndian.PutUint32(data[8:], uint32(size))   // cbCabinet
	binary.LittleEndian.PutUint32(data[12:], 0)             // reserved2
	binary.LittleEndian.PutUint32(data[16:], 44)            // coffFiles: after this header and one CFFOLDER
	binary.LittleEndian.PutUint32(data[20:], 0)             // reserved3
	data[24], data[25] = 3, 1                               // version 1.3
	binary.LittleEndian.PutUint16(data[26:], 1)             // cFolders
	binary.LittleEndian.PutUint16(data[28:], 1)             // cFiles
	binary.LittleEndian.PutUint16(data[30:], 0)             // flags
	binary.LittleEndian.PutUint16(data[32:], uint16(h>>16)) // setID
	binary.LittleEndian.PutUint16(data[34:], 0)             // iCabinet
	return data
}

// cabRef locates a cab in the data set: cab index of view's pool for
// failure day `day`.
type cabRef struct {
	view  viewID
	day   int64 // days since 1970-01-01, below 1<<20
	index int   // below 1<<32
}

// payload packs r into 53 bits.
func (r cabRef) payload() uint64 {
	return uint64(r.view) | uint64(r.day)<<1 | uint64(r.index)<<21
}

const (
	payloadBits = 60 // bits of a GUID's first half carrying the payload
	macBits     = 62 // bits of a GUID's second half carrying the check value
)

// encodeCabID makes the CabIdHash of ref: a version-4-style GUID whose
// first half is the payload masked by a keystream and whose second half is
// a check value, both derived from the seed. So the emulator recognizes the
// cabs its data produced without remembering them, and rejects any other
// GUID. The check value also selects the mask, so the payload bits look
// random.
func encodeCabID(seed uint64, ref cabRef) string {
	if ref.day < 0 || ref.day >= 1<<20 || ref.index < 0 || ref.index >= 1<<32 {
		panic(fmt.Sprintf("cab reference %+v out of range", ref))
	}
	p := ref.payload()
	mac := hashOf(seed, tagCabMAC, p) & (1<<macBits - 1)
	enc := p ^ hashOf(seed, tagCabMask, mac)&(1<<payloadBits-1)
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], enc>>12<<16) // bytes 0-5: payload bits 59..12
	b[6] = 0x40 | byte(enc>>8&0x0F)                 // version nibble 4, payload bits 11..8
	b[7] = byte(enc)                                // payload bits 7..0
	binary.BigEndian.PutUint64(b[8:16], mac)
	b[8] |= 0x80 // variant bits 10, over mac bits 61..56
	return formatGUID(b)
}

// decodeCabID reverses encodeCabID, reporting false for any string
// encodeCabID cannot have produced for seed. Hex digits match in any case.
func decodeCabID(seed uint64, id string) (cabRef, bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return cabRef{}, false
	}
	var b [16]byte
	if _, err := hex.Decode(b[:], []byte(strings.ReplaceAll(id, "-", ""))); err != nil {
		return cabRef{}, false
	}
	if b[6]>>4 != 4 || b[8]>>6 != 2 {
		return cabRef{}, false
	}
	enc := binary.BigEndian.Uint64(b[0:8])>>16<<12 | uint64(b[6]&0x0F)<<8 | uint64(b[7])
	mac := binary.BigEndian.Uint64(b[8:16]) & (1<<macBits - 1)
	p := enc ^ hashOf(seed, tagCabMask, mac)&(1<<payloadBits-1)
	if hashOf(seed, tagCabMAC, p)&(1<<macBits-1) != mac || p >= 1<<53 {
		return cabRef{}, false
	}
	return cabRef{view: viewID(p & 1), day: int64(p >> 1 & (1<<20 - 1)), index: int(p >> 21)}, true
}

// storeError is the error body of the Store-analytics endpoints under
// /v1.0/my/analytics, as documented there.
type storeError struct {
	Code       string          `json:"code"`
	Data       []string        `json:"data"`
	Details    []string        `json:"details"`
	InnerError storeInnerError `json:"innererror"`
	Message    string          `json:"message"`
	Source     string          `json:"source"`
}

type storeInnerError struct {
	Code    string   `json:"code"`
	Data    []string `json:"data"`
	Details []string `json:"details"`
	Message string   `json:"message"`
	Source  string   `json:"source"`
}

// writeStoreError writes err (an *apiError, or anything else as a 500) as a
// Store-analytics error body.
func writeStoreError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{http.StatusInternalServerError, "InternalServerError", err.Error()}
	}
	body := storeError{
		Code: ae.code, Data: []string{}, Details: []string{}, Source: "AnalyticsAPI",
		InnerError: storeInnerError{Data: []string{ae.message}, Details: []string{}, Source: "AnalyticsAPI"},
	}
	switch ae.status {
	case http.StatusBadRequest:
		body.Message = "The calling client sent a bad request to the service."
		body.InnerError.Code, body.InnerError.Message = "InvalidQueryParameters", "One or More Query Parameters has invalid values."
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		body.Message = "The calling client is not authorized."
		body.InnerError.Code, body.InnerError.Message = "InvalidToken", ae.message
	case http.StatusNotFound:
		body.Message = "The requested resource was not found."
		body.InnerError.Code, body.InnerError.Message = "ResourceNotFound", ae.message
	default:
		body.Message = "The service failed to process the request."
		body.InnerError.Code, body.InnerError.Message = ae.code, ae.message
	}
	writeJSON(w, ae.status, body)
}
