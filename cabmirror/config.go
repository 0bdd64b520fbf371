package cabmirror

import (
	"errors"
	"fmt"
	"slices"

	"github.com/hdc-export/hdc-export/devcenter"
)

// Defaults of Config.
const (
	DefaultCabConcurrency = 4
	DefaultCabByteBudget  = 10 << 30 // 10 GiB per run
	DefaultCabRate        = 10       // cab API requests per second
	maxCabConcurrency     = 64
)

// Config configures the cab mirror (the "cabs:" section of the
// configuration file).
type Config struct {
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
	// refused and counted, and nothing is sent to it; the refusal is
	// remembered (see State) and the cab not asked for again until the
	// list changes.
	AllowHosts []string `yaml:"allow_hosts"`
}

// On reports whether mirroring is enabled.
func (c Config) On() bool { return c.Enabled == nil || *c.Enabled }

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
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

// Validate reports every problem, each with its field path ("cabs.…").
func (c Config) Validate() error {
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
	return errors.Join(errs...)
}
