package pipeline

import (
	"errors"
	"fmt"
	"github.com/hdc-export/hdc-export/internal/lake"
	"slices"
	"time"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/schema"
)

// validAppID accepts the documented ApplicationId shape (a numeric product
// id) with some slack: letters, digits, '-', '_' and '.', at most 64.
func validAppID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Defaults of CabsConfig.
const (
	DefaultCabConcurrency = 4
	DefaultCabByteBudget  = 10 << 30 // 10 GiB per run
	DefaultCabRate        = 10       // cab API requests per second
	maxCabConcurrency     = 64
)

// CabsConfig configures the cab mirror (the "cabs:" section).
type CabsConfig struct {
	// Enabled switches mirroring; default true. HDC_CABS=off overrides it.
	Enabled *bool `yaml:"enabled"`
	// Concurrency bounds cab downloads in flight; default 4, at most 64.
	Concurrency int `yaml:"concurrency"`
	// ByteBudget bounds the cab bytes one run downloads; default 10 GiB,
	// 0 means unlimited. A run always admits its first cab, so a cab larger
	// than the budget still lands (alone). What the budget cuts, the next
	// run continues.
	ByteBudget *int64 `yaml:"byte_budget"`
	// RatePerSecond bounds requests to the cab download API; default 10.
	RatePerSecond float64 `yaml:"rate_per_second"`
	// AllowHosts lists the hosts the API's 302 may send us to (see
	// devcenter.HostList); default [".blob.core.windows.net"] (https). A
	// configured list replaces the default. A link to any other host is
	// refused and counted, and nothing is sent to it.
	AllowHosts []string `yaml:"allow_hosts"`
}

// On reports whether mirroring is enabled.
func (c CabsConfig) On() bool { return c.Enabled == nil || *c.Enabled }

func (c *CabsConfig) setDefaults() {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultCabConcurrency
	}
	if c.ByteBudget == nil {
		b := int64(DefaultCabByteBudget)
		c.ByteBudget = &b
	}
	if c.RatePerSecond == 0 {
		c.RatePerSecond = DefaultCabRate
	}
	if c.AllowHosts == nil {
		c.AllowHosts = slices.Clone(devcenter.DefaultCabHosts)
	}
}

func (c CabsConfig) validate() []error {
	var errs []error
	if c.Concurrency < 1 || c.Concurrency > maxCabConcurrency {
		errs = append(errs, fmt.Errorf("cabs.concurrency: %d is outside 1..%d", c.Concurrency, maxCabConcurrency))
	}
	if c.ByteBudget != nil && *c.ByteBudget < 0 {
		errs = append(errs, errors.New("cabs.byte_budget: must not be negative (0 means unlimited)"))
	}
	if !(c.RatePerSecond > 0) || c.RatePerSecond > 1e6 {
		errs = append(errs, fmt.Errorf("cabs.rate_per_second: %v must be above 0 (at most 1e6)", c.RatePerSecond))
	}
	for i, h := range c.AllowHosts {
		if err := devcenter.CheckHostEntry(h); err != nil {
			errs = append(errs, fmt.Errorf("cabs.allow_hosts[%d]: %w", i, err))
		}
	}
	if c.On() && len(c.AllowHosts) == 0 {
		errs = append(errs, errors.New("cabs.allow_hosts: empty: no cab could be fetched (omit it for the default, or set cabs.enabled: false)"))
	}
	return errs
}

// CabState is the mirror's record for one dataset partition: the run (and
// data file checksums) of the partition manifest whose every cab reference
// is done (mirrored, already present, or permanently skipped). Counts
// only, never CabIdHash values.
type CabState struct {
	Dataset  string `json:"dataset"`
	Date     string `json:"date"`
	Run      string `json:"run"`
	Files    string `json:"files"` // SHA-256 of the partition's data files, comma-separated
	Refs     int    `json:"refs"`  // distinct cabs referenced
	Expired  int    `json:"expired"`
	NotFound int    `json:"not_found"`
	Rejected int    `json:"rejected"`
}

// cabOutcome is what became of one distinct cab in a run.
type cabOutcome int

const (
	cabQueued   cabOutcome = iota // to download
	cabPresent                    // already in the lake
	cabMirrored                   // downloaded, verified and stored
	cabExpired                    // CabExpirationTime passed by the runner's clock
	cabNotFound                   // the API or blob answered 404: gone
	cabRefused                    // link off the allowlist
	cabDeferred                   // cut by a limit or cancellation
	cabFailed                     // download or verification failed
)

// done reports a final outcome: the partition need not look at it again.
func (o cabOutcome) done() bool {
	return o == cabPresent || o == cabMirrored || o == cabExpired || o == cabNotFound
}

// cabRef is one distinct cab referenced by a partition.
type cabRef struct {
	hash      string // normalised (lower case): the key's name
	raw       string // as the report gave it (validated): sent to the API
	app       string // ApplicationId, IHV only, may be empty
	view      string // IHVDriver or OEMDriver
	dataset   string
	date      lake.Date // failure date of the partition that referenced it first
	collected time.Time // zero if unknown
	expires   time.Time // zero if unknown
}

// endpoint picks the documented cab download method for the row.
func (c *cabRef) endpoint() devcenter.CabEndpoint {
	switch {
	case c.view == schema.OEMDriver.View:
		return devcenter.CabHardware
	case c.app != "":
		return devcenter.CabDriver
	}
	return devcenter.CabIHVDriver
}

// cabJob is one distinct cab of this run and what became of it.
type cabJob struct {
	ref     cabRef
	outcome cabOutcome
	size    int64
	md5     []byte
	err     error // redacted: names no CabIdHash
}

// cabPartition is a dataset partition whose cabs are to be checked.
type cabPartition struct {
	dataset  string
	view     string
	date     lake.Date
	run      string
	files    []lake.File
	refs     []cabRef
	rejected int       // distinct CabIdHash values refused (see NormalizeCabID)
	readErr  error     // its references could not be read
	jobs     []*cabJob // one per distinct cab, shared between partitions
}
