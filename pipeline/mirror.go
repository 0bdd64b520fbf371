package pipeline

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // the blob host's integrity checksum, not security
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/schema"
	"github.com/hdc-export/hdc-export/sinks"
)

// The mirror's part of the lake (see ARCHITECTURE.md, "The lake contract").
// Every key carries the failure date, so the purge ages cabs, their index
// and the mirror's state out with the data.
const (
	cabDir      = "cabs"
	cabIndexDir = "cab_index"
	cabStateDir = stateDir + "/cabstate"
)

// CabKey is where a cab lands: "cabs/date=YYYY-MM-DD/<cabIdHash>.cab", under
// the failure date of the first row that referenced it. cabIDHash must be
// normalised (see NormalizeCabID).
func CabKey(d Date, cabIDHash string) string {
	return cabDir + "/date=" + d.String() + "/" + cabIDHash + ".cab"
}

// CabIndexKey is the cab index partition of date d.
func CabIndexKey(d Date) string { return cabIndexDir + "/date=" + d.String() + "/" + partFile }

// CabStateKey records the partition manifest run whose cabs are all done.
func CabStateKey(dataset string, d Date) string {
	return cabStateDir + "/" + dataset + "/date=" + d.String() + ".json"
}

// parseCabKey is the inverse of CabKey; it rejects anything else.
func parseCabKey(key string) (Date, string, bool) {
	rest, ok := strings.CutPrefix(key, cabDir+"/date=")
	if !ok || len(rest) < len(dateLayout)+1 || rest[len(dateLayout)] != '/' {
		return 0, "", false
	}
	d, err := ParseDate(rest[:len(dateLayout)])
	if err != nil {
		return 0, "", false
	}
	id, ok := strings.CutSuffix(rest[len(dateLayout)+1:], ".cab")
	if norm, valid := NormalizeCabID(id); !ok || !valid || norm != id {
		return 0, "", false
	}
	return d, id, true
}

// NormalizeCabID checks a CabIdHash against its documented shape, a GUID
// (8-4-4-4-12 hex digits, any case), and returns it in lower case. Anything
// else (path segments, separators, percent-encoding, non-ASCII, any other
// length) is refused, so a value from a report never becomes part of a key
// unless it is exactly 36 safe characters.
func NormalizeCabID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return "", false
			}
		}
	}
	return strings.ToLower(s), true
}

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
	date      Date      // failure date of the partition that referenced it first
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
	date     Date
	run      string
	files    []File
	refs     []cabRef
	rejected int       // distinct CabIdHash values refused (see NormalizeCabID)
	readErr  error     // its references could not be read
	jobs     []*cabJob // one per distinct cab, shared between partitions
}

// Mirror runs the cab mirror stage alone (Run runs it after the exports):
// for each configured dataset and each partition date inside the retention
// window whose manifest changed since it was last fully mirrored, it reads
// the partition's cab references, downloads the cabs not yet in the lake
// and not expired, stores each under CabKey, and rewrites the cab index of
// every date whose cabs changed.
func (r *Runner) Mirror(ctx context.Context) (*Summary, error) {
	start := r.now()
	sum := &Summary{Started: start}
	w := NewWindow(start, r.Config.Retention.Days)
	sum.WindowStart = w.First.String()
	err := r.mirror(ctx, w, sum)
	sum.Duration = r.now().Sub(start).Round(time.Millisecond).String()
	if err != nil {
		sum.Errors++
	}
	return sum, err
}

// mirror is the stage; it adds its counts to sum. An error does not undo
// what was stored: every cab that landed stays, and the next run continues.
func (r *Runner) mirror(ctx context.Context, w Window, sum *Summary) error {
	cfg := r.Config.Cabs
	if !cfg.On() {
		return nil
	}
	cfg.setDefaults() // a Runner built without SetDefaults still works
	allow, err := devcenter.ParseHostList(cfg.AllowHosts)
	if err != nil {
		return fmt.Errorf("cabs.allow_hosts: %w", err)
	}
	m := &mirrorRun{r: r, cfg: cfg, allow: allow, now: r.now(), w: w,
		limiter: newLimiter(cfg.RatePerSecond), budget: *cfg.ByteBudget, stopped: make(chan struct{})}

	present, err := r.listCabs(ctx, w)
	if err != nil {
		return err
	}
	var errs []error
	parts, err := r.cabPartitions(ctx, w)
	if err != nil {
		errs = append(errs, err)
	}
	// Read the partitions' references in parallel, then take them in
	// order (oldest date first), so a cab lands under its oldest date.
	err = parallel(ctx, cfg.Concurrency, len(parts), func(ctx context.Context, i int) error {
		p := parts[i]
		p.refs, p.rejected, p.readErr = r.readCabRefs(ctx, p)
		if p.readErr != nil {
			return fmt.Errorf("%s %s: read cab references: %w", p.dataset, p.date, p.readErr)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	rejected := 0
	jobs := map[string]*cabJob{}
	var queue []*cabJob
	for _, p := range parts {
		if p.readErr != nil {
			continue
		}
		rejected += p.rejected
		for _, ref := range p.refs {
			j, ok := jobs[ref.hash]
			if !ok {
				j = &cabJob{ref: ref}
				jobs[ref.hash] = j
				switch _, stored := present[ref.hash]; {
				case stored:
					j.outcome = cabPresent
				case !ref.expires.IsZero() && !m.now.Before(ref.expires):
					j.outcome = cabExpired
				default:
					queue = append(queue, j)
				}
			}
			p.jobs = append(p.jobs, j)
		}
	}
	if rejected > 0 {
		r.Log.Warn("cab references rejected: CabIdHash is not a GUID", "count", rejected)
	}

	m.download(ctx, queue)

	counts := map[cabOutcome]int{}
	var mirrored int64 // bytes
	for _, j := range jobs {
		counts[j.outcome]++
		if j.outcome == cabMirrored {
			mirrored += j.size
		}
	}
	const maxCabErrors = 3 // the first failures, in download order
	for _, j := range queue {
		if j.outcome == cabFailed && len(errs) < maxCabErrors {
			errs = append(errs, j.err)
		}
	}
	if n := counts[cabFailed]; n > maxCabErrors {
		errs = append(errs, fmt.Errorf("%d cabs failed in all", n))
	}
	if m.broken.Load() {
		errs = append(errs, fmt.Errorf("stopped after %d cabs failed in a row; %d deferred to the next run",
			m.breakerAfter(), counts[cabDeferred]+counts[cabQueued]))
	}
	sum.CabBytes += mirrored
	sum.CabsMirrored += counts[cabMirrored]
	sum.CabsSkippedExpired += counts[cabExpired]
	sum.CabsNotFound += counts[cabNotFound]
	sum.CabsRefused += counts[cabRefused]
	sum.CabsDeferred += counts[cabDeferred] + counts[cabQueued]
	sum.CabsFailed += counts[cabFailed]
	sum.CabsRejected += rejected
	if counts[cabRefused] > 0 {
		r.Log.Warn("cab links refused: their host is not on cabs.allow_hosts; mirroring stopped for this run",
			"count", counts[cabRefused], "first", m.refusal())
	}

	// The index before the states: a state records only cabs an index
	// describes. Both are small and finish even if the run was cancelled,
	// so that every cab that landed is indexed.
	wctx := context.WithoutCancel(ctx)
	indexErr := r.writeCabIndexes(wctx, w, cfg.Concurrency, present, jobs)
	if indexErr != nil {
		errs = append(errs, indexErr)
	} else if err := r.writeCabStates(wctx, cfg.Concurrency, parts); err != nil {
		errs = append(errs, err)
	}
	if len(queue) > 0 {
		r.Log.Info("cabs mirrored", "mirrored", counts[cabMirrored], "bytes", mirrored,
			"present", counts[cabPresent], "expired", counts[cabExpired], "not_found", counts[cabNotFound],
			"deferred", counts[cabDeferred]+counts[cabQueued], "failed", counts[cabFailed])
	}
	return errors.Join(errs...)
}

// listCabs returns the cabs in the lake inside the window, by normalised
// CabIdHash. If a cab is stored under two dates (which the mirror never
// does), the older one counts.
func (r *Runner) listCabs(ctx context.Context, w Window) (map[string]cabObject, error) {
	out := map[string]cabObject{}
	err := r.Sink.List(ctx, cabDir+"/", func(o sinks.Object) error {
		d, id, ok := parseCabKey(o.Key)
		if !ok || !w.Contains(d) {
			return nil
		}
		if old, dup := out[id]; !dup || d < old.date {
			out[id] = cabObject{date: d, size: o.Size}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list cabs: %w", err)
	}
	return out, nil
}

type cabObject struct {
	date Date
	size int64
}

// cabPartitions returns the configured datasets' partitions inside the
// window whose manifest differs from their mirror state, oldest date
// first (so a cab lands under the oldest date that references it).
func (r *Runner) cabPartitions(ctx context.Context, w Window) ([]*cabPartition, error) {
	var parts []*cabPartition
	var errs []error
	for _, rc := range r.Config.Reports {
		ds, err := schema.Lookup(rc.Template.View)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", rc.Name, err))
			continue
		}
		if !slices.ContainsFunc(rc.Template.Projection, func(c string) bool { return strings.EqualFold(c, "CabIdHash") }) {
			continue // this report has no cabs
		}
		var dates []Date
		err = r.Sink.List(ctx, manifestDir+"/"+rc.Name+"/", func(o sinks.Object) error {
			if d, ok := KeyDate(o.Key); ok && w.Contains(d) && o.Key == ManifestKey(rc.Name, d) {
				dates = append(dates, d)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: list manifests: %w", rc.Name, err))
			continue
		}
		found := make([]*cabPartition, len(dates))
		err = parallel(ctx, 8, len(dates), func(ctx context.Context, i int) error {
			d := dates[i]
			var m Manifest
			if err := getJSON(ctx, r.Sink, ManifestKey(rc.Name, d), &m); err != nil {
				return fmt.Errorf("%s %s: %w", rc.Name, d, err)
			}
			var st CabState
			switch err := getJSON(ctx, r.Sink, CabStateKey(rc.Name, d), &st); {
			case err == nil && st.Run == m.Run && st.Files == filesDigest(m.Files):
				return nil // every cab of this partition is done
			case err != nil && !errors.Is(err, sinks.ErrNotFound):
				return fmt.Errorf("%s %s: cab state: %w", rc.Name, d, err)
			}
			found[i] = &cabPartition{dataset: rc.Name, view: ds.View, date: d, run: m.Run, files: m.Files}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
		for _, p := range found {
			if p != nil {
				parts = append(parts, p)
			}
		}
	}
	order := map[string]int{}
	for i, rc := range r.Config.Reports {
		order[rc.Name] = i
	}
	slices.SortStableFunc(parts, func(a, b *cabPartition) int {
		if a.date != b.date {
			return int(a.date - b.date)
		}
		return order[a.dataset] - order[b.dataset]
	})
	return parts, errors.Join(errs...)
}

func filesDigest(files []File) string {
	sums := make([]string, len(files))
	for i, f := range files {
		sums[i] = f.SHA256
	}
	return strings.Join(sums, ",")
}

// readCabRefs reads a partition's distinct cab references (sorted by
// CabIdHash) from its data files' columns cab_id_hash, application_id,
// cab_collection_time and cab_expiration_time, and counts the distinct
// values it rejects (which are never logged or stored). A row with a valid
// CabIdHash but a malformed ApplicationId is rejected too.
func (r *Runner) readCabRefs(ctx context.Context, p *cabPartition) ([]cabRef, int, error) {
	view := p.view
	refs := map[string]cabRef{}
	bad := map[string]bool{} // hostile input: bounded, then counted without dedup
	extra := 0
	for _, f := range p.files {
		err := r.readRefColumns(ctx, f.Key, func(row refRow) {
			raw := strings.TrimSpace(row.hash)
			if raw == "" {
				return // a row without a cab
			}
			id, ok := NormalizeCabID(raw)
			app := strings.TrimSpace(row.app)
			if !ok || (app != "" && !validAppID(app)) {
				switch {
				case bad[raw]:
				case len(bad) < maxRejectedKept:
					bad[raw] = true
				default:
					extra++
				}
				return
			}
			if view != schema.IHVDriver.View {
				app = ""
			}
			if _, seen := refs[id]; !seen {
				refs[id] = cabRef{hash: id, raw: raw, app: app, view: view, dataset: p.dataset, date: p.date,
					collected: row.collected, expires: row.expires}
			}
		})
		if err != nil {
			return nil, 0, err
		}
	}
	out := make([]cabRef, 0, len(refs))
	for _, ref := range refs {
		out = append(out, ref)
	}
	slices.SortFunc(out, func(a, b cabRef) int { return strings.Compare(a.hash, b.hash) })
	return out, len(bad) + extra, nil
}

// maxRejectedKept bounds the rejected values a partition remembers to
// count them once each.
const maxRejectedKept = 4096

// refRow is the part of a data row the mirror reads.
type refRow struct {
	hash, app          string
	collected, expires time.Time
}

// The data columns the mirror reads (schema's snake_case names).
const (
	colCabIDHash     = "cab_id_hash"
	colApplicationID = "application_id"
	colCollected     = "cab_collection_time"
	colExpires       = "cab_expiration_time"
)

// readRefColumns calls fn for every row of a Parquet data file, reading
// only the four columns it needs (a missing column reads as null).
func (r *Runner) readRefColumns(ctx context.Context, key string, fn func(refRow)) error {
	ra, size, closeFn, err := r.openAt(ctx, key)
	if err != nil {
		return err
	}
	defer closeFn()
	pf, err := parquet.OpenFile(ra, size)
	if err != nil {
		return fmt.Errorf("open parquet: %w", err)
	}
	idx := map[string]int{}
	for _, name := range []string{colCabIDHash, colApplicationID, colCollected, colExpires} {
		idx[name] = -1
		leaf, ok := pf.Schema().Lookup(name)
		if !ok {
			continue
		}
		if leaf.MaxRepetitionLevel != 0 {
			return fmt.Errorf("column %s is repeated", name)
		}
		kind := leaf.Node.Type().Kind()
		switch name {
		case colCabIDHash, colApplicationID:
			if kind != parquet.ByteArray {
				return fmt.Errorf("column %s is %s, want a string", name, kind)
			}
		default:
			if kind != parquet.Int64 || timestampUnit(leaf.Node) == 0 {
				return fmt.Errorf("column %s is not an INT64 timestamp", name)
			}
		}
		idx[name] = leaf.ColumnIndex
	}
	if idx[colCabIDHash] < 0 {
		return nil // no cabs in this file
	}
	unit := func(name string) time.Duration {
		if idx[name] < 0 {
			return 0
		}
		leaf, _ := pf.Schema().Lookup(name)
		return timestampUnit(leaf.Node)
	}
	collectedUnit, expiresUnit := unit(colCollected), unit(colExpires)
	for _, rg := range pf.RowGroups() {
		if err := ctx.Err(); err != nil {
			return err
		}
		cols := [4]*columnCursor{}
		for i, name := range []string{colCabIDHash, colApplicationID, colCollected, colExpires} {
			cols[i] = newColumnCursor(rg, idx[name])
		}
		for n := rg.NumRows(); n > 0; n-- {
			var vals [4]parquet.Value
			for i, c := range cols {
				v, err := c.next()
				if err != nil {
					for _, c := range cols {
						c.close()
					}
					return err
				}
				vals[i] = v
			}
			row := refRow{
				hash:      valueString(vals[0]),
				app:       valueString(vals[1]),
				collected: valueTime(vals[2], collectedUnit),
				expires:   valueTime(vals[3], expiresUnit),
			}
			fn(row)
		}
		for _, c := range cols {
			c.close()
		}
	}
	return nil
}

// timestampUnit is the unit of a TIMESTAMP column, or 0 if n is not one.
func timestampUnit(n parquet.Node) time.Duration {
	lt := n.Type().LogicalType()
	if lt == nil {
		return 0
	}
	ts, ok := lt.Value.(*format.TimestampType)
	if !ok || ts.Unit.Value == nil {
		return 0
	}
	return ts.Unit.Value.Duration()
}

func valueString(v parquet.Value) string {
	if v.IsNull() {
		return ""
	}
	return string(v.ByteArray())
}

func valueTime(v parquet.Value, unit time.Duration) time.Time {
	if v.IsNull() || unit <= 0 {
		return time.Time{}
	}
	n := v.Int64()
	switch unit {
	case time.Millisecond:
		return time.UnixMilli(n).UTC()
	case time.Microsecond:
		return time.UnixMicro(n).UTC()
	}
	return time.Unix(0, n).UTC()
}

// columnCursor yields one column's values of a row group in row order; a
// nil cursor (missing column) yields nulls. Only flat columns are read, so
// each value is one row.
type columnCursor struct {
	pages parquet.Pages
	vals  parquet.ValueReader
	buf   []parquet.Value
	i, n  int
}

func newColumnCursor(rg parquet.RowGroup, idx int) *columnCursor {
	if idx < 0 {
		return nil
	}
	return &columnCursor{pages: rg.ColumnChunks()[idx].Pages(), buf: make([]parquet.Value, 512)}
}

func (c *columnCursor) next() (parquet.Value, error) {
	if c == nil {
		return parquet.Value{}, nil
	}
	for c.i >= c.n {
		if c.vals == nil {
			page, err := c.pages.ReadPage()
			if errors.Is(err, io.EOF) {
				return parquet.Value{}, errors.New("column chunk has fewer values than rows")
			}
			if err != nil {
				return parquet.Value{}, fmt.Errorf("read page: %w", err)
			}
			c.vals = page.Values()
		}
		n, err := c.vals.ReadValues(c.buf)
		c.i, c.n = 0, n
		switch {
		case errors.Is(err, io.EOF):
			c.vals = nil
		case err != nil:
			return parquet.Value{}, fmt.Errorf("read values: %w", err)
		}
	}
	v := c.buf[c.i]
	c.i++
	return v, nil
}

func (c *columnCursor) close() {
	if c != nil {
		c.pages.Close()
	}
}

// openAt opens an object for random access: directly if the sink's reader
// is a file, otherwise through a spill copy in TempDir (removed by the
// returned func; a crash leaves it to sweepTemp).
func (r *Runner) openAt(ctx context.Context, key string) (io.ReaderAt, int64, func(), error) {
	rc, err := r.Sink.Get(ctx, key)
	if err != nil {
		return nil, 0, nil, err
	}
	if f, ok := rc.(interface {
		io.ReaderAt
		Stat() (fs.FileInfo, error)
	}); ok {
		if st, err := f.Stat(); err == nil {
			return f, st.Size(), func() { rc.Close() }, nil
		}
	}
	defer rc.Close()
	if r.Config.TempDir != "" {
		if err := os.MkdirAll(r.Config.TempDir, 0o700); err != nil {
			return nil, 0, nil, fmt.Errorf("create temp folder: %w", err)
		}
	}
	dir, err := os.MkdirTemp(r.Config.TempDir, tempPrefix)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("create spill folder: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	f, err := os.CreateTemp(dir, "part-*.parquet")
	if err != nil {
		cleanup()
		return nil, 0, nil, fmt.Errorf("create spill file: %w", err)
	}
	n, err := io.Copy(f, rc)
	if err != nil {
		f.Close()
		cleanup()
		return nil, 0, nil, fmt.Errorf("read %s: %w", key, err)
	}
	return f, n, func() { f.Close(); cleanup() }, nil
}

// writeCabStates records every partition whose cabs are all done.
func (r *Runner) writeCabStates(ctx context.Context, workers int, parts []*cabPartition) error {
	var done []*cabPartition
	for _, p := range parts {
		if p.readErr == nil && !slices.ContainsFunc(p.jobs, func(j *cabJob) bool { return !j.outcome.done() }) {
			done = append(done, p)
		}
	}
	if len(done) == 0 {
		return nil
	}
	if err := r.fence(ctx); err != nil {
		return err
	}
	return parallel(ctx, workers, len(done), func(ctx context.Context, i int) error {
		p := done[i]
		st := CabState{Dataset: p.dataset, Date: p.date.String(), Run: p.run, Files: filesDigest(p.files),
			Refs: len(p.jobs), Rejected: p.rejected}
		for _, j := range p.jobs {
			switch j.outcome {
			case cabExpired:
				st.Expired++
			case cabNotFound:
				st.NotFound++
			}
		}
		return putJSON(ctx, r.Sink, CabStateKey(p.dataset, p.date), st)
	})
}

// parallel calls fn for 0..n-1 with at most workers calls at once, and
// joins their errors in index order. It stops starting calls once ctx is
// done.
func parallel(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	errs := make([]error, n+1)
	sem := make(chan struct{}, max(workers, 1))
	var wg sync.WaitGroup
	for i := range n {
		if err := ctx.Err(); err != nil {
			errs[n] = err
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = fn(ctx, i)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// mirrorRun is the shared state of one run's downloads.
type mirrorRun struct {
	r       *Runner
	cfg     CabsConfig
	allow   *devcenter.HostList
	now     time.Time
	w       Window
	limiter *limiter

	budget int64 // 0 = unlimited
	mu     sync.Mutex
	used   int64
	first  string // the first refusal, for the log (a host, never a path)

	stop     atomic.Bool
	stopped  chan struct{} // closed by halt
	haltOnce sync.Once
	finished atomic.Int64
	streak   atomic.Int64 // failures in a row
	broken   atomic.Bool  // the streak stopped the run
	tripped  func()       // cancels the link calls under way
}

// breakerAfter is how many cabs in a row may fail before the run stops
// asking: the cab API or the blob host is down, and every further cab
// would only spend its full retry budget.
func (m *mirrorRun) breakerAfter() int64 { return int64(max(4, m.cfg.Concurrency)) }

// download fetches the queued cabs in two overlapping stages, each with
// at most Concurrency at work: link fetchers ask the cab API for links
// (within the rate limit) a few cabs ahead, and downloaders stream the
// blobs into the sink. So a download never waits for its link, and the
// cab API sees no more than Concurrency calls at once. Once a limit stops
// the run, the remaining cabs are deferred.
func (m *mirrorRun) download(ctx context.Context, queue []*cabJob) {
	if len(queue) == 0 {
		return
	}
	n := min(m.cfg.Concurrency, len(queue))
	work := make(chan *cabJob)
	linked := make(chan linkedJob, n)
	// Link calls still under way when the breaker trips are cancelled:
	// each would otherwise spend the client's whole retry budget.
	linkCtx, cancelLinks := context.WithCancel(ctx)
	defer cancelLinks()
	m.tripped = cancelLinks
	var fetchers, downloaders sync.WaitGroup
	for range n {
		fetchers.Go(func() {
			for j := range work {
				if m.stop.Load() {
					j.outcome = cabDeferred
					continue
				}
				link, err := m.link(linkCtx, j)
				if err != nil {
					m.settle(ctx, j, err)
					m.finished.Add(1)
					continue
				}
				linked <- linkedJob{j, link}
			}
		})
		downloaders.Go(func() {
			for l := range linked {
				if m.stop.Load() {
					l.job.outcome = cabDeferred
				} else {
					m.fetch(ctx, l.job, l.link)
				}
				if done := m.finished.Add(1); done%16 == 0 {
					m.r.progress("cabs: %d of %d", done, len(queue))
				}
			}
		})
	}
	for _, j := range queue {
		if m.stop.Load() || ctx.Err() != nil {
			j.outcome = cabDeferred
			continue
		}
		work <- j
	}
	close(work)
	fetchers.Wait()
	close(linked)
	downloaders.Wait()
}

// linkedJob is a cab with the link the cab API gave for it.
type linkedJob struct {
	job  *cabJob
	link string
}

// halt stops starting new downloads and wakes calls waiting for the rate
// limiter.
func (m *mirrorRun) halt() {
	m.stop.Store(true)
	m.haltOnce.Do(func() { close(m.stopped) })
}

// errHalted is a link call given up because a limit stopped the run.
var errHalted = errors.New("cab mirror stopped for this run")

func (m *mirrorRun) refusal() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.first
}

// reserve takes n bytes of the budget. The first cab of a run is always
// admitted, so progress never stalls on a cab larger than the budget.
func (m *mirrorRun) reserve(n int64) bool {
	if m.budget == 0 {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used > 0 && m.used+n > m.budget {
		return false
	}
	m.used += n
	return true
}

func (m *mirrorRun) release(n int64) {
	if m.budget == 0 {
		return
	}
	m.mu.Lock()
	m.used -= n
	m.mu.Unlock()
}

// fetch downloads one cab from its link into the sink.
func (m *mirrorRun) fetch(ctx context.Context, j *cabJob, link string) {
	body, meta, err := m.open(ctx, j, &link, 0)
	if err != nil {
		m.settle(ctx, j, err)
		return
	}
	if !m.reserve(meta.Size) {
		body.Close()
		j.outcome = cabDeferred
		m.halt()
		return
	}
	rd := &cabReader{m: m, ctx: ctx, job: j, link: link, body: body, size: meta.Size, want: meta.MD5, h: md5.New()}
	key := CabKey(j.ref.date, j.ref.hash)
	err = m.r.Sink.Put(ctx, key, rd)
	rd.close()
	switch {
	case rd.err != nil:
		err = rd.err // the reason the Put failed
	case err == nil && !rd.done:
		// A sink must read to EOF; if one did not, what it stored is unverified.
		err = errors.New("the sink stopped reading before the end of the cab")
		if derr := m.r.Sink.Delete(context.WithoutCancel(ctx), key); derr != nil {
			err = errors.Join(err, derr)
		}
	}
	if err != nil {
		m.release(meta.Size)
		m.settle(ctx, j, err)
		return
	}
	j.outcome, j.size, j.md5 = cabMirrored, rd.n, rd.h.Sum(nil)
	m.streak.Store(0)
}

// settle classifies a failed download.
func (m *mirrorRun) settle(ctx context.Context, j *cabJob, err error) {
	switch {
	case errors.Is(err, devcenter.ErrHostNotAllowed):
		j.outcome = cabRefused
		m.mu.Lock()
		if m.first == "" {
			m.first = err.Error() // "devcenter: GET scheme://host/…: …": the host only
		}
		m.mu.Unlock()
		// The API points somewhere it must not: stop asking it this run.
		m.halt()
	case errors.Is(err, devcenter.ErrNotFound):
		j.outcome = cabNotFound
	case ctx.Err() != nil, errors.Is(err, errHalted), m.broken.Load() && errors.Is(err, context.Canceled):
		j.outcome = cabDeferred // cancelled: by the caller, a limit, or the breaker
	default:
		j.outcome = cabFailed
		j.err = redactCab(fmt.Errorf("cab of %s %s: %w", j.ref.dataset, j.ref.date, err), j.ref)
		if m.streak.Add(1) >= m.breakerAfter() && !m.broken.Swap(true) {
			m.halt()
			m.tripped()
		}
	}
}

// link asks the cab download API for a link, within the rate limit.
func (m *mirrorRun) link(ctx context.Context, j *cabJob) (string, error) {
	if err := m.limiter.wait(ctx, m.stopped); err != nil {
		return "", err
	}
	return m.r.API.CabLink(ctx, j.ref.endpoint(), j.ref.app, j.ref.raw)
}

// maxLinkRefreshes bounds fresh links asked for one open of a blob that
// answers 403 (an expired or refused signature).
const maxLinkRefreshes = 3

// open opens the blob at offset, getting a fresh link if the one in hand
// has expired.
func (m *mirrorRun) open(ctx context.Context, j *cabJob, link *string, offset int64) (io.ReadCloser, devcenter.CabMeta, error) {
	for refreshes := 0; ; refreshes++ {
		body, meta, err := m.r.API.OpenCab(ctx, *link, offset, m.allow)
		if !errors.Is(err, devcenter.ErrLinkExpired) || refreshes == maxLinkRefreshes {
			return body, meta, err
		}
		fresh, lerr := m.link(ctx, j)
		if lerr != nil {
			return nil, meta, fmt.Errorf("refresh expired link: %w", lerr)
		}
		*link = fresh
	}
}

// Resume limits of one cab download.
const (
	maxCabStalls  = 5   // consecutive interruptions without a byte of progress
	maxCabResumes = 100 // interruptions in all
)

// cabReader is the body handed to Sink.Put: the blob's bytes, resumed with
// Range requests after interruptions, verified as they stream. It fails
// (so the sink stores nothing) instead of returning EOF if the bytes do not
// add up to the size the blob announced or their MD5 differs from the one
// it reported. It is not a Seeker: a sink cannot rewind it.
type cabReader struct {
	m    *mirrorRun
	ctx  context.Context
	job  *cabJob
	link string
	body io.ReadCloser
	size int64
	want []byte // MD5 reported by the blob host; nil if none
	h    hash.Hash

	n       int64 // bytes read so far
	stalls  int
	resumes int
	done    bool  // verified EOF reached
	err     error // sticky failure
}

var (
	errCabTooLong = errors.New("cab body is longer than its announced size")
	errCabMD5     = errors.New("cab MD5 does not match the blob's reported MD5")
)

func (c *cabReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.done {
		return 0, io.EOF
	}
	for {
		if c.body == nil {
			if err := c.resume(); err != nil {
				c.err = err
				return 0, err
			}
		}
		n, err := c.body.Read(p)
		if int64(n) > c.size-c.n {
			c.err = errCabTooLong
			return 0, c.err
		}
		c.n += int64(n)
		c.h.Write(p[:n])
		if n > 0 {
			c.stalls = 0
		}
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, io.EOF) && c.n == c.size:
			c.body.Close()
			c.body = nil
			if c.want != nil && !bytes.Equal(c.h.Sum(nil), c.want) {
				c.err = errCabMD5
				return 0, c.err
			}
			c.done = true
			return n, io.EOF
		}
		// Cut short: a reset, a timeout, or EOF before the announced size.
		if cerr := c.ctx.Err(); cerr != nil {
			c.err = cerr
			return 0, cerr
		}
		c.body.Close()
		c.body = nil
		c.stalls++
		c.resumes++
		if n > 0 {
			return n, nil
		}
	}
}

// resume reopens the blob at the current offset.
func (c *cabReader) resume() error {
	if c.stalls > maxCabStalls || c.resumes > maxCabResumes {
		return fmt.Errorf("download interrupted %d times (%d without progress)", c.resumes, c.stalls)
	}
	if c.stalls > 1 {
		if err := sleepCtx(c.ctx, time.Duration(c.stalls)*100*time.Millisecond); err != nil {
			return err
		}
	}
	body, meta, err := c.m.open(c.ctx, c.job, &c.link, c.n)
	if err != nil {
		return fmt.Errorf("resume at byte %d: %w", c.n, err)
	}
	switch {
	case meta.Size != c.size:
		body.Close()
		return fmt.Errorf("blob changed size during the download (%d, then %d)", c.size, meta.Size)
	case c.want != nil && meta.MD5 != nil && !bytes.Equal(c.want, meta.MD5):
		body.Close()
		return errors.New("blob changed MD5 during the download")
	case c.want == nil:
		c.want = meta.MD5
	}
	c.body = body
	return nil
}

func (c *cabReader) close() {
	if c.body != nil {
		c.body.Close()
		c.body = nil
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// limiter spaces calls at least 1/rate apart (a token bucket of one), in
// wall-clock time.
type limiter struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newLimiter(rate float64) *limiter {
	return &limiter{interval: time.Duration(float64(time.Second) / rate)}
}

// wait blocks until the caller's turn; it gives up with errHalted once
// stop is closed.
func (l *limiter) wait(ctx context.Context, stop <-chan struct{}) error {
	l.mu.Lock()
	now := time.Now()
	at := l.next
	if at.Before(now) {
		at = now
	}
	l.next = at.Add(l.interval)
	l.mu.Unlock()
	select {
	case <-stop:
		return errHalted
	default:
	}
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return errHalted
	case <-t.C:
		return nil
	}
}

// redactedError replaces an error's text (which may quote a key, and so a
// CabIdHash) while keeping it for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactCab removes the cab's identifiers from err's text.
func redactCab(err error, ref cabRef) error {
	msg := err.Error()
	for _, s := range []string{ref.raw, ref.hash, strings.ToUpper(ref.hash)} {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "<cab>")
		}
	}
	return &redactedError{msg: msg, err: err}
}
