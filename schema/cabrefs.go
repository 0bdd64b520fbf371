package schema

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// CabRef is the part of a report row that refers to a cab: its
// CabIdHash, ApplicationId, CabCollectionTime and CabExpirationTime as
// stored, unvalidated. A null reads as "" or the zero time.
type CabRef struct {
	CabIDHash, ApplicationID string
	Collected, Expires       time.Time // UTC
}

// cabRefSources are the documented columns a CabRef is read from, in the
// order of its fields.
var cabRefSources = [4]string{"CabIdHash", "ApplicationId", "CabCollectionTime", "CabExpirationTime"}

// ReadCabRefs calls fn for every row of a report data file (Parquet, of
// size bytes), reading only the columns of a CabRef by their lake names
// (a column the file lacks reads as null). A file without cab_id_hash
// refers to no cab: fn is not called. It fails if a column does not have
// its documented type (a string, an INT64 timestamp), and checks ctx
// between row groups.
func ReadCabRefs(ctx context.Context, r io.ReaderAt, size int64, fn func(CabRef)) error {
	pf, err := parquet.OpenFile(r, size)
	if err != nil {
		return fmt.Errorf("open parquet: %w", err)
	}
	var idx [4]int
	var units [4]time.Duration // of the timestamp columns
	for i, source := range cabRefSources {
		c := common[source]
		idx[i] = -1
		leaf, ok := pf.Schema().Lookup(c.Name)
		if !ok {
			continue
		}
		if leaf.MaxRepetitionLevel != 0 {
			return fmt.Errorf("column %s is repeated", c.Name)
		}
		kind := leaf.Node.Type().Kind()
		switch c.Type {
		case String:
			if kind != parquet.ByteArray {
				return fmt.Errorf("column %s is %s, want a string", c.Name, kind)
			}
		default:
			units[i] = timestampUnit(leaf.Node)
			if kind != parquet.Int64 || units[i] == 0 {
				return fmt.Errorf("column %s is not an INT64 timestamp", c.Name)
			}
		}
		idx[i] = leaf.ColumnIndex
	}
	if idx[0] < 0 {
		return nil // no cabs in this file
	}
	for _, rg := range pf.RowGroups() {
		if err := ctx.Err(); err != nil {
			return err
		}
		cols := [4]*columnCursor{}
		for i := range cols {
			cols[i] = newColumnCursor(rg, idx[i])
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
			fn(CabRef{
				CabIDHash:     valueString(vals[0]),
				ApplicationID: valueString(vals[1]),
				Collected:     valueTime(vals[2], units[2]),
				Expires:       valueTime(vals[3], units[3]),
			})
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
