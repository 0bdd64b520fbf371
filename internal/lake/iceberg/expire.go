//go:build iceberg

package iceberg

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/sinks"
)

// PurgeProperty, in a snapshot's summary, is the window start of the
// purge that dropped dates.
const PurgeProperty = "hdc.purge"

// Expire destroys, in every table, what the window no longer allows, and
// proves it. For each table it:
//
//  1. drops the data files of out-of-window dates in one snapshot;
//  2. expires every snapshot but the current one, so no snapshot that
//     referenced them stays reachable (time travel does not outlive a
//     purge), and rewrites the current snapshot's manifests if they still
//     name a dropped file in a delete entry;
//  3. deletes every object under the table location that no reachable
//     metadata references (old metadata files, manifest lists, manifests,
//     dropped and superseded data files) and that was written before since
//     (an unfinished writer's files are younger; under the lease, since is
//     when the cycle began), once the session has stored the catalog.
//
// The physical data files of out-of-window dates are dated by their keys,
// so the pipeline's purge destroys them, every version, after this step.
// With dryRun it changes nothing and counts what it would do. Left in the
// result is what still referenced an out-of-window date, or was orphaned,
// when it ended.
func (f *Format) Expire(ctx context.Context, w lake.Window, dryRun bool, since time.Time) (lake.TableCheck, error) {
	tc := lake.TableCheck{Format: "iceberg"}
	var orphans []string
	err := f.session(ctx, !dryRun, func(cat catalogT) error {
		names, err := f.tables(ctx, cat)
		if err != nil {
			return err
		}
		tc.Tables = len(names)
		for _, name := range names {
			o, err := f.expireTable(ctx, cat, name, w, dryRun, since, &tc)
			if err != nil {
				return fmt.Errorf("table %s: %w", name, err)
			}
			orphans = append(orphans, o...)
		}
		return nil
	})
	if err != nil || dryRun || len(orphans) == 0 {
		return tc, err
	}
	// Only now that the session has stored the catalog: an old metadata
	// file is an orphan only to the new catalog, and a crash before the
	// catalog reached the lake must find the old one's files all there.
	if err := f.sink.Delete(ctx, orphans...); err != nil {
		tc.Left += len(orphans)
		return tc, fmt.Errorf("delete orphans: %w", err)
	}
	tc.OrphansDeleted += len(orphans)
	return tc, nil
}

// expireTable does steps 1 and 2 for one table and returns its orphans
// (step 3), which Expire deletes once the catalog is stored.
func (f *Format) expireTable(ctx context.Context, cat catalogT, name string, w lake.Window, dryRun bool, since time.Time, tc *lake.TableCheck) ([]string, error) {
	t, err := load(ctx, cat, name)
	if err != nil || t == nil {
		return nil, err
	}
	r, err := f.reach(ctx, t, w)
	if err != nil {
		return nil, err
	}
	tc.StaleFiles += len(r.stale)
	if !dryRun {
		if t, err = f.drop(ctx, t, w, tc); err != nil {
			return nil, err
		}
		if t, err = f.expireSnapshots(ctx, t, tc); err != nil {
			return nil, err
		}
		if r, err = f.reach(ctx, t, w); err != nil {
			return nil, err
		}
		if len(r.stale) > 0 { // delete entries in the current snapshot's manifests
			tx := t.NewTransaction()
			if _, err := tx.RewriteManifests(ctx); err != nil {
				return nil, fmt.Errorf("rewrite manifests: %w", err)
			}
			if t, err = tx.Commit(ctx); err != nil {
				return nil, fmt.Errorf("commit rewritten manifests: %w", err)
			}
			if t, err = f.expireSnapshots(ctx, t, tc); err != nil {
				return nil, err
			}
			if r, err = f.reach(ctx, t, w); err != nil {
				return nil, err
			}
		}
	}
	orphans, err := f.orphans(ctx, name, r.keys, w, since)
	if err != nil {
		return nil, err
	}
	tc.Orphans += len(orphans)
	tc.Snapshots += len(t.Metadata().Snapshots())
	tc.Left += len(r.stale)
	if dryRun {
		tc.Left += len(orphans)
	}
	return orphans, nil
}

// reached is what a table's metadata reaches: the keys of its metadata
// file, every reachable snapshot's manifest list, manifests and live data
// files, and the data file paths of out-of-window dates any of those
// manifests names (live or deleted).
type reached struct {
	keys  map[string]bool
	stale map[string]bool
}

func (f *Format) reach(ctx context.Context, t *table.Table, w lake.Window) (reached, error) {
	r := reached{keys: map[string]bool{}, stale: map[string]bool{}}
	add := func(loc string) error {
		k, ok := f.keyOf(loc)
		if !ok {
			return fmt.Errorf("a file outside the warehouse: the table's location moved")
		}
		r.keys[k] = true
		return nil
	}
	if err := add(t.MetadataLocation()); err != nil {
		return r, err
	}
	fs, err := t.FS(ctx)
	if err != nil {
		return r, err
	}
	seen := map[string]bool{}
	for _, snap := range t.Metadata().Snapshots() {
		if err := add(snap.ManifestList); err != nil {
			return r, err
		}
		mans, err := snap.Manifests(fs)
		if err != nil {
			return r, fmt.Errorf("read manifest list: %w", err)
		}
		for _, m := range mans {
			if seen[m.FilePath()] {
				continue
			}
			seen[m.FilePath()] = true
			if err := add(m.FilePath()); err != nil {
				return r, err
			}
			entries, err := m.FetchEntries(fs, false)
			if err != nil {
				return r, fmt.Errorf("read manifest: %w", err)
			}
			for _, e := range entries {
				df := e.DataFile()
				d, ok := dateOf(df)
				if !ok || !w.Contains(d) {
					r.stale[df.FilePath()] = true
				}
				if e.Status() != iceberg.EntryStatusDELETED {
					if err := add(df.FilePath()); err != nil {
						return r, err
					}
				}
			}
		}
	}
	return r, nil
}

// drop removes the live data files of out-of-window dates in one snapshot.
func (f *Format) drop(ctx context.Context, t *table.Table, w lake.Window, tc *lake.TableCheck) (*table.Table, error) {
	live, err := liveFiles(ctx, t)
	if err != nil {
		return t, err
	}
	var del []iceberg.DataFile
	for _, df := range live {
		if d, ok := dateOf(df); !ok || !w.Contains(d) {
			del = append(del, df)
		}
	}
	if len(del) == 0 {
		return t, nil
	}
	tx := t.NewTransaction()
	if err := tx.ReplaceDataFilesWithDataFiles(ctx, del, nil, iceberg.Properties{PurgeProperty: w.First.String()}); err != nil {
		return t, fmt.Errorf("stage dropping %d expired files: %w", len(del), err)
	}
	nt, err := tx.Commit(ctx)
	if err != nil {
		return t, fmt.Errorf("commit dropping %d expired files: %w", len(del), err)
	}
	tc.Dropped += len(del)
	return nt, nil
}

// expireSnapshots removes every snapshot but the current one; the files
// they alone reached are deleted by the orphan sweep.
func (f *Format) expireSnapshots(ctx context.Context, t *table.Table, tc *lake.TableCheck) (*table.Table, error) {
	n := len(t.Metadata().Snapshots())
	if n <= 1 {
		return t, nil
	}
	tx := t.NewTransaction()
	if err := tx.ExpireSnapshots(table.WithRetainLast(1), table.WithOlderThan(0), table.WithPostCommit(false)); err != nil {
		return t, fmt.Errorf("expire snapshots: %w", err)
	}
	nt, err := tx.Commit(ctx)
	if err != nil {
		return t, fmt.Errorf("commit expired snapshots: %w", err)
	}
	tc.SnapshotsExpired += n - len(nt.Metadata().Snapshots())
	return nt, nil
}

// orphans lists the keys under a table's location that reach does not
// hold: those written before since, and any of an out-of-window date.
func (f *Format) orphans(ctx context.Context, name string, reach map[string]bool, w lake.Window, since time.Time) ([]string, error) {
	var out []string
	err := f.sink.List(ctx, name+"/", func(o sinks.Object) error {
		if reach[o.Key] {
			return nil
		}
		d, dated := lake.KeyDate(o.Key)
		if o.ModTime.Before(since) || dated && !w.Contains(d) {
			out = append(out, o.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list table files: %w", err)
	}
	return out, nil
}
