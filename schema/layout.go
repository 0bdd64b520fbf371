package schema

import (
	"errors"
	"fmt"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Field is one column of a report file as it lands in the lake.
type Field struct {
	Source string // header name in the report file
	Name   string // lake column name (snake_case, unique within the layout)
	Type   Type
	// Extra is true for a column the dataset does not document (kept as a
	// string), false for documented and aggregate columns.
	Extra bool
}

// Layout maps the header of one report file onto lake columns. It is
// immutable after Bind and safe for concurrent use.
type Layout struct {
	Dataset *Dataset
	Fields  []Field // in header order; also the Parquet column order
	dateCol int     // index of FailureDate in Fields
}

// Bind maps a report header onto the dataset. Documented columns get their
// documented name and type (header matching is case-insensitive); aggregate
// expressions such as "SUM(EventCount)" become numeric columns named
// "sum_event_count"; unknown columns are kept as strings with a sanitised
// name. Missing documented columns are simply absent, FailureDate too (an
// aggregate over the whole period has none; see Dated). Bind fails on an
// empty or duplicated header.
func Bind(ds *Dataset, header []string) (*Layout, error) {
	l := &Layout{Dataset: ds, dateCol: -1}
	seen := map[string]bool{}
	var errs []error
	for i, h := range header {
		h = strings.TrimSpace(h)
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff") // a UTF-8 byte order mark
		}
		if h == "" {
			errs = append(errs, fmt.Errorf("header column %d is empty", i+1))
			continue
		}
		f := fieldFor(ds, h)
		if f.Source == DateSource {
			l.dateCol = len(l.Fields)
		}
		name := f.Name
		for n := 2; seen[f.Name]; n++ {
			f.Name = fmt.Sprintf("%s_%d", name, n)
		}
		if name != f.Name && !f.Extra {
			errs = append(errs, fmt.Errorf("header column %d (%s) is duplicated", i+1, h))
		}
		seen[f.Name] = true
		l.Fields = append(l.Fields, f)
	}
	if len(l.Fields) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("header is empty"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("bind %s header: %w", ds.View, err)
	}
	return l, nil
}

// fieldFor types one header name.
func fieldFor(ds *Dataset, h string) Field {
	if c, ok := ds.Column(h); ok {
		return Field{Source: c.Source, Name: c.Name, Type: c.Type}
	}
	if fn, arg, ok := Aggregate(h); ok {
		argName, argType := SnakeCase(arg), String
		if c, ok := ds.Column(arg); ok {
			argName, argType = c.Name, c.Type
		}
		t := Int64
		switch fn {
		case "AVG":
			t = Float64
		case "SUM":
			if argType != Int64 {
				t = Float64
			}
		case "MIN", "MAX":
			t = argType
		}
		return Field{Source: h, Name: strings.ToLower(fn) + "_" + argName, Type: t}
	}
	return Field{Source: h, Name: SnakeCase(h), Type: String, Extra: true}
}

// DateIndex is the position of FailureDate in a record, or -1 when the
// report has none.
func (l *Layout) DateIndex() int { return l.dateCol }

// Dated reports whether the report has a FailureDate column, so that each
// row carries its failure date.
func (l *Layout) Dated() bool { return l.dateCol >= 0 }

// Columns returns the lake column names in file order.
func (l *Layout) Columns() []string {
	names := make([]string, len(l.Fields))
	for i, f := range l.Fields {
		names[i] = f.Name
	}
	return names
}

// Signature is a stable description of the layout's columns and types, used
// to detect schema changes between runs of one dataset.
func (l *Layout) Signature() string {
	var b strings.Builder
	for i, f := range l.Fields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(f.Name + " " + f.Type.String())
	}
	return b.String()
}

// FieldError reports a value that could not be typed. It names the line and
// column but never the value, which may be personal data.
type FieldError struct {
	Line   int    // 1-based line of the record in the file (the header is line 1)
	Column string // source column name; empty for a record-level problem
	Err    error
}

func (e *FieldError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("line %d, column %s: %v", e.Line, e.Column, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// ErrFieldCount: a record's field count differs from the header's.
var ErrFieldCount = errors.New("wrong number of fields")

// Convert types one record into a Parquet row (appended to row[:0]) and
// returns its failure date in days since 1970-01-01, with AppendRow's rules
// and errors. The row's strings are copies, independent of rec.
func (l *Layout) Convert(rec []string, line int, row parquet.Row) (parquet.Row, int32, error) {
	buf, date, err := l.AppendRow(nil, rec, line)
	if err != nil {
		return row[:0], 0, err
	}
	row, _, err = l.DecodeRow(buf, row)
	return row, date, err
}
