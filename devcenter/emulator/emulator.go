// Package emulator is an in-process HTTP emulator of Microsoft Hardware Dev
// Center's asynchronous driver-failure report API (withdrawn in 2019), with
// synthetic, deterministic data. It serves the product's demo, tests and
// benchmarks.
//
// One http.Handler stands in for three hosts: the Azure AD token endpoint
// (login.microsoftonline.com), the API host (manage.devcenter.microsoft.com)
// and the blob host that serves report files and cabs. Absolute URLs the
// emulator hands out are built from the incoming request's scheme and Host.
//
//	POST      /{tenant}/oauth2/token                    client-credentials token, AAD v1 shape
//	GET, POST {api}/reporttemplate                      list, create templates
//	GET, POST {api}/reporttemplate/{id}                 get, edit (full replace) a template
//	GET, POST {api}/report                              list, create scheduled reports
//	POST      {api}/report/{id}                         edit a scheduled report
//	POST      {api}/report/pause/{id}                   pause a scheduled report
//	POST      {api}/report/resume/{id}                  resume it
//	GET       {api}/reportdata/{id}?startDate&endDate   runs, with status and download link
//	GET       {cab}/driver/cabdownload?applicationId&cabIdHash
//	GET       {cab}/ihvdriver/cabdownload?cabIdHash
//	GET       {cab}/hardware/cabdownload?cabIdHash      302 to a signed cab URL
//	GET       /blobs/reports/{id}/{yyyyMMddHHmmss}.{tsv|csv}[.gz]?se&sig   a run's file
//	GET       /blobs/cabs/{cabIdHash}.cab?se&sig        a cab
//
// {api} is /analytics/driver or /v1.0/my/analytics/driver, {cab} is
// /v1.0/my/analytics or /analytics: the docs disagree, so both are served.
// The API and cab endpoints need a bearer token from the token endpoint; the
// blob URLs carry a signature and expiry instead, like an Azure SAS.
//
// Runs are computed from the clock at request time, so simulated time makes
// reports run. A report file is a pure function of the options, the
// template and the run time, a cab of the seed and its id, so two emulators
// with the same options serve the same bytes. Templates are applied in
// full: condition, projection, aggregation (with its HAVING condition),
// orderby and limit (see query). Cabs stop being served at their
// CabExpirationTime.
//
// Options.Faults and SetFaults inject failures (429, 500 and 401 answers,
// truncated, stalled and "expired" blob downloads) to exercise clients'
// retry paths; FaultCounts tells how many fired.
//
// The behaviour follows the project's API reference (devcenter-api.md);
// where the documents are silent or contradict each other, the choice made
// is stated in the doc comment of the code that makes it.
package emulator

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Ids of the demo account's templates and scheduled reports, present from New.
const (
	// DemoIHVTemplateID is the IHVDriver template with all IHV columns, Last7Days.
	DemoIHVTemplateID = 1
	// DemoOEMTemplateID is the OEMDriver template with all OEM columns, Last7Days.
	DemoOEMTemplateID = 2
	// DemoIHVReportID schedules DemoIHVTemplateID daily at 02:00 UTC.
	DemoIHVReportID = 1
	// DemoOEMReportID schedules DemoOEMTemplateID daily at 02:00 UTC.
	DemoOEMReportID = 2
)

// Options configure an Emulator. The zero value is a valid configuration.
type Options struct {
	// Seed selects the synthetic data set; 0 means 1.
	Seed int64
	// Days is how many failure dates the demo schedules' runs cover, ending
	// the day before the newest run; 0 means 35. Values below the period's
	// length act as that length, because a single run already covers it.
	Days int
	// Period is the demo templates' dateRange.reportPeriod, such as
	// "Last90Days"; "" means "Last7Days".
	Period string
	// RowsPerDay is the full number of rows per view per failure date (runs
	// made within 3 days of a date report fewer: data arrives late); 0 means 200.
	RowsPerDay int
	// Gzip serves report files gzip-compressed; their URLs then end in ".gz".
	Gzip bool
	// Delimiter is '\t' (the default when 0) or ','. Files are written with
	// encoding/csv, so CSV uses RFC 4180 quoting.
	Delimiter rune
	// StatusSuccess makes finished runs report "Success", as observed in the
	// wild, instead of the documented "Completed".
	StatusSuccess bool
	// DateFormat is the format of the FailureDate column: "iso" or ""
	// (2006-01-02), "mdy" (1/2/2006), "mmddyy" (010206) or "datetime"
	// (2006-01-02 00:00:00).
	DateFormat string
	// TenantID, ClientID and ClientSecret are the accepted credentials;
	// empty means "demo-tenant", "demo-client" and "demo-secret".
	TenantID, ClientID, ClientSecret string
	// Now is the clock; nil means time.Now. All time logic goes through it,
	// so tests can simulate time by advancing it. It must be safe for
	// concurrent use.
	Now func() time.Time
	// TokenTTL is the access-token lifetime; 0 means 1h.
	TokenTTL time.Duration
	// LinkTTL is the lifetime of report download links; 0 means 12h.
	LinkTTL time.Duration
	// Faults injects failures into API calls and blob downloads (see
	// Faults); the zero value injects none. SetFaults changes them later.
	Faults Faults
	// CabSizeMin and CabSizeMax bound the sizes of cabs in bytes. When both
	// are 0, sizes are mostly 100–600 KiB, one cab in 10 2–6 MiB. Otherwise
	// each cab's size is uniform in [CabSizeMin, CabSizeMax] (a zero
	// CabSizeMax means CabSizeMin, a fixed size); sizes below the 36-byte
	// cabinet header are raised to 36, and CabSizeMax may be at most 1 GiB.
	// A cab's size and bytes are a pure function of the seed and its id.
	CabSizeMin, CabSizeMax int
	// Quirks switch on service behaviours the reference allows: limit and
	// normalised echoes, paging, exclusive date bounds, a slow link.
	Quirks Quirks
	// BadRowEvery makes every BadRowEvery-th data row of a report file
	// carry an EventCount that is not a number (see badrows.go), so that
	// exports quarantine rows; 0 means none.
	BadRowEvery int
}

// Emulator is the emulated service. It is safe for concurrent use.
type Emulator struct {
	opts  Options  // normalized by withDefaults
	seed  uint64   // opts.Seed as the data generator's seed
	key   []byte   // HMAC key of the blob signatures (SAS stand-in)
	data  *dataset // immutable after New
	files *fileCache
	mux   *http.ServeMux

	faults      atomic.Pointer[Faults] // never nil after New
	faultDraws  atomic.Uint64          // requests that drew a fault number
	faultCounts [numFaultKinds]atomic.Int64

	mu             sync.Mutex // guards everything below
	tokens         map[string]time.Time
	templates      map[int]*template
	reports        map[int]*report
	nextTemplateID int
	nextReportID   int
}

// New returns an emulator holding the demo account (templates
// DemoIHVTemplateID and DemoOEMTemplateID, scheduled reports DemoIHVReportID
// and DemoOEMReportID). It panics if an option has an unsupported value
// (Delimiter, DateFormat, Faults, CabSizeMin/CabSizeMax), as that is a
// programming error.
func New(opts Options) *Emulator {
	o, err := opts.withDefaults()
	if err != nil {
		panic(fmt.Sprintf("emulator.New: %v", err))
	}
	key := make([]byte, 32)
	rand.Read(key) // never fails: crypto/rand.Read aborts the program instead
	e := &Emulator{
		opts:           o,
		seed:           uint64(o.Seed),
		key:            key,
		data:           newDataset(uint64(o.Seed), o.RowsPerDay, o.DateFormat),
		files:          newFileCache(fileCacheBudget),
		tokens:         make(map[string]time.Time),
		templates:      make(map[int]*template),
		reports:        make(map[int]*report),
		nextTemplateID: 1,
		nextReportID:   1,
	}
	e.faults.Store(&o.Faults)
	e.addDemoAccount()
	e.mux = e.routes()
	return e
}

// Handler returns the handler serving the token endpoint, the API and the
// blobs on one address.
func (e *Emulator) Handler() http.Handler { return e.mux }

// now reads the configured clock in UTC.
func (e *Emulator) now() time.Time { return e.opts.Now().UTC() }

// Validate reports options that New would reject.
func (o Options) Validate() error {
	_, err := o.withDefaults()
	return err
}

// withDefaults fills in the zero values of o and checks the enumerations.
func (o Options) withDefaults() (Options, error) {
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Days <= 0 {
		o.Days = 35
	}
	if o.Period == "" {
		o.Period = demoPeriod
	}
	period, ok := reportPeriods[o.Period]
	if !ok {
		return o, fmt.Errorf("option Period %q is not supported; use one of %s", o.Period, strings.Join(periodNames, ", "))
	}
	o.Days = max(o.Days, period)
	if o.RowsPerDay <= 0 {
		o.RowsPerDay = 200
	}
	switch o.Delimiter {
	case 0:
		o.Delimiter = '\t'
	case '\t', ',':
	default:
		return o, fmt.Errorf("option Delimiter %q is not supported; use '\\t' or ','", o.Delimiter)
	}
	if _, ok := failureDateLayouts[o.DateFormat]; !ok {
		return o, fmt.Errorf("option DateFormat %q is not supported; use \"iso\", \"mdy\", \"mmddyy\" or \"datetime\"", o.DateFormat)
	}
	if o.TenantID == "" {
		o.TenantID = "demo-tenant"
	}
	if o.ClientID == "" {
		o.ClientID = "demo-client"
	}
	if o.ClientSecret == "" {
		o.ClientSecret = "demo-secret"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = time.Hour
	}
	if o.LinkTTL <= 0 {
		o.LinkTTL = 12 * time.Hour
	}
	if err := o.Faults.validate(); err != nil {
		return o, fmt.Errorf("option Faults: %w", err)
	}
	if err := o.Quirks.validate(); err != nil {
		return o, fmt.Errorf("option Quirks: %w", err)
	}
	switch {
	case o.CabSizeMin < 0 || o.CabSizeMax < 0:
		return o, fmt.Errorf("options CabSizeMin %d and CabSizeMax %d must not be negative", o.CabSizeMin, o.CabSizeMax)
	case o.CabSizeMax == 0:
		o.CabSizeMax = o.CabSizeMin
	case o.CabSizeMax < o.CabSizeMin:
		return o, fmt.Errorf("option CabSizeMax %d is below CabSizeMin %d", o.CabSizeMax, o.CabSizeMin)
	}
	if o.CabSizeMax > maxCabSize {
		return o, fmt.Errorf("option CabSizeMax %d exceeds %d bytes", o.CabSizeMax, maxCabSize)
	}
	if o.CabSizeMax > 0 {
		o.CabSizeMin, o.CabSizeMax = max(o.CabSizeMin, cabHeaderSize), max(o.CabSizeMax, cabHeaderSize)
	}
	return o, nil
}

// routes builds the request multiplexer. The async endpoints are served under
// both documented prefixes, the cab endpoints under both as well.
func (e *Emulator) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/token", e.handleToken)
	mux.HandleFunc("/{tenant}/oauth2/token", tokenMethodNotAllowed)

	for _, prefix := range []string{"/analytics/driver/", "/v1.0/my/analytics/driver/"} {
		e.route(mux, prefix+"reporttemplate", map[string]apiHandler{
			http.MethodGet: e.listTemplates, http.MethodPost: e.createTemplate})
		e.route(mux, prefix+"reporttemplate/{id}", map[string]apiHandler{
			http.MethodGet: e.getTemplate, http.MethodPost: e.editTemplate})
		e.route(mux, prefix+"report", map[string]apiHandler{
			http.MethodGet: e.listReports, http.MethodPost: e.createReport})
		e.route(mux, prefix+"report/{id}", map[string]apiHandler{http.MethodPost: e.editReport})
		e.route(mux, prefix+"report/pause/{id}", map[string]apiHandler{http.MethodPost: e.pauseReport})
		e.route(mux, prefix+"report/resume/{id}", map[string]apiHandler{http.MethodPost: e.resumeReport})
		e.route(mux, prefix+"reportdata/{id}", map[string]apiHandler{http.MethodGet: e.reportData})
	}

	for _, prefix := range []string{"/v1.0/my/analytics/", "/analytics/"} {
		mux.HandleFunc("GET "+prefix+"driver/cabdownload", e.cabDownload(cabEndpointDriver))
		mux.HandleFunc("GET "+prefix+"ihvdriver/cabdownload", e.cabDownload(cabEndpointIHVDriver))
		mux.HandleFunc("GET "+prefix+"hardware/cabdownload", e.cabDownload(cabEndpointHardware))
	}

	mux.HandleFunc("GET /blobs/reports/{reportId}/{file}", e.serveReportBlob)
	mux.HandleFunc("GET /blobs/cabs/{file}", e.serveCabBlob)
	return mux
}
