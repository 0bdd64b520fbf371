package schema

import (
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/hdc-export/hdc-export/internal/version"
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
// dictionary-encoded unless plain says otherwise, timestamps in UTC-adjusted
// milliseconds. Columns without a dictionary are compressed with fast, if
// not nil, instead of the file's codec.
func parquetSchema(view string, fields []Field, plain []bool, fast compress.Codec) *parquet.Schema {
	g := orderedGroup{Group: parquet.Group{}}
	for i, f := range fields {
		var n parquet.Node
		switch f.Type {
		case String:
			if plain[i] {
				n = parquet.Encoded(parquet.String(), &parquet.Plain)
			} else {
				n = parquet.Encoded(parquet.String(), &parquet.RLEDictionary)
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
		if fast != nil && (f.Type != String || plain[i]) {
			n = parquet.Compressed(n, fast)
		}
		g.Group[f.Name] = parquet.Optional(n)
		g.order = append(g.order, f.Name)
	}
	return parquet.NewSchema(SnakeCase(view), g)
}

// Each file chooses, per string column, between dictionary and PLAIN
// encoding, as DuckDB and parquet-mr do per column chunk: a dictionary pays
// when values repeat, and costs a hash insert per row and a big dictionary
// page when they do not (device ids). The encoder holds the file's first
// sampleRows rows back, estimates from them how many distinct values each
// column has, and writes a column PLAIN when its values would repeat less
// than twice on average over the whole file.
const (
	// sampleRows is how many rows an Encoder holds before it chooses.
	sampleRows = 1024
	// minSample is the fewest non-null values that can make a column plain.
	minSample = 64
)

// plainColumns returns, per field, whether the string column should be
// PLAIN in a file of fileRows rows (0: unknown, as many as sampled) whose
// first rows are sample.
func plainColumns(fields []Field, sample []parquet.Row, fileRows int64) []bool {
	plain := make([]bool, len(fields))
	seen := map[string]struct{}{}
	for i, f := range fields {
		if f.Type != String {
			continue
		}
		clear(seen)
		n := 0
		for _, row := range sample {
			if v := row[i]; !v.IsNull() {
				if _, ok := seen[string(v.ByteArray())]; !ok { // no copy to look up
					seen[string(v.ByteArray())] = struct{}{}
				}
				n++
			}
		}
		values := float64(n) * float64(max(fileRows, int64(len(sample)))) / float64(len(sample))
		plain[i] = n >= minSample && distinct(n, len(seen)) > values/2
	}
	return plain
}

// distinct estimates how many distinct values a column has when d of n
// values drawn from it differ: the K for which n uniform draws from K
// values are expected to show d distinct ones, K(1-e^(-n/K)) = d. All n
// distinct gives +Inf.
func distinct(n, d int) float64 {
	if d >= n {
		return math.Inf(1)
	}
	seen := func(k float64) float64 { return k * -math.Expm1(-float64(n)/k) }
	lo, hi := float64(d), 2*float64(d)
	for seen(hi) < float64(d) {
		lo, hi = hi, 2*hi
	}
	for range 60 {
		mid := (lo + hi) / 2
		if seen(mid) < float64(d) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// EncoderOptions tune the Parquet files. Zero values mean the defaults.
type EncoderOptions struct {
	Compression  string // "zstd" (default), "snappy" or "none"
	RowGroupRows int64  // rows per row group; default 1,000,000
	// Rows is how many rows the file will hold, if known: it tells the
	// encoder whether a column's values repeat (see plainColumns).
	Rows     int64
	Metadata map[string]string // file key/value metadata (run, schema version…)
}

// The codecs are shared by every file the process writes: a zstd
// compressor allocates a history of at least 1 MiB when it is made, so the
// zstd codecs keep theirs for the process (see zstdCodec).
//
// Columns without a dictionary (numbers, timestamps, and strings that are
// mostly unique, such as device ids) use zstd's fastest level: match
// finding finds little in random ids. On the emulator's 294 MB report the
// fastest level compressed device ids twice as fast (181 against 90 MB/s)
// and 4% smaller. Dictionary pages, which hold the repeated text, compress
// about 20% better at the default level, so those columns keep it. The
// lake came out 1% smaller than with the default level everywhere.
var (
	zstdDefault = newZstdCodec(zstd.SpeedDefault)
	zstdFast    = newZstdCodec(zstd.SpeedFastest)
	snappyCodec = &snappy.Codec{}
	noCodec     = &uncompressed.Codec{}
)

// Codec returns the compression codec for a name, or an error naming the
// accepted values. Codecs are safe for concurrent use.
func Codec(name string) (compress.Codec, error) {
	switch name {
	case "", "zstd":
		return zstdDefault, nil
	case "snappy":
		return snappyCodec, nil
	case "none":
		return noCodec, nil
	}
	return nil, fmt.Errorf("unknown compression %q (want zstd, snappy or none)", name)
}

// Encoder writes rows of one layout as one Parquet file. It holds the
// first sampleRows rows back to choose each string column's encoding (see
// plainColumns), then streams.
type Encoder struct {
	l        *Layout
	out      io.Writer
	options  []parquet.WriterOption // all but the schema
	fileRows int64                  // EncoderOptions.Rows
	fast     compress.Codec         // for the columns without a dictionary; nil: the file's codec
	sample   []parquet.Row          // rows held until w starts
	w        *parquet.Writer        // nil until the encodings are chosen
	rows     int64
}

// NewEncoder starts a Parquet file on w. Metadata keys are written in
// sorted order, and the encodings depend only on the rows, so equal input
// gives byte-identical files.
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
		parquet.Compression(codec),
		parquet.MaxRowsPerRowGroup(rg),
		parquet.DataPageStatistics(false),
		createdBy(version.String()),
	}
	keys := make([]string, 0, len(opts.Metadata))
	for k := range opts.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		options = append(options, parquet.KeyValueMetadata(k, opts.Metadata[k]))
	}
	e := &Encoder{l: l, out: w, options: options, fileRows: opts.Rows}
	if codec == zstdDefault {
		e.fast = zstdFast
	}
	return e, nil
}

// Write appends rows produced by Layout.Convert or DecodeRow. The encoder
// copies what it holds back, so the caller may reuse rows and their memory
// once Write returns.
func (e *Encoder) Write(rows []parquet.Row) error {
	if e.w == nil {
		take := min(len(rows), sampleRows-len(e.sample))
		for _, row := range rows[:take] {
			e.sample = append(e.sample, row.Clone())
		}
		if len(e.sample) < sampleRows {
			return nil
		}
		if err := e.start(); err != nil {
			return err
		}
		rows = rows[take:]
	}
	return e.write(rows)
}

// start chooses the encodings from the held rows, starts the file, and
// writes them; once the file is started it does nothing.
func (e *Encoder) start() error {
	if e.w != nil {
		return nil
	}
	plain := plainColumns(e.l.Fields, e.sample, e.fileRows)
	e.w = parquet.NewWriter(e.out, append([]parquet.WriterOption{parquetSchema(e.l.Dataset.View, e.l.Fields, plain, e.fast)}, e.options...)...)
	sample := e.sample
	e.sample = nil
	return e.write(sample)
}

func (e *Encoder) write(rows []parquet.Row) error {
	if len(rows) == 0 {
		return nil
	}
	n, err := e.w.WriteRows(rows)
	e.rows += int64(n)
	if err != nil {
		return fmt.Errorf("write parquet rows: %w", err)
	}
	return nil
}

// Flush ends the current row group, releasing its buffers.
func (e *Encoder) Flush() error {
	if err := e.start(); err != nil {
		return err
	}
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("flush parquet row group: %w", err)
	}
	return nil
}

// Rows is the number of rows written to the file so far; after Close,
// every row given to Write.
func (e *Encoder) Rows() int64 { return e.rows }

// Close flushes the last row group and writes the footer. It does not close
// the underlying writer.
func (e *Encoder) Close() error {
	if err := e.start(); err != nil {
		return err
	}
	if err := e.w.Close(); err != nil {
		return fmt.Errorf("close parquet file: %w", err)
	}
	return nil
}

// createdBy sets a file's created_by to the program's version string as
// it is (parquet.CreatedBy would rebuild it from parts).
type createdBy string

func (c createdBy) ConfigureWriter(cfg *parquet.WriterConfig) { cfg.CreatedBy = string(c) }
