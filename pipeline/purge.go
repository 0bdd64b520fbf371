package pipeline

import (
	"context"
	"errors"
	"fmt"
	"github.com/hdc-export/hdc-export/internal/lake"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hdc-export/hdc-export/sinks"
)

// deleteBatch is how many keys one Delete call carries (S3's limit).
const deleteBatch = 1000

// PurgeReport is what a purge, or a check (a dry run), found and did. It
// holds counts, folders and dates, never row content, and never the key of
// an object the program wrote (cab keys name cabs); only keys it cannot
// date are listed, quoted, since nothing else points at them.
type PurgeReport struct {
	Time        time.Time `json:"time"`
	Runner      string    `json:"runner"`
	WindowStart string    `json:"window_start"` // oldest date kept
	DryRun      bool      `json:"dry_run"`
	// Verdict is what the report proves (see Judge).
	Verdict Verdict `json:"verdict"`

	Store   StoreReport `json:"store"`
	Scanned ScanCounts  `json:"scanned"`

	// Prefixes counts the out-of-window items (objects, versions and
	// delete markers) by "<folder>/date=YYYY-MM-DD".
	Prefixes map[string]int `json:"prefixes"`
	Objects  int            `json:"objects"` // out-of-window items
	Deleted  int            `json:"deleted"` // out-of-window items destroyed

	// Superseded counts noncurrent versions and delete markers of keys
	// inside the window (or of undated runner state). Purge destroys them
	// at once: the program never reads an old version, so each is a copy
	// the lake no longer shows.
	Superseded        int `json:"superseded"`
	SupersededDeleted int `json:"superseded_deleted"`

	// Locked items are out of the window but object lock forbids
	// destroying them, until LockedUntil (the latest retain-until date;
	// "legal hold" when one has no end).
	Locked int `json:"locked"`
	// SupersededLocked are superseded versions (of keys inside the window)
	// that object lock kept; a later purge destroys them once it lapses.
	SupersededLocked int            `json:"superseded_locked,omitempty"`
	LockedUntil      string         `json:"locked_until,omitempty"`
	LockedPrefixes   map[string]int `json:"locked_prefixes,omitempty"`

	// Unrecognised items (objects and versions) cannot be dated: a
	// malformed "date=" segment, or no date outside the runner's own
	// state. Purge leaves them; a person must look. UnrecognisedKeys lists
	// the first of their keys, Go-quoted, each once.
	Unrecognised     int      `json:"unrecognised"`
	UnrecognisedKeys []string `json:"unrecognised_keys,omitempty"`

	// Links are symbolic links (and other entries that are not files) in
	// a folder lake. They are never followed; a dated one outside the
	// window is unlinked like an object.
	Links int `json:"links"`

	// Uploads are incomplete multipart uploads old enough to be a dead
	// writer's (aborted unless dry run); younger ones may be live.
	Uploads           int `json:"uploads"`
	UploadsAborted    int `json:"uploads_aborted"`
	UploadsInProgress int `json:"uploads_in_progress"`

	// Failed items could not be destroyed for another reason than a lock.
	Failed int `json:"failed"`

	TempFolders       int `json:"temp_folders"`                  // crash-leftover spill folders (removed unless dry run)
	TempFoldersFailed int `json:"temp_folders_failed,omitempty"` // of those, ones that could not be removed
	TempFiles         int `json:"temp_files,omitempty"`          // partial writes of killed puts removed from the sink

	OldestDate string `json:"oldest_date,omitempty"` // oldest dated item seen, before deleting

	// Table is what the table format's step found and did (see
	// TableFormat.Expire); nil for plain Hive files.
	Table *lake.TableCheck `json:"table,omitempty"`

	stale []string
}

// StoreReport is what the store said about itself.
type StoreReport struct {
	// Complete is set when the sink showed everything it holds
	// (sinks.Inventory) and the walk finished. A sink without that
	// ability shows only its current, well-formed keys, so a check on it
	// cannot prove anything; nor can a walk that failed.
	Complete         bool   `json:"complete"`
	Versioning       string `json:"versioning,omitempty"` // Enabled, Suspended, or empty
	ObjectLock       bool   `json:"object_lock,omitempty"`
	DefaultRetention string `json:"default_retention,omitempty"` // "GOVERNANCE 1d"
}

// ScanCounts are the items a purge looked at, by kind.
type ScanCounts struct {
	Objects       int `json:"objects"`
	Versions      int `json:"versions"`
	DeleteMarkers int `json:"delete_markers"`
	Uploads       int `json:"uploads"`
	Links         int `json:"links"`
}

// Stale returns the keys of the out-of-window items, sorted. They may
// repeat (one per version) and hold bytes that are not printable.
func (p *PurgeReport) Stale() []string { return p.stale }

// Judge sums the report up for a check:
//   - VerdictCannotDestroy: something out of the window, or that cannot be
//     dated, would survive a purge (locked, unrecognised, or failing);
//   - VerdictStale: a purge would leave the lake clean;
//   - VerdictClean: nothing is older than the window.
//
// A report of a sink that cannot show everything is VerdictCouldNotCheck.
func (p *PurgeReport) Judge() Verdict {
	switch {
	case !p.Store.Complete:
		return VerdictCouldNotCheck
	case p.Locked > 0 || p.Unrecognised > 0 || p.Failed > 0 || p.TempFoldersFailed > 0:
		return VerdictCannotDestroy
	case p.Objects > p.Deleted || p.Uploads > p.UploadsAborted || p.TempFolders > 0 && p.DryRun:
		return VerdictStale
	case p.Table != nil && p.Table.Left > 0 && p.DryRun:
		return VerdictStale
	case p.Table != nil && p.Table.Left > 0:
		return VerdictCannotDestroy
	}
	return VerdictClean
}

// Verdict is the outcome of a retention check.
type Verdict string

const (
	VerdictClean         Verdict = "clean"
	VerdictStale         Verdict = "stale"
	VerdictCannotDestroy Verdict = "cannot_destroy"
	VerdictCouldNotCheck Verdict = "could_not_check"
)

// maxListedKeys bounds UnrecognisedKeys.
const maxListedKeys = 100

// uploadAge is how old an incomplete multipart upload must be before a
// purge aborts it when a live writer could still own it.
const uploadAge = time.Hour

// Purge destroys everything the lake holds outside the retention window,
// on any store: every object, version and delete marker whose "date="
// segment is out of the window (data, cabs, cab index, manifests, commit
// records, quarantine, cab state alike), every incomplete multipart upload
// of a dead writer, and crash-leftover temp folders and partial writes. It
// also destroys the noncurrent versions and delete markers of keys it
// keeps (see PurgeReport.Superseded). With dryRun it only looks: that is
// the check.
//
// It sees what the store holds, not only what List shows (sinks.Inventory):
// keys the sink would never write are dated like any other, and what cannot
// be dated is reported. One item that cannot be destroyed is counted and
// reported, and every other deletion still happens; the error then says
// so. An audit record is appended when anything was to be deleted. An
// interrupted purge is finished by the next one: it keeps no state.
func (r *Runner) Purge(ctx context.Context, dryRun bool) (*PurgeReport, error) {
	since := r.cycleStart
	if since.IsZero() {
		since = time.Now()
	}
	now := r.now()
	w := lake.NewWindow(now, r.Config.Retention.Days)
	rep := &PurgeReport{Time: now, Runner: r.Config.RunnerID, WindowStart: w.First.String(), DryRun: dryRun, Prefixes: map[string]int{}}
	defer func() { rep.Verdict = rep.Judge() }()
	// The table format goes first: a file is dropped from the tables
	// before it is destroyed. If it fails, the destroying still happens
	// (retention is a legal limit), and the check proves nothing.
	formatErr := r.expireFormat(ctx, w, dryRun, rep)
	plan, err := r.survey(ctx, w, since, rep)
	if err != nil {
		rep.Store.Complete = false // a walk cut short proves nothing
		return rep, errors.Join(fmt.Errorf("purge: %w", err), formatErr)
	}
	var errs []error
	if formatErr != nil {
		rep.Store.Complete = false
		errs = append(errs, fmt.Errorf("purge: %w", formatErr))
	}
	n, err := sweepIdleTemp(r.Config.TempDir, now, !dryRun)
	rep.TempFolders, rep.TempFoldersFailed = n.found, n.failed
	if err != nil {
		errs = append(errs, fmt.Errorf("purge: %w (remove it by hand, or run hdc-export as its owner)", err))
	}
	if dryRun {
		if err := r.lockedInPlace(ctx, plan, rep); err != nil {
			rep.Store.Complete = false
			return rep, fmt.Errorf("purge: %w", err)
		}
		return rep, errors.Join(errs...)
	}
	if err := r.fence(ctx); err != nil {
		return rep, err
	}
	if rep.TempFiles, err = r.sweepSinkTemp(since); err != nil {
		r.Log.Warn("purge: remove leftover partial writes", "error", err.Error())
	}
	if plan.empty() {
		return rep, errors.Join(errs...)
	}
	// The audit record is written before the first delete (with deleted 0)
	// and again after the last, so that a purge killed in between leaves a
	// record of the prefixes it was deleting; the next purge records what
	// was left.
	key := lake.AuditKey(now, r.Config.RunnerID)
	if len(plan.stale) > 0 {
		if err := lake.PutJSON(ctx, r.Sink, key, rep.audit()); err != nil {
			return rep, fmt.Errorf("purge: audit record: %w", err)
		}
	}
	if err := r.destroy(ctx, plan, rep); err != nil {
		errs = append(errs, fmt.Errorf("purge: %w", err))
	}
	if len(plan.stale) > 0 {
		if err := lake.PutJSON(ctx, r.Sink, key, rep.audit()); err != nil {
			errs = append(errs, fmt.Errorf("purge: audit record: %w", err))
		}
	}
	if rep.Deleted+rep.UploadsAborted+rep.SupersededDeleted > 0 {
		r.Log.Info("purged", "outside_window", rep.Deleted, "superseded_versions", rep.SupersededDeleted,
			"uploads_aborted", rep.UploadsAborted, "window_start", rep.WindowStart)
	}
	if rep.Locked > 0 {
		errs = append(errs, fmt.Errorf("purge: cannot destroy %d items: object lock keeps them until %s", rep.Locked, rep.LockedUntil))
	}
	if rep.Failed > 0 {
		errs = append(errs, fmt.Errorf("purge: %d items could not be destroyed", rep.Failed))
	}
	return rep, errors.Join(errs...)
}

// audit is the report as the audit record keeps it, which outlives the
// window: its verdict so far, and no keys (an unrecognised key may name a
// cab).
func (p *PurgeReport) audit() *PurgeReport {
	a := *p
	a.Verdict = p.Judge()
	a.UnrecognisedKeys = nil
	return &a
}

// redactKeys replaces the items' keys in err's text by their date
// prefixes, so that a logged error names no cab; errors.Is and errors.As
// still see err.
func redactKeys(err error, items []sinks.Item) error {
	var pairs []string
	for _, it := range items {
		if it.Key == "" {
			continue
		}
		short := lake.DatePrefix(it.Key) + "/…"
		pairs = append(pairs, strconv.Quote(it.Key), strconv.Quote(short), it.Key, short)
	}
	return lake.Redact(err, strings.NewReplacer(pairs...))
}

// purgePlan is what a purge will destroy, in order: the stale items, then
// the superseded ones, with delete markers last so that removing a marker
// never makes an older version current again.
type purgePlan struct {
	stale      []sinks.Item // out of the window
	superseded []sinks.Item // noncurrent versions and delete markers of kept keys
	uploads    []sinks.Item // incomplete uploads of dead writers
}

func (p *purgePlan) empty() bool {
	return len(p.stale)+len(p.superseded)+len(p.uploads) == 0
}

// survey walks what the store holds and sorts it into the plan, filling
// the report's counts.
func (r *Runner) survey(ctx context.Context, w lake.Window, since time.Time, rep *PurgeReport) (*purgePlan, error) {
	plan := &purgePlan{}
	inv, complete := r.Sink.(sinks.Inventory)
	_, partial := r.Sink.(sinkTemp)
	rep.Store.Complete = complete
	walk := func(fn func(sinks.Item) error) error {
		return r.Sink.List(ctx, "", func(o sinks.Object) error {
			return fn(sinks.Item{Key: o.Key, Size: o.Size, ModTime: o.ModTime, Latest: true})
		})
	}
	if complete {
		st, err := inv.Settings(ctx)
		if err != nil {
			return plan, fmt.Errorf("read the store's settings: %w", err)
		}
		rep.Store.Versioning, rep.Store.ObjectLock = st.Versioning, st.ObjectLock
		if st.DefaultRetention.Mode != "" {
			rep.Store.DefaultRetention = fmt.Sprintf("%s %dd", st.DefaultRetention.Mode, st.DefaultRetention.Days)
		}
		walk = func(fn func(sinks.Item) error) error { return inv.Walk(ctx, fn) }
	}
	oldest := lake.Date(1 << 30)
	err := walk(func(it sinks.Item) error {
		rep.count(it)
		if it.Kind == sinks.ItemUpload {
			r.surveyUpload(it, since, plan, rep)
			return nil
		}
		d, st := lake.DateOfKey(it.Key)
		switch {
		case st == lake.Dated && !w.Contains(d):
			oldest = min(oldest, d)
			plan.stale = append(plan.stale, it)
			rep.stale = append(rep.stale, it.Key)
			rep.Prefixes[lake.DatePrefix(it.Key)]++
			return nil
		case st == lake.Dated:
			oldest = min(oldest, d)
		case st == lake.Undated && partial && strings.HasPrefix(path.Base(it.Key), ".tmp-"):
			return nil // a partial write of the sink: sweepSinkTemp's
		case st == lake.Undatable || !r.isState(it.Key):
			rep.Unrecognised++
			if q := strconv.QuoteToASCII(it.Key); len(rep.UnrecognisedKeys) < maxListedKeys && !slices.Contains(rep.UnrecognisedKeys, q) {
				rep.UnrecognisedKeys = append(rep.UnrecognisedKeys, q)
			}
			return nil
		}
		// A kept key's noncurrent versions and its delete markers, current
		// or not, are copies the lake no longer shows (a deleted key's
		// versions are all noncurrent).
		if it.Kind == sinks.ItemVersion || it.Kind == sinks.ItemDeleteMarker {
			plan.superseded = append(plan.superseded, it)
		}
		return nil
	})
	if err != nil {
		return plan, fmt.Errorf("walk the store: %w", err)
	}
	rep.Superseded = len(plan.superseded)
	rep.Objects = len(plan.stale)
	slices.Sort(rep.stale)
	if oldest != 1<<30 {
		rep.OldestDate = oldest.String()
	}
	return plan, nil
}

// count adds an item to the scan counts.
func (p *PurgeReport) count(it sinks.Item) {
	switch it.Kind {
	case sinks.ItemObject:
		p.Scanned.Objects++
	case sinks.ItemVersion:
		p.Scanned.Versions++
	case sinks.ItemDeleteMarker:
		p.Scanned.DeleteMarkers++
	case sinks.ItemUpload:
		p.Scanned.Uploads++
	default:
		p.Scanned.Links++
		p.Links++
	}
}

// surveyUpload plans to abort an incomplete upload that a dead writer
// left. Under the lease this runner is the lake's only writer, and its
// uploads of this cycle began after since, so an older one is dead;
// doctor's probes, and every upload when there is no lease, must be
// uploadAge old. Upload times are real times, whatever r.Now says.
func (r *Runner) surveyUpload(it sinks.Item, since time.Time, plan *purgePlan, rep *PurgeReport) {
	dead := time.Since(it.ModTime) > uploadAge
	if r.Fence != nil && !strings.HasPrefix(it.Key, lake.DoctorDir) {
		dead = dead || it.ModTime.Before(since)
	}
	if !dead {
		rep.UploadsInProgress++
		return
	}
	rep.Uploads++
	plan.uploads = append(plan.uploads, it)
}

// lockedInPlace finds, for a check, which stale items object lock would
// keep: on a store with object lock, it asks for each stale item's lock.
func (r *Runner) lockedInPlace(ctx context.Context, plan *purgePlan, rep *PurgeReport) error {
	inv, ok := r.Sink.(sinks.Inventory)
	if !ok || !rep.Store.ObjectLock {
		return nil
	}
	for _, it := range plan.stale {
		l, err := inv.LockOf(ctx, it)
		if err != nil {
			return fmt.Errorf("read the object lock of an item under %s: %w", lake.DatePrefix(it.Key), redactKeys(err, []sinks.Item{it}))
		}
		if l.Holds(time.Now()) {
			rep.addLocked(it, l)
		}
	}
	return nil
}

// addLocked counts an item that object lock keeps.
func (p *PurgeReport) addLocked(it sinks.Item, l sinks.Lock) {
	p.Locked++
	if p.LockedPrefixes == nil {
		p.LockedPrefixes = map[string]int{}
	}
	p.LockedPrefixes[lake.DatePrefix(it.Key)]++
	switch until := l.Until.UTC().Format(time.RFC3339); {
	case l.LegalHold:
		p.LockedUntil = "legal hold"
	case p.LockedUntil != "legal hold" && until > p.LockedUntil:
		p.LockedUntil = until
	}
}

// destroy carries the plan out: data before state (if interrupted, what
// remains is found again), and delete markers in a second call, after the
// versions they hide, so that an older version never becomes current.
func (r *Runner) destroy(ctx context.Context, plan *purgePlan, rep *PurgeReport) error {
	inv, ok := r.Sink.(sinks.Inventory)
	if !ok {
		return r.deleteListed(ctx, rep)
	}
	stale := map[itemID]bool{}
	for _, it := range plan.stale {
		stale[idOf(it)] = true
	}
	all := slices.Concat(plan.stale, plan.uploads, plan.superseded)
	slices.SortStableFunc(all, func(a, b sinks.Item) int {
		return boolInt(strings.HasPrefix(a.Key, lake.StateDir+"/")) - boolInt(strings.HasPrefix(b.Key, lake.StateDir+"/"))
	})
	isMarker := func(it sinks.Item) bool { return it.Kind == sinks.ItemDeleteMarker }
	markers := slices.DeleteFunc(slices.Clone(all), func(it sinks.Item) bool { return !isMarker(it) })
	kept := map[string]bool{} // keys with a version that could not be destroyed
	for i, batch := range [][]sinks.Item{slices.DeleteFunc(all, isMarker), markers} {
		if i == 1 {
			// A marker over a version that stays must stay too, or the
			// version would become current again.
			batch = slices.DeleteFunc(batch, func(it sinks.Item) bool { return kept[it.Key] })
		}
		if len(batch) == 0 {
			continue
		}
		if err := r.fence(ctx); err != nil { // the lease may have lapsed during the first call
			return err
		}
		failures, err := inv.Destroy(ctx, batch)
		if err != nil {
			return fmt.Errorf("destroy: %w", redactKeys(err, batch))
		}
		failed := map[itemID]bool{}
		for _, f := range failures {
			failed[idOf(f.Item)] = true
			kept[f.Item.Key] = true
			var le *sinks.LockedError
			switch {
			case errors.As(f.Err, &le) && stale[idOf(f.Item)]:
				rep.addLocked(f.Item, le.Lock)
			case le != nil:
				rep.SupersededLocked++
			default:
				rep.Failed++
				r.Log.Warn("purge: could not destroy an item", "prefix", lake.DatePrefix(f.Item.Key), "kind", f.Item.Kind.String(),
					"error", redactKeys(f.Err, []sinks.Item{f.Item}).Error())
			}
		}
		for _, it := range batch {
			switch id := idOf(it); {
			case failed[id]:
			case stale[id]:
				rep.Deleted++
			case it.Kind == sinks.ItemUpload:
				rep.UploadsAborted++
			default:
				rep.SupersededDeleted++
			}
		}
	}
	return nil
}

// itemID identifies an item of a walk.
type itemID struct {
	key, version, upload string
	kind                 sinks.ItemKind
}

func idOf(it sinks.Item) itemID { return itemID{it.Key, it.VersionID, it.UploadID, it.Kind} }

// deleteListed deletes the stale keys through the plain Delete of a sink
// without the Inventory ability, in batches.
func (r *Runner) deleteListed(ctx context.Context, rep *PurgeReport) error {
	keys := slices.Clone(rep.stale)
	slices.SortStableFunc(keys, func(a, b string) int {
		return boolInt(strings.HasPrefix(a, lake.StateDir+"/")) - boolInt(strings.HasPrefix(b, lake.StateDir+"/"))
	})
	for len(keys) > 0 {
		batch := keys[:min(len(keys), deleteBatch)]
		if err := r.Sink.Delete(ctx, batch...); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		rep.Deleted += len(batch)
		keys = keys[len(batch):]
	}
	return nil
}

// sinkTemp is a sink that keeps partial writes of its own, such as the
// local sink's ".tmp-" files, which a put killed before it finished leaves
// behind.
type sinkTemp interface {
	RemoveTemp(remove func(name string, modTime time.Time) bool) (int, error)
}

// leaseTempGrace is how long before a cycle began a partial write in the
// lease folder must be for the cycle's purges to remove it (see
// sweepSinkTemp).
const leaseTempGrace = time.Minute

// staleSinkTemp is how old a partial write must be before a purge removes
// it when a live writer could still own it.
const staleSinkTemp = time.Hour

// sweepSinkTemp removes the sink's leftover partial writes. Under the lease
// (Fence set) this runner is the lake's only writer and its puts are done,
// so every partial write is a dead writer's, whatever its age. In the lease
// folder, lease contenders write without the lease, and this runner's
// renewals go on: there, only partial writes from well before since (when
// this cycle began, after the lease was taken) are a dead writer's. A
// contender that lost the race for this cycle's lease may still be between
// writing its partial file and linking it when the cycle's first purge
// runs, so the margin is leaseTempGrace, although taking a lease takes
// milliseconds. Doctor's probes, and everything when there is no lease,
// must be staleSinkTemp old. File times are real times, whatever r.Now
// says.
func (r *Runner) sweepSinkTemp(since time.Time) (int, error) {
	st, ok := r.Sink.(sinkTemp)
	if !ok {
		return 0, nil
	}
	now := time.Now()
	return st.RemoveTemp(func(name string, modTime time.Time) bool {
		switch {
		case r.Fence == nil || strings.HasPrefix(name, lake.DoctorDir):
			return now.Sub(modTime) > staleSinkTemp
		case strings.HasPrefix(name, lake.LeaseDir):
			return modTime.Before(since.Add(-leaseTempGrace))
		}
		return true
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// claimTemp sweeps the temp folder at the start of a run and returns the
// run's shared lock on it, to hold while the run may have spill folders
// there. A run killed by SIGKILL leaves its spill folders behind and drops
// its lock: if no other runner holds the lock, every spill folder in dir is
// a dead run's and all are removed, whatever their age; otherwise only those
// older than staleTemp. Where the file system cannot lock, no runner gets
// the lock exclusively, so all sweep by age only.
func claimTemp(dir string, now time.Time) (*tempLock, error) {
	l, exclusive, err := lockTemp(dir)
	age := staleTemp
	if err == nil && exclusive {
		age = 0
	}
	_, err = sweepTemp(dir, age, now, true)
	if serr := l.share(); serr != nil {
		l.release()
		l = nil
	}
	return l, err
}

// sweepIdleTemp is the purge's sweep: every spill folder if no runner
// holds the temp folder's lock, else those older than staleTemp.
func sweepIdleTemp(dir string, now time.Time, remove bool) (swept, error) {
	l, exclusive, _ := lockTemp(dir)
	defer l.release()
	age := staleTemp
	if exclusive {
		age = 0
	}
	return sweepTemp(dir, age, now, remove)
}

// removeAll is os.RemoveAll; tests make it fail, since root, who runs
// them, may remove any folder.
var removeAll = os.RemoveAll

// swept counts the spill folders a sweep found, and of those the ones it
// could not remove.
type swept struct{ found, failed int }

// sweepTemp finds this program's spill folders in dir (default
// os.TempDir()) older than age (all of them if age is 0), removes them if
// remove is set, and counts them. A crash leaves them behind; a live run's
// folder is younger than staleTemp. A folder that cannot be removed (one
// of another user's, say) is counted and named in the error, and the
// others are still removed.
func sweepTemp(dir string, age time.Duration, now time.Time, remove bool) (swept, error) {
	var n swept
	if dir == "" {
		dir = os.TempDir()
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return n, nil
		}
		return n, fmt.Errorf("sweep temp folder: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil || age > 0 && now.Sub(info.ModTime()) < age {
			continue
		}
		n.found++
		if remove {
			if err := removeAll(filepath.Join(dir, e.Name())); err != nil {
				n.failed++
				errs = append(errs, fmt.Errorf("sweep temp folder: %w", err))
			}
		}
	}
	return n, errors.Join(errs...)
}
