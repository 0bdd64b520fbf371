package pipeline

import (
	"context"
	"errors"
	"fmt"
	"github.com/hdc-export/hdc-export/internal/lake"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/schema"
	"github.com/hdc-export/hdc-export/sinks"
)

// Mirror runs the cab mirror stage alone (Run runs it after the exports):
// for each configured dataset and each partition date inside the retention
// window whose manifest changed since it was last fully mirrored, it reads
// the partition's cab references, downloads the cabs not yet in the lake
// and not expired, stores each under CabKey, and rewrites the cab index of
// every date whose cabs changed.
func (r *Runner) Mirror(ctx context.Context) (*Summary, error) {
	start := r.now()
	sum := &Summary{Started: start}
	w := lake.NewWindow(start, r.Config.Retention.Days)
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
func (r *Runner) mirror(ctx context.Context, w lake.Window, sum *Summary) error {
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

	// Each date's index is written as soon as its cabs are settled, while
	// later dates download. Index writes finish even if the run was
	// cancelled, so that every cab that landed is indexed.
	wctx := context.WithoutCancel(ctx)
	index, err := r.startCabIndexes(wctx, w, present, jobs, queue)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	m.jobDone = index.jobDone
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
	// describes. Both finish even if the run was cancelled.
	indexErr := index.finish(cfg.Concurrency)
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
func (r *Runner) listCabs(ctx context.Context, w lake.Window) (map[string]cabObject, error) {
	out := map[string]cabObject{}
	err := r.Sink.List(ctx, lake.CabDir+"/", func(o sinks.Object) error {
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

// cabPartitions returns the configured datasets' partitions inside the
// window whose manifest differs from their mirror state, oldest date
// first (so a cab lands under the oldest date that references it).
func (r *Runner) cabPartitions(ctx context.Context, w lake.Window) ([]*cabPartition, error) {
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
		var dates []lake.Date
		err = r.Sink.List(ctx, lake.ManifestDir+"/"+rc.Name+"/", func(o sinks.Object) error {
			if d, ok := lake.KeyDate(o.Key); ok && w.Contains(d) && o.Key == lake.ManifestKey(rc.Name, d) {
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
			var m lake.Manifest
			if err := lake.GetJSON(ctx, r.Sink, lake.ManifestKey(rc.Name, d), &m); err != nil {
				return fmt.Errorf("%s %s: %w", rc.Name, d, err)
			}
			var st CabState
			switch err := lake.GetJSON(ctx, r.Sink, lake.CabStateKey(rc.Name, d), &st); {
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

func filesDigest(files []lake.File) string {
	sums := make([]string, len(files))
	for i, f := range files {
		sums[i] = f.SHA256
	}
	return strings.Join(sums, ",")
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
		return lake.PutJSON(ctx, r.Sink, lake.CabStateKey(p.dataset, p.date), st)
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
