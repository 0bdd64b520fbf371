// Package pipeline runs one export cycle: reconcile the configured report
// templates and schedules with Dev Center, discover finished runs, ingest
// each run not yet committed into date partitions of the lake, and purge
// everything outside the retention window. Every step is idempotent and all
// progress is recorded in the sink, so a killed run is completed by the next.
package pipeline

import (
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hdc-export/hdc-export/cabmirror"
	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/schema"
)

// MaxRetentionDays is the legal limit: the Windows Analytics Agreement says
// personal information must not be kept longer than 30 days.
const MaxRetentionDays = 30

// Config is the pipeline's part of the configuration file.
type Config struct {
	Reports   []ReportConfig `yaml:"reports"`
	Retention Retention      `yaml:"retention"`
	Parquet   ParquetConfig  `yaml:"parquet"`
	BadRows   BadRowsConfig  `yaml:"bad_rows"`
	// Limits bound what one report file may cost, whatever it holds.
	Limits LimitsConfig `yaml:"limits"`
	// Cabs configures mirroring crash-dump cabs into the lake (see
	// cabmirror.Config).
	Cabs cabmirror.Config `yaml:"cabs"`
	// TempDir holds spill files while a run is converted; default os.TempDir().
	// Files there are removed at the end of every run and, if a crash left
	// any, at the start of the next.
	TempDir string `yaml:"temp_dir"`
	// RunnerID names this runner in audit records; the CLI sets host-pid.
	RunnerID string `yaml:"-"`
}

// Retention bounds how long report data is kept.
type Retention struct {
	// Days: a failure date D is kept on UTC day T while T-D < Days.
	// Default and maximum 30.
	Days int `yaml:"days"`
}

// UnmarshalYAML reads days strictly: a whole number from 1 to
// MaxRetentionDays. Zero, a fraction or a string is an error that gives
// the allowed range, never a silent default or a rounded value.
func (r *Retention) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: retention: want a mapping such as {days: 30}", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value != "days" {
			return fmt.Errorf("line %d: retention: unknown field %q (want days)", k.Line, k.Value)
		}
		days, err := strconv.Atoi(v.Value)
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || err != nil || days < 1 || days > MaxRetentionDays {
			return fmt.Errorf("line %d: retention.days: %q is not allowed: want a whole number of days from 1 to %d (the Windows Analytics Agreement requires personal data to be destroyed after at most %d days)",
				v.Line, v.Value, MaxRetentionDays, MaxRetentionDays)
		}
		r.Days = days
	}
	return nil
}

// BadRowsConfig bounds rows that do not parse. They are quarantined (under
// retention) and counted; a run with more than MaxFraction of its rows bad
// fails before committing anything.
type BadRowsConfig struct {
	// MaxFraction is the share of bad rows a run may have; default 0.01
	// (0 is taken as unset: use e.g. 1e-9 to fail on any bad row; 1 never
	// fails).
	MaxFraction float64 `yaml:"max_fraction"`
}

// LimitsConfig bounds what one report file may cost and change: memory per
// record, quarantine bytes, undocumented columns, and how far a newer run
// may shrink the partitions an older run filled. Zero values take the
// defaults.
type LimitsConfig struct {
	// MaxRecordBytes is the longest record (line, or quoted record over
	// several lines) read whole; default 16 MiB. A longer one is
	// quarantined as "record too long", truncated to its first 4 KiB, and
	// read past without being held in memory.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// QuarantineBytes caps the quarantine object of one run and date;
	// default 16 MiB, at least 64 KiB. Bad rows past it are counted
	// (rows_bad_not_quarantined) but not kept.
	QuarantineBytes int64 `yaml:"quarantine_bytes"`
	// MaxUnknownColumns is how many columns the dataset does not document
	// a report file may add; default 64. A file with more fails before
	// anything of it is committed, and the schema record stays as it was.
	MaxUnknownColumns int `yaml:"max_unknown_columns"`
	// MaxShrink is the share of a partition's rows a newer run may drop;
	// default 0.5, 1 turns the check off. A run that would empty a
	// partition an older run filled, or cut its rows by more than this,
	// is held back (see Runner.Run): reported, nothing of it committed,
	// and tried again by the next cycle.
	MaxShrink float64 `yaml:"max_shrink"`
	// AcceptShrink commits such runs anyway (the operator has checked the
	// shrink); `hdc-export run --accept-shrink` sets it for one run.
	AcceptShrink bool `yaml:"accept_shrink"`
}

// Default limits (see LimitsConfig).
const (
	DefaultMaxRecordBytes    = devcenter.DefaultMaxRecord
	DefaultQuarantineBytes   = 16 << 20
	DefaultMaxUnknownColumns = 64
	DefaultMaxShrink         = 0.5
	minQuarantineBytes       = 64 << 10
)

// ParquetConfig tunes the data files.
type ParquetConfig struct {
	Compression  string `yaml:"compression"`    // zstd (default), snappy, none
	RowGroupRows int64  `yaml:"row_group_rows"` // default 1,000,000
	// Encoders is how many partitions are encoded at once; default the
	// number of CPUs, at most 4. Each holds up to one row group of column
	// buffers (about 16 MiB of rows).
	Encoders int `yaml:"encoders"`
}

// encoders is Encoders with its default applied.
func (c ParquetConfig) encoders() int {
	if c.Encoders > 0 {
		return c.Encoders
	}
	return min(runtime.GOMAXPROCS(0), 4)
}

// ReportConfig is one exported report: a template, its schedule, and the
// dataset name it lands under.
type ReportConfig struct {
	// Name is the dataset's folder in the lake (snake_case).
	Name string `yaml:"name"`
	// TemplateFile is the JSON template definition, relative to the config
	// file; the loader fills Template from it.
	TemplateFile string                `yaml:"template_file"`
	Template     devcenter.TemplateDef `yaml:"-"`
	Schedule     ScheduleConfig        `yaml:"schedule"`
}

// Dated reports whether the template projects FailureDate. A dated report's
// rows land under their failure dates; an undated one (an aggregate over
// the whole period, such as SUM(EventCount) by driver) lands whole under
// the date of the run that made it, each run of a date replacing the last.
func (rc ReportConfig) Dated() bool {
	return slices.ContainsFunc(rc.Template.Projection, func(p string) bool {
		return strings.EqualFold(strings.TrimSpace(p), schema.DateSource)
	})
}

// ScheduleConfig is the schedule a template should have. A zero field is
// "any": an existing schedule is not edited for it, and a new schedule
// gets the default.
type ScheduleConfig struct {
	Start         time.Time `yaml:"start"`          // first run (UTC); default: next midnight UTC
	IntervalHours int       `yaml:"interval_hours"` // >= 12; default 24
	Recurrence    int       `yaml:"recurrence"`     // number of runs; default 3650
}

// Default schedule values for new schedules.
const (
	DefaultIntervalHours = 24
	DefaultRecurrence    = 3650
)

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Retention.Days == 0 {
		c.Retention.Days = MaxRetentionDays
	}
	if c.BadRows.MaxFraction == 0 {
		c.BadRows.MaxFraction = 0.01
	}
	if c.Limits.MaxRecordBytes == 0 {
		c.Limits.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if c.Limits.QuarantineBytes == 0 {
		c.Limits.QuarantineBytes = DefaultQuarantineBytes
	}
	if c.Limits.MaxUnknownColumns == 0 {
		c.Limits.MaxUnknownColumns = DefaultMaxUnknownColumns
	}
	if c.Limits.MaxShrink == 0 {
		c.Limits.MaxShrink = DefaultMaxShrink
	}
	c.Cabs.SetDefaults()
}

var datasetRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// reserved names collide with the lake's own folders.
var reserved = []string{"cabs", "cab_index", "quarantine"}

func validDatasetName(name string) error {
	if !datasetRE.MatchString(name) || slices.Contains(reserved, name) {
		return fmt.Errorf("%q must be snake_case ([a-z][a-z0-9_]*, at most 63) and not one of %v", name, reserved)
	}
	return nil
}

// Validate reports every problem, each with its field path.
func (c *Config) Validate() error {
	var errs []error
	if c.Retention.Days < 1 || c.Retention.Days > MaxRetentionDays {
		errs = append(errs, fmt.Errorf("retention.days: %d is not allowed: the Windows Analytics Agreement requires personal data to be destroyed after at most %d days (allowed 1..%d)",
			c.Retention.Days, MaxRetentionDays, MaxRetentionDays))
	}
	if !(c.BadRows.MaxFraction >= 0 && c.BadRows.MaxFraction <= 1) {
		errs = append(errs, fmt.Errorf("bad_rows.max_fraction: %v is outside 0..1", c.BadRows.MaxFraction))
	}
	if c.Limits.MaxRecordBytes < devcenter.RecordPrefix {
		errs = append(errs, fmt.Errorf("limits.max_record_bytes: %d is below %d", c.Limits.MaxRecordBytes, devcenter.RecordPrefix))
	}
	if c.Limits.QuarantineBytes < minQuarantineBytes {
		errs = append(errs, fmt.Errorf("limits.quarantine_bytes: %d is below %d", c.Limits.QuarantineBytes, minQuarantineBytes))
	}
	if c.Limits.MaxUnknownColumns < 0 {
		errs = append(errs, fmt.Errorf("limits.max_unknown_columns: %d is negative", c.Limits.MaxUnknownColumns))
	}
	if !(c.Limits.MaxShrink > 0 && c.Limits.MaxShrink <= 1) {
		errs = append(errs, fmt.Errorf("limits.max_shrink: %v is outside (0, 1]", c.Limits.MaxShrink))
	}
	if _, err := schema.Codec(c.Parquet.Compression); err != nil {
		errs = append(errs, fmt.Errorf("parquet.compression: %w", err))
	}
	if c.Parquet.Encoders < 0 {
		errs = append(errs, fmt.Errorf("parquet.encoders: %d is negative", c.Parquet.Encoders))
	}
	if c.Parquet.RowGroupRows < 0 {
		errs = append(errs, errors.New("parquet.row_group_rows: must not be negative"))
	}
	if err := c.Cabs.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(c.Reports) == 0 {
		errs = append(errs, errors.New("reports: at least one report is required"))
	}
	seen := map[string]bool{}
	for i, r := range c.Reports {
		path := fmt.Sprintf("reports[%d]", i)
		if err := validDatasetName(r.Name); err != nil {
			errs = append(errs, fmt.Errorf("%s.name: %w", path, err))
		} else if seen[r.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q is used twice", path, r.Name))
		}
		seen[r.Name] = true
		errs = append(errs, validateTemplate(path+".template", r.Template)...)
		if r.Schedule.IntervalHours != 0 && r.Schedule.IntervalHours < 12 {
			errs = append(errs, fmt.Errorf("%s.schedule.interval_hours: %d is below the API's minimum of 12", path, r.Schedule.IntervalHours))
		}
		if r.Schedule.Recurrence < 0 {
			errs = append(errs, fmt.Errorf("%s.schedule.recurrence: must not be negative", path))
		}
	}
	return errors.Join(errs...)
}

func validateTemplate(path string, t devcenter.TemplateDef) []error {
	var errs []error
	ds, err := schema.Lookup(t.View)
	if err != nil {
		return []error{fmt.Errorf("%s.view: %w", path, err)}
	}
	if len(t.Projection) == 0 {
		errs = append(errs, fmt.Errorf("%s.projection: must list columns", path))
	}
	for j, a := range t.Columns()[len(t.Projection):] {
		if _, _, ok := schema.Aggregate(a); !ok {
			errs = append(errs, fmt.Errorf("%s.aggregation.aggregatedColumns[%d]: %q is not FUNC(Column)", path, j, a))
		}
	}
	for j, p := range t.Projection {
		if _, ok := ds.Column(p); ok {
			continue
		}
		if _, _, ok := schema.Aggregate(p); !ok {
			errs = append(errs, fmt.Errorf("%s.projection[%d]: %q is not a %s column", path, j, p, ds.View))
		}
	}
	if devcenter.PeriodDays(t.DateRange.ReportPeriod) == 0 {
		errs = append(errs, fmt.Errorf("%s.dateRange.reportPeriod: %q is not a documented period (Yesterday, LastNDays)", path, t.DateRange.ReportPeriod))
	}
	return errs
}
