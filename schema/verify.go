package schema

import (
	"errors"
	"fmt"

	arrowparquet "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	arrowschema "github.com/apache/arrow-go/v18/parquet/schema"
)

// Verify opens a written Parquet file with arrow-go's reader, an
// implementation independent of the writer, and checks the footer, the row
// count and every column's name and type against the layout. A file that
// one implementation wrote and another cannot read must never land.
func (l *Layout) Verify(r arrowparquet.ReaderAtSeeker, wantRows int64) error {
	pf, err := file.NewParquetReader(noClose{r})
	if err != nil {
		return fmt.Errorf("verify parquet: open footer: %w", err)
	}
	defer pf.Close()
	if got := pf.NumRows(); got != wantRows {
		return fmt.Errorf("verify parquet: %d rows, want %d", got, wantRows)
	}
	sc := pf.MetaData().Schema
	if sc.NumColumns() != len(l.Fields) {
		return fmt.Errorf("verify parquet: %d columns, want %d", sc.NumColumns(), len(l.Fields))
	}
	var errs []error
	for i, f := range l.Fields {
		c := sc.Column(i)
		if c.Name() != f.Name {
			errs = append(errs, fmt.Errorf("column %d is %q, want %q", i, c.Name(), f.Name))
			continue
		}
		if err := checkType(c, f.Type); err != nil {
			errs = append(errs, fmt.Errorf("column %s: %w", f.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("verify parquet: %w", err)
	}
	return nil
}

func checkType(c *arrowschema.Column, t Type) error {
	phys, lt := c.PhysicalType(), c.LogicalType()
	ok := false
	switch t {
	case String:
		_, isStr := lt.(arrowschema.StringLogicalType)
		ok = phys == arrowparquet.Types.ByteArray && isStr
	case Int64:
		it, isInt := lt.(arrowschema.IntLogicalType)
		ok = phys == arrowparquet.Types.Int64 && isInt && it.IsSigned() && it.BitWidth() == 64
	case Float64:
		ok = phys == arrowparquet.Types.Double
	case Date:
		_, isDate := lt.(arrowschema.DateLogicalType)
		ok = phys == arrowparquet.Types.Int32 && isDate
	case Timestamp:
		ts, isTS := lt.(arrowschema.TimestampLogicalType)
		ok = phys == arrowparquet.Types.Int64 && isTS && ts.IsAdjustedToUTC() && ts.TimeUnit() == arrowschema.TimeUnitMillis
	}
	if !ok {
		return fmt.Errorf("physical %s logical %s, want %s", phys, lt, t)
	}
	return nil
}

// noClose hides the caller's Close from the reader, which would otherwise
// close a file the caller still uses.
type noClose struct{ arrowparquet.ReaderAtSeeker }
