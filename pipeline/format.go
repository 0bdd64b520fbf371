package pipeline

import (
	"context"
	"time"

	"github.com/hdc-export/hdc-export/internal/lake"
)

// TableFormat is a table format other than plain Hive files (see
// ARCHITECTURE.md): it decides how a run's written partitions become
// visible and how an expired date is destroyed. A nil Runner.Format is
// Hive: the file is the partition. cmd wires the implementation
// (internal/lake/iceberg, under the "iceberg" build tag).
type TableFormat interface {
	// DataKey is where date d's data file of a run goes. It carries the
	// date's "date=" segment and differs per run: a file a table
	// references is never rewritten.
	DataKey(dataset string, d lake.Date, run string) string
	// Commit makes a run's partitions visible at once: for each date in
	// files, the run's file (nil: the date has no rows now). It is
	// idempotent, and never registers a file twice.
	Commit(ctx context.Context, c lake.Commit, files map[lake.Date]*lake.File) error
	// Expire removes out-of-window dates from the tables, expires the
	// snapshots that reference them, and deletes the table files nothing
	// reachable references that were written before since. With dryRun it
	// only counts. It runs before the purge's physical deletes.
	Expire(ctx context.Context, w lake.Window, dryRun bool, since time.Time) (lake.TableCheck, error)
	// IsState reports whether an undated key is the format's own
	// metadata, which the purge keeps.
	IsState(key string) bool
}

// dataKey is where date d's data file of run goes.
func (r *Runner) dataKey(dataset string, d lake.Date, run string) string {
	if r.Format != nil {
		return r.Format.DataKey(dataset, d, run)
	}
	return lake.DataKey(dataset, d)
}

// isState reports whether an undated key is runner or table state.
func (r *Runner) isState(key string) bool {
	return lake.IsState(key) || r.Format != nil && r.Format.IsState(key)
}

// commitFormat registers a run's partitions with the table format, if any.
func (r *Runner) commitFormat(ctx context.Context, res *runResult) error {
	if r.Format == nil {
		return nil
	}
	if err := r.fence(ctx); err != nil {
		return err
	}
	return r.Format.Commit(ctx, res.commit, res.files)
}

// expireFormat runs the table format's retention step, if any, before the
// purge's survey.
func (r *Runner) expireFormat(ctx context.Context, w lake.Window, dryRun bool, rep *PurgeReport) error {
	if r.Format == nil {
		return nil
	}
	if !dryRun {
		if err := r.fence(ctx); err != nil {
			return err
		}
	}
	// Under the lease this runner is the lake's only writer, and a purge
	// never runs beside its own ingest: every table file not reachable
	// now is a dead or finished writer's. Without the lease, a file must
	// be staleSinkTemp old.
	before := time.Now().Add(-staleSinkTemp)
	if r.Fence != nil {
		before = time.Now()
	}
	tc, err := r.Format.Expire(ctx, w, dryRun, before)
	rep.Table = &tc
	return err
}
