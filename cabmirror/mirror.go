// Package cabmirror is the cab stage of a cycle: it reads the cab
// references (CabIdHash) of the committed report partitions inside the
// retention window, fetches the cabs not yet in the lake and not expired
// through the Dev Center cab download API (links checked against an
// allowlist, interrupted downloads resumed with Range requests, bytes
// verified against the size and MD5 the blob host reports), stores each
// under lake.CabKey, keeps the cab index (schema.CabIndexRow) of every
// date, and records per partition when all its cabs are done, so that an
// idle run reads nothing again.
//
// A cab's outcome never blocks the others: a refused link, a rejected
// hash, an expired or missing cab, or a download that fails its checks
// (retried within the run, see maxCabAttempts) is counted with its reason
// (Result.Reasons) and the rest go on. Refusals are remembered in the
// partition's State until the allowlist changes.
//
// What it needs from the rest of the program is in Mirror's fields: two
// calls of the Dev Center client, the sink, the datasets and a fence.
package cabmirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/internal/retry"
	"github.com/hdc-export/hdc-export/schema"
	"github.com/hdc-export/hdc-export/sinks"
)

// Client is the two calls of the Dev Center client the mirror needs
// (implemented by *devcenter.Client).
type Client interface {
	// CabLink asks the cab download API of endpoint ep for a cab's link.
	// An error wrapping devcenter.ErrNotFound means the cab is gone.
	CabLink(ctx context.Context, ep devcenter.CabEndpoint, applicationID, cabIDHash string) (string, error)
	// OpenCab opens the blob behind link at offset, if link's host is on
	// allow (else an error wrapping devcenter.ErrHostNotAllowed, with
	// nothing sent to it). An expired link gives an error wrapping
	// devcenter.ErrLinkExpired; a missing blob, devcenter.ErrNotFound.
	OpenCab(ctx context.Context, link string, offset int64, allow *devcenter.HostList) (io.ReadCloser, devcenter.CabMeta, error)
}

// Dataset is a report dataset whose rows reference cabs (its template
// projects CabIdHash).
type Dataset struct {
	Name string // its folder in the lake
	View string // its template's view: IHVDriver or OEMDriver
}

// Mirror is the cab stage. Its fields are set once; Run may be called
// repeatedly but not concurrently.
type Mirror struct {
	Client Client
	Sink   sinks.Sink
	Config Config
	// Datasets are read for cab references, in this order: a cab that two
	// datasets reference under the same date is attributed to the first.
	Datasets []Dataset
	// Compression is the cab index's Parquet codec (see schema.Codec).
	Compression string
	// MkdirTemp makes a private folder for a spill copy of a data file
	// whose sink reader cannot be read at random (S3's); the mirror removes
	// it after use. The caller chooses the place and the name, so that its
	// sweep finds what a crash leaves. Nil means os.MkdirTemp("", "cabmirror-").
	MkdirTemp func() (string, error)
	// Log receives the warnings and the closing count line; required. It
	// never receives a CabIdHash.
	Log *slog.Logger
	// Now is the clock that decides which cabs have expired; nil means
	// time.Now.
	Now func() time.Time
	// Fence, if set, is called before each write of a cab index or of the
	// partition states, and before an index is deleted; an error (such as
	// a lost lease) stops the write.
	Fence func(ctx context.Context) error
	// Progress, if set, receives a one-line status now and then. It must be
	// fast.
	Progress func(line string)
}

// Result counts what one run did with the distinct cabs it saw: counts
// only, never CabIdHash values. A cab that did not land counts under one
// outcome field and, with its reason, in Reasons.
type Result struct {
	Mirrored       int   // downloaded, verified and stored
	Bytes          int64 // the bytes of the mirrored cabs
	SkippedExpired int   // CabExpirationTime passed
	NotFound       int   // the API answered 404 (gone)
	Rejected       int   // CabIdHash not a GUID (hostile or garbled)
	Refused        int   // link to a host off the allowlist, refused by this run
	Deferred       int   // cut by a limit; the next run continues
	Failed         int   // download or verification failed
	// Reasons counts by outcome and reason (see the Outcome* and Reason*
	// constants) every cab that did not land, including those refused by
	// an earlier run under the same allowlist (not asked for again), and
	// the download attempts retried within the run.
	Reasons map[string]map[string]int
	// IndexChanged lists, sorted, the dates whose cab_index partition this
	// run wrote or removed (the downstream signal's cab_index entries).
	IndexChanged []lake.Date
}

// progress reports a status line, if anyone listens.
func (m *Mirror) progress(format string, args ...any) {
	if m.Progress != nil {
		m.Progress(fmt.Sprintf(format, args...))
	}
}

// fence runs the Fence, if any.
func (m *Mirror) fence(ctx context.Context) error {
	if m.Fence == nil {
		return nil
	}
	return m.Fence(ctx)
}

func (m *Mirror) now() time.Time {
	if m.Now != nil {
		return m.Now().UTC()
	}
	return time.Now().UTC()
}

func (m *Mirror) mkdirTemp() (string, error) {
	if m.MkdirTemp != nil {
		return m.MkdirTemp()
	}
	return os.MkdirTemp("", "cabmirror-")
}

// Run mirrors the cabs of window w: for each dataset and each partition
// date inside w whose manifest changed since it was last fully mirrored,
// it reads the partition's cab references, downloads the cabs not yet in
// the lake and not expired, stores each under lake.CabKey, and rewrites
// the cab index of every date whose cabs changed. It does nothing if the
// Config is off. An error does not undo what was stored: every cab that
// landed stays, and the next run continues; the Result counts what was
// done either way.
func (m *Mirror) Run(ctx context.Context, w lake.Window) (Result, error) {
	cfg := m.Config
	if !cfg.On() {
		return Result{}, nil
	}
	cfg.SetDefaults() // a Mirror built without SetDefaults still works
	allow, err := devcenter.ParseHostList(cfg.AllowHosts)
	if err != nil {
		return Result{}, fmt.Errorf("cabs.allow_hosts: %w", err)
	}
	run := &mirrorRun{mirror: m, cfg: cfg, allow: allow, now: m.now(), w: w,
		pacer: retry.NewPacer(cfg.RatePerSecond, 1), budget: *cfg.ByteBudget, retries: tally{}}
	fingerprint := allowFingerprint(cfg.AllowHosts)

	present, err := m.listCabs(ctx, w)
	if err != nil {
		return Result{}, err
	}
	var errs []error
	parts, refusedBefore, err := m.cabPartitions(ctx, w, fingerprint)
	if err != nil {
		errs = append(errs, err)
	}
	// Read the partitions' references in parallel, then take them in
	// order (oldest date first), so a cab lands under its oldest date.
	err = parallel(ctx, cfg.Concurrency, len(parts), func(ctx context.Context, i int) error {
		p := parts[i]
		p.refs, p.rejected, p.readErr = m.readCabRefs(ctx, p)
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
				case !ref.expires.IsZero() && !run.now.Before(ref.expires):
					j.outcome, j.reason = cabExpired, ReasonExpired
				case refusedBefore[ref.hash]:
					j.outcome, j.reason = cabRefusedEarlier, ReasonHostNotAllowed
				default:
					queue = append(queue, j)
				}
			}
			p.jobs = append(p.jobs, j)
		}
	}
	if rejected > 0 {
		m.Log.Warn("cab references rejected: CabIdHash is not a GUID", "count", rejected)
	}

	// Each date's index is written as soon as its cabs are settled, while
	// later dates download. Index writes finish even if the run was
	// cancelled, so that every cab that landed is indexed.
	wctx := context.WithoutCancel(ctx)
	index, err := m.startCabIndexes(wctx, w, present, jobs, queue)
	if err != nil {
		return Result{}, errors.Join(append(errs, err)...)
	}
	run.jobDone = index.jobDone
	run.download(ctx, queue)

	counts := map[cabOutcome]int{}
	reasons := tally{}
	var mirrored int64 // bytes
	for _, j := range jobs {
		counts[j.outcome]++
		reasons.add(j.outcome.name(), j.reason, 1)
		if j.outcome == cabMirrored {
			mirrored += j.size
		}
	}
	// Refusals remembered by partitions this run did not read again.
	for h := range refusedBefore {
		if _, seen := jobs[h]; !seen {
			if _, stored := present[h]; !stored {
				counts[cabRefusedEarlier]++
				reasons.add(OutcomeRefusedEarlier, ReasonHostNotAllowed, 1)
			}
		}
	}
	reasons.add(OutcomeRejected, ReasonMalformedID, rejected)
	for reason, n := range run.retries[OutcomeRetried] {
		reasons.add(OutcomeRetried, reason, n)
	}
	// A failed cab is this cab's outcome, logged with its reason; the run
	// goes on. Only the breaker (the API or blob host is down) and an
	// interruption that left work make the stage an error.
	var cabErrs []error
	const maxCabErrors = 3 // the first failures, in download order
	for _, j := range queue {
		if j.outcome == cabFailed && len(cabErrs) < maxCabErrors {
			cabErrs = append(cabErrs, j.err)
		}
	}
	if n := counts[cabFailed]; n > maxCabErrors {
		cabErrs = append(cabErrs, fmt.Errorf("%d cabs failed in all", n))
	}
	deferred := counts[cabDeferred] + counts[cabQueued]
	switch {
	case run.broken.Load():
		errs = append(errs, cabErrs...)
		errs = append(errs, fmt.Errorf("stopped after %d cabs failed in a row; %d deferred to the next run",
			run.breakerAfter(), deferred))
	case len(cabErrs) > 0:
		m.Log.Warn("cabs failed; the next run tries them again", "count", counts[cabFailed],
			"reasons", fmt.Sprint(reasons[OutcomeFailed]), "errors", errors.Join(cabErrs...).Error())
	}
	if err := ctx.Err(); err != nil && deferred > 0 {
		errs = append(errs, fmt.Errorf("interrupted: %d cabs deferred to the next run: %w", deferred, err))
	}
	res := Result{
		Mirrored:       counts[cabMirrored],
		Bytes:          mirrored,
		SkippedExpired: counts[cabExpired],
		NotFound:       counts[cabNotFound],
		Rejected:       rejected,
		Refused:        counts[cabRefused],
		Deferred:       deferred,
		Failed:         counts[cabFailed],
		Reasons:        reasons,
	}
	if counts[cabRefused] > 0 {
		m.Log.Warn("cab links refused: their host is not on cabs.allow_hosts; the other cabs go on, and these are not asked for again until cabs.allow_hosts changes",
			"count", counts[cabRefused], "first", run.refusal())
	}
	if n := counts[cabRefusedEarlier]; n > 0 {
		m.Log.Warn("cabs refused by earlier runs are not asked for again until cabs.allow_hosts changes", "count", n)
	}

	// The index before the states: a state records only cabs an index
	// describes. Both finish even if the run was cancelled.
	indexErr := index.finish(cfg.Concurrency)
	res.IndexChanged = slices.Sorted(slices.Values(index.changed))
	if indexErr != nil {
		errs = append(errs, indexErr)
	} else if err := m.writeCabStates(wctx, cfg.Concurrency, parts, fingerprint); err != nil {
		errs = append(errs, err)
	}
	if len(queue) > 0 {
		m.Log.Info("cabs mirrored", "mirrored", counts[cabMirrored], "bytes", mirrored,
			"present", counts[cabPresent], "expired", counts[cabExpired], "not_found", counts[cabNotFound],
			"refused", counts[cabRefused], "deferred", deferred, "failed", counts[cabFailed])
	}
	return res, errors.Join(errs...)
}

// listCabs returns the cabs in the lake inside the window, by normalised
// CabIdHash. If a cab is stored under two dates (which the mirror never
// does), the older one counts.
func (m *Mirror) listCabs(ctx context.Context, w lake.Window) (map[string]cabObject, error) {
	out := map[string]cabObject{}
	err := m.Sink.List(ctx, lake.CabDir+"/", func(o sinks.Object) error {
		d, id, ok := lake.ParseCabKey(o.Key)
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
	date lake.Date
	size int64
}

// cabPartitions returns the datasets' partitions inside the window whose
// manifest differs from their mirror state (or whose state remembers
// refusals under another allowlist than allow's fingerprint), oldest date
// first (so a cab lands under the oldest date that references it); and
// the cabs the states remember as refused under allow.
func (m *Mirror) cabPartitions(ctx context.Context, w lake.Window, allow string) ([]*cabPartition, map[string]bool, error) {
	var parts []*cabPartition
	var errs []error
	refused := map[string]bool{}
	var mu sync.Mutex // guards refused
	for _, dataset := range m.Datasets {
		ds, err := schema.Lookup(dataset.View)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", dataset.Name, err))
			continue
		}
		var dates []lake.Date
		err = m.Sink.List(ctx, lake.ManifestDir+"/"+dataset.Name+"/", func(o sinks.Object) error {
			if d, ok := lake.KeyDate(o.Key); ok && w.Contains(d) && o.Key == lake.ManifestKey(dataset.Name, d) {
				dates = append(dates, d)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: list manifests: %w", dataset.Name, err))
			continue
		}
		found := make([]*cabPartition, len(dates))
		err = parallel(ctx, 8, len(dates), func(ctx context.Context, i int) error {
			d := dates[i]
			var man lake.Manifest
			if err := lake.GetJSON(ctx, m.Sink, lake.ManifestKey(dataset.Name, d), &man); err != nil {
				return fmt.Errorf("%s %s: %w", dataset.Name, d, err)
			}
			var st State
			err := lake.GetJSON(ctx, m.Sink, lake.CabStateKey(dataset.Name, d), &st)
			if err == nil && st.AllowHosts == allow {
				mu.Lock()
				for _, h := range st.Refused {
					if id, ok := lake.NormalizeCabID(h); ok {
						refused[id] = true
					}
				}
				mu.Unlock()
			}
			switch {
			case err == nil && st.settled(man.Run, filesDigest(man.Files), allow):
				return nil // every cab of this partition is done
			case err != nil && !errors.Is(err, sinks.ErrNotFound):
				return fmt.Errorf("%s %s: cab state: %w", dataset.Name, d, err)
			}
			found[i] = &cabPartition{dataset: dataset.Name, view: ds.View, date: d, run: man.Run, files: man.Files}
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
	for i, ds := range m.Datasets {
		order[ds.Name] = i
	}
	slices.SortStableFunc(parts, func(a, b *cabPartition) int {
		if a.date != b.date {
			return int(a.date - b.date)
		}
		return order[a.dataset] - order[b.dataset]
	})
	return parts, refused, errors.Join(errs...)
}

func filesDigest(files []lake.File) string {
	sums := make([]string, len(files))
	for i, f := range files {
		sums[i] = f.SHA256
	}
	return strings.Join(sums, ",")
}

// writeCabStates records every partition whose cabs are all done, with
// the cabs refused under the allowlist of fingerprint allow. A partition
// with cabs left (failed or deferred) gets an unsettled record when this
// run refused one of its cabs, so that the refusal is remembered while the
// rest are tried again.
func (m *Mirror) writeCabStates(ctx context.Context, workers int, parts []*cabPartition, allow string) error {
	var write []*cabPartition
	for _, p := range parts {
		if p.readErr == nil && (!p.unsettled() || p.hasJob(func(o cabOutcome) bool { return o == cabRefused })) {
			write = append(write, p)
		}
	}
	if len(write) == 0 {
		return nil
	}
	if err := m.fence(ctx); err != nil {
		return err
	}
	return parallel(ctx, workers, len(write), func(ctx context.Context, i int) error {
		p := write[i]
		st := State{Dataset: p.dataset, Date: p.date.String(), Run: p.run, Files: filesDigest(p.files),
			Refs: len(p.jobs), Rejected: p.rejected, Unsettled: p.unsettled()}
		for _, j := range p.jobs {
			switch j.outcome {
			case cabExpired:
				st.Expired++
			case cabNotFound:
				st.NotFound++
			case cabRefused, cabRefusedEarlier:
				st.Refused = append(st.Refused, j.ref.hash)
			}
		}
		if len(st.Refused) > 0 {
			slices.Sort(st.Refused)
			st.AllowHosts = allow
		}
		return lake.PutJSON(ctx, m.Sink, lake.CabStateKey(p.dataset, p.date), st)
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
