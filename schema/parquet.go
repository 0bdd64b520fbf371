package schema

import (
	"fmt"
	"io"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// orderedGroup is a Parquet group whose fields keep the layout's order
// (parquet.Group sorts them by name, which would scramble the columns).
type orderedGroup struct {
	parquet.Group
	order []string
}

func (g orderedGroup) Fields() []parquet.Field {
	fields := slices.Clone(g.Group.Fields())
	slices.SortStableFunc(fields, func(a, b parquet.Field) int {
		return slices.Index(g.order, a.Name()) - slices.Index(g.order, b.Name())
	})
	return fields
}

// parquetSchema builds the file schema: every column optional, strings
// dictionary-encoded (but Unique ones), timestamps in UTC-adjusted milliseconds.
func parquetSchema(view string, fields []Field) *parquet.Schema {
	g := orderedGroup{Group: parquet.Group{}}
	for _, f := range fields {
		var n parquet.Node
		switch f.Type {
		case String:
			n = parquet.String()
			if !f.Unique {
				n = parquet.Encoded(n, &parquet.RLEDictionary)
			}
		case Int64:
			n = parquet.Int(64)
		case Float64:
			n = parquet.Leaf(parquet.DoubleType)
		case Date:
			n = parquet.Date()
		case Timestamp:
			n = parquet.Timestamp(parquet.Millisecond)
		}
		g.Group[f.Name] = parquet.Optional(n)
		g.order = append(g.order, f.Name)
	}
	return parquet.NewSchema(SnakeCase(view), g)
}

// EncoderOptions tune the Parquet files. Zero values mean the defaults.
type EncoderOptions struct {
	Compression  string            // "zstd" (default), "snappy" or "none"
	RowGroupRows int64             // rows per row group; default 1,000,000
	Metadata     map[string]string // file key/value metadata (run, schema version…)
}

// Codec returns the compression codec for a name, or an error naming the
// accepted values.
func Codec(name string) (compress.Codec, error) {
	switch name {
	case "", "zstd":
		return &zstd.Codec{Level: zstd.SpeedDefault}, nil
	case "snappy":
		return &snappy.Codec{}, nil
	case "none":
		return &uncompressed.Codec{}, nil
	}
	return nil, fmt.Errorf("unknown compression %q (want zstd, snappy or none)", name)
}

// Encoder writes rows of one layout as one Parquet file.
type Encoder struct {
	w    *parquet.Writer
	rows int64
}

// NewEncoder starts a Parquet file on w. Metadata keys are written in
// sorted order so equal input gives byte-identical files.
func (l *Layout) NewEncoder(w io.Writer, opts EncoderOptions) (*Encoder, error) {
	codec, err := Codec(opts.Compression)
	if err != nil {
		return nil, err
	}
	rg := opts.RowGroupRows
	if rg <= 0 {
		rg = 1_000_000
	}
	options := []parquet.WriterOption{
		l.schema,
		parquet.Compression(codec),
		parquet.MaxRowsPerRowGroup(rg),
		parquet.DataPageStatistics(false),
		parquet.CreatedBy("hdc-export", Version, ""),
	}
	keys := make([]string, 0, len(opts.Metadata))
	for k := range opts.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		options = append(options, parquet.KeyValueMetadata(k, opts.Metadata[k]))
	}
	return &Encoder{w: parquet.NewWriter(w, options...)}, nil
}

// Write appends rows produced by Layout.Convert.
func (e *Encoder) Write(rows []parquet.Row) error {
	n, err := e.w.WriteRows(rows)
	e.rows += int64(n)
	if err != nil {
		return fmt.Errorf("write parquet rows: %w", err)
	}
	return nil
}

// Flush ends the current row group, releasing its buffers.
func (e *Encoder) Flush() error {
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("flush parquet row group: %w", err)
	}
	return nil
}

// Rows is the number of rows written so far.
func (e *Encoder) Rows() int64 { return e.rows }

// Close flushes the last row group and writes the footer. It does not close
// the underlying writer.
func (e *Encoder) Close() error {
	if err := e.w.Close(); err != nil {
		return fmt.Errorf("close parquet file: %w", err)
	}
	return nil
}
