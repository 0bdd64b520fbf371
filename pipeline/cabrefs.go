package pipeline

import (
	"context"
	"errors"
	"fmt"
	"github.com/hdc-export/hdc-export/internal/lake"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/hdc-export/hdc-export/schema"
)

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
			id, ok := lake.NormalizeCabID(raw)
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
