package pipeline

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"github.com/hdc-export/hdc-export/internal/lake"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/hdc-export/hdc-export/schema"
)

// tempPrefix names the runner's spill folders inside Config.TempDir.
const tempPrefix = "hdc-export-"

// staleTemp is how old a spill folder must be before a later run removes it
// as a crash leftover (far inside the retention window).
const staleTemp = 6 * time.Hour

// A run is converted in two passes through a private temp folder, so that
// memory stays bounded whatever the report's size or date spread:
//
//  1. split: every typed row is appended, in the schema row codec's compact
//     form, to its date's rows file (a small write buffer per date);
//  2. encode: each date's rows file is encoded into that date's Parquet
//     file by a pool of workers, one partition per worker at a time, with
//     row groups cut at rowGroupBytes of spilled rows.
type spill struct {
	dir    string
	layout *schema.Layout
	parts  map[lake.Date]*spillPart
	// groupBytes is where row groups are cut; rowGroupBytes but in tests.
	groupBytes int
	// Speculative encoding (see speculate): jobs feeds idle encoders, specs
	// counts them, last is the date of the latest row (noDate at first).
	jobs       chan specJob
	specs      sync.WaitGroup
	cancelSpec context.CancelFunc
	last       lake.Date
	// quarantined holds the rows that did not parse, per date, as TSV:
	// line, column, reason, then the record's raw fields.
	quarantined map[lake.Date]*quarantineFile
	// quarantineCap bounds each quarantine file's bytes (0: no bound).
	quarantineCap int64
}

type quarantineFile struct {
	path string
	f    *os.File
	w    *csv.Writer
	rows int64
	// size bounds the bytes written so far (each record counted as if
	// every byte needed quoting); dropped counts the rows past the cap.
	size    int64
	dropped int64
}

// quarantineTrailer is the room kept under the cap for the line that
// counts the rows past it.
const quarantineTrailer = 256

// spillPart is one date's rows file and, after encode, its Parquet file.
type spillPart struct {
	rowsPath string
	rowsFile *os.File
	w        *bufio.Writer
	rows     int64

	f *os.File // the encoded Parquet file, positioned at its start

	// spec is a speculative encode of the first rows rows (see speculate):
	// rows is 0 before one is tried, -1 if none could start.
	spec struct {
		rows int64
		f    *os.File
		err  error
	}
}

// specJob is a date to encode speculatively. It carries the part because
// the split goes on adding parts to the map.
type specJob struct {
	d lake.Date
	p *spillPart
}

// noDate is no date at all (no row read yet).
const noDate lake.Date = -1 << 31

const (
	// spillBuffer is the write buffer of each date's rows file.
	spillBuffer = 64 << 10
	// rowGroupBytes bounds the spilled bytes in one row group, and with it
	// the column buffers an encoder holds: a partition of any size is
	// encoded in row groups of about this much data.
	rowGroupBytes = 16 << 20
	// encodeBatch is how many rows are decoded and handed to the encoder
	// at once.
	encodeBatch = 512
)

func newSpill(tempDir string, layout *schema.Layout) (*spill, error) {
	dir, err := mkdirSpill(tempDir)
	if err != nil {
		return nil, err
	}
	return &spill{dir: dir, layout: layout, groupBytes: rowGroupBytes, last: noDate, parts: map[lake.Date]*spillPart{}, quarantined: map[lake.Date]*quarantineFile{}}, nil
}

// mkdirSpill makes a private spill folder in tempDir (os.TempDir() if
// empty, created if missing), named so that sweepTemp finds it if a crash
// leaves it behind.
func mkdirSpill(tempDir string) (string, error) {
	if tempDir != "" {
		if err := os.MkdirAll(tempDir, 0o700); err != nil {
			return "", fmt.Errorf("create temp folder: %w", err)
		}
	}
	dir, err := os.MkdirTemp(tempDir, tempPrefix)
	if err != nil {
		return "", fmt.Errorf("create spill folder: %w", err)
	}
	return dir, nil
}

// write appends one row, in the row codec's form, to date d's rows file.
func (s *spill) write(d lake.Date, row []byte) error {
	p, ok := s.parts[d]
	if !ok {
		path := filepath.Join(s.dir, d.String()+".rows")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
		if err != nil {
			return fmt.Errorf("create spill file: %w", err)
		}
		p = &spillPart{rowsPath: path, rowsFile: f, w: bufio.NewWriterSize(f, spillBuffer)}
		s.parts[d] = p
	}
	var n [binary.MaxVarintLen64]byte
	if _, err := p.w.Write(n[:binary.PutUvarint(n[:], uint64(len(row)))]); err != nil {
		return fmt.Errorf("write spill file: %w", err)
	}
	if _, err := p.w.Write(row); err != nil {
		return fmt.Errorf("write spill file: %w", err)
	}
	p.rows++
	return nil
}

// quarantine keeps a bad record for date d, unless that would take the
// date's quarantine file past the cap: then the record is only counted,
// and kept is false. The values stay in the temp folder and then the
// lake's quarantine, under retention; they are never logged.
func (s *spill) quarantine(d lake.Date, fe *schema.FieldError, rec []string) (kept bool, err error) {
	q, ok := s.quarantined[d]
	if !ok {
		path := filepath.Join(s.dir, "quarantine-"+d.String()+".tsv")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
		if err != nil {
			return false, fmt.Errorf("create quarantine file: %w", err)
		}
		q = &quarantineFile{path: path, f: f, w: csv.NewWriter(f)}
		q.w.Comma = '\t'
		head := []string{"line", "column", "reason", "fields..."}
		if err := q.w.Write(head); err != nil {
			return false, fmt.Errorf("write quarantine file: %w", err)
		}
		q.size = recordSize(head)
		s.quarantined[d] = q
	}
	row := append([]string{strconv.Itoa(fe.Line), fe.Column, fe.Err.Error()}, rec...)
	size := recordSize(row)
	if s.quarantineCap > 0 && q.size+size > s.quarantineCap-quarantineTrailer {
		q.dropped++
		return false, nil
	}
	if err := q.w.Write(row); err != nil {
		return false, fmt.Errorf("write quarantine file: %w", err)
	}
	q.size += size
	q.rows++
	return true, nil
}

// recordSize bounds the bytes csv.Writer writes for rec: each field
// quoted, each byte doubled, a separator and the line end.
func recordSize(rec []string) int64 {
	n := int64(0)
	for _, f := range rec {
		n += 2*int64(len(f)) + 3
	}
	return n + 2
}

// finishQuarantine flushes the quarantine files and rewinds them.
func (s *spill) finishQuarantine() error {
	for _, q := range s.quarantined {
		if q.dropped > 0 {
			note := fmt.Sprintf("%d more bad rows of this date are not kept here: the quarantine reached limits.quarantine_bytes (%d bytes)", q.dropped, s.quarantineCap)
			if err := q.w.Write([]string{"", "", note}); err != nil {
				return fmt.Errorf("write quarantine file: %w", err)
			}
		}
		q.w.Flush()
		if err := q.w.Error(); err != nil {
			return fmt.Errorf("write quarantine file: %w", err)
		}
		if _, err := q.f.Seek(0, 0); err != nil {
			return fmt.Errorf("rewind quarantine file: %w", err)
		}
	}
	return nil
}

// dates returns the dates that have rows, in order.
func (s *spill) dates() []lake.Date {
	dates := make([]lake.Date, 0, len(s.parts))
	for d := range s.parts {
		dates = append(dates, d)
	}
	slices.Sort(dates)
	return dates
}

// Speculative encoding overlaps the two passes. Reports usually list their
// rows date by date, so when the split moves on from a date, that date is
// probably complete: if an encoder is idle, it starts encoding the date's
// rows so far while the split goes on. If more rows of the date arrive
// later, the speculative file is discarded and the date is encoded again
// in pass 2, so the result never depends on the order of the report.

// speculate starts the idle encoders of pass 1; stopSpeculation waits for
// them. Between the two, the split calls moved when it leaves a date.
func (s *spill) speculate(ctx context.Context, workers int, opts schema.EncoderOptions) {
	ctx, s.cancelSpec = context.WithCancel(ctx)
	s.jobs = make(chan specJob)
	for range max(1, workers) {
		s.specs.Go(func() {
			for j := range s.jobs {
				j.p.spec.f, j.p.spec.err = s.encodeRows(ctx, j.d, j.p, j.p.spec.rows, opts)
			}
		})
	}
}

// moved notes that the split wrote a row of date d; when that leaves the
// previous date, an idle encoder starts on it. Each date is tried once.
func (s *spill) moved(d lake.Date) error {
	prev := s.last
	s.last = d
	if s.jobs == nil || prev == d || prev == noDate {
		return nil
	}
	p := s.parts[prev]
	if p.spec.rows > 0 {
		return nil // tried already
	}
	if err := p.w.Flush(); err != nil { // the encoder reads the file itself
		return fmt.Errorf("write spill file: %w", err)
	}
	p.spec.rows = p.rows
	select {
	case s.jobs <- specJob{prev, p}:
	default:
		p.spec.rows = -1 // no encoder idle: pass 2 encodes it
	}
	return nil
}

// stopSpeculation waits for the speculative encodes and keeps those that
// hold all of their date's rows; the others are removed.
func (s *spill) stopSpeculation() error {
	if s.jobs == nil {
		return nil
	}
	close(s.jobs)
	s.specs.Wait()
	s.cancelSpec()
	s.jobs = nil
	var errs []error
	for _, p := range s.parts {
		switch {
		case p.spec.f == nil:
		case p.spec.err == nil && p.spec.rows == p.rows:
			p.f = p.spec.f
		default:
			errs = append(errs, p.spec.f.Close(), os.Remove(p.spec.f.Name()))
		}
		p.spec.f = nil
	}
	return errors.Join(errs...)
}

// encode makes the dates' Parquet files, with up to workers encoders at
// once, calling done (from the calling goroutine, in the order they finish)
// for each partition; dates already encoded by speculation go first. Each
// rows file is removed once its date is encoded. It stops at the first
// error.
func (s *spill) encode(ctx context.Context, dates []lake.Date, workers int, opts schema.EncoderOptions, done func(lake.Date, *spillPart) error) error {
	if err := s.stopSpeculation(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		d   lake.Date
		err error
	}
	todo := make(chan lake.Date)
	results := make(chan result)
	var ready, rest []lake.Date
	for _, d := range dates {
		if s.parts[d].f != nil {
			ready = append(ready, d)
		} else {
			rest = append(rest, d)
		}
	}
	var wg sync.WaitGroup
	for range max(1, min(workers, len(rest))) {
		wg.Go(func() {
			for d := range todo {
				p := s.parts[d]
				var err error
				if err = p.w.Flush(); err == nil {
					p.f, err = s.encodeRows(ctx, d, p, p.rows, opts)
				}
				select {
				case results <- result{d, err}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		defer close(todo)
		for _, d := range rest {
			select {
			case todo <- d:
			case <-ctx.Done():
				return
			}
		}
	}()
	finish := func(d lake.Date, err error) error {
		if err != nil {
			return err
		}
		p := s.parts[d]
		p.rowsFile.Close()
		if err := os.Remove(p.rowsPath); err != nil { // the rows are in the Parquet file now
			return fmt.Errorf("partition %s: remove spill file: %w", d, err)
		}
		return done(d, p)
	}
	var err error
	for _, d := range ready {
		if err = finish(d, nil); err != nil {
			break
		}
	}
	for range rest {
		if err != nil {
			break
		}
		select {
		case r := <-results:
			err = finish(r.d, r.err)
		case <-ctx.Done(): // workers stop without a result
			err = ctx.Err()
		}
	}
	cancel()
	wg.Wait()
	return err
}

// encodeRows encodes the first rows rows of date d's rows file (part p)
// into the date's Parquet file, returned positioned at its start. It reads
// the rows file through its own handle, so the split may go on appending.
func (s *spill) encodeRows(ctx context.Context, d lake.Date, p *spillPart, rows int64, opts schema.EncoderOptions) (_ *os.File, err error) {
	in, err := os.Open(p.rowsPath)
	if err != nil {
		return nil, fmt.Errorf("partition %s: open spill file: %w", d, err)
	}
	defer in.Close()
	f, err := os.OpenFile(filepath.Join(s.dir, d.String()+".parquet"), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("partition %s: create parquet file: %w", d, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	opts.Rows = rows
	enc, err := s.layout.NewEncoder(f, opts)
	if err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(in, spillBuffer)
	var (
		block   []byte // encoded rows of the batch; the decoded rows alias it
		ends    []int  // end offset of each row in block
		batch   = make([]parquet.Row, encodeBatch)
		inGroup int
	)
	for read := int64(0); read < rows; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		block, ends = block[:0], ends[:0]
		for ; read < rows && len(ends) < encodeBatch; read++ {
			n, err := binary.ReadUvarint(r)
			if err != nil {
				return nil, fmt.Errorf("partition %s: read spill file: %w", d, err)
			}
			block = slices.Grow(block, int(n))
			if _, err := io.ReadFull(r, block[len(block):len(block)+int(n)]); err != nil {
				return nil, fmt.Errorf("partition %s: read spill file: %w", d, err)
			}
			block = block[:len(block)+int(n)]
			ends = append(ends, len(block))
		}
		start := 0
		for i, end := range ends {
			row, _, err := s.layout.DecodeRow(block[start:end], batch[i])
			if err != nil {
				return nil, fmt.Errorf("partition %s: %w", d, err)
			}
			batch[i], start = row, end
		}
		if err := enc.Write(batch[:len(ends)]); err != nil {
			return nil, fmt.Errorf("partition %s: %w", d, err)
		}
		if inGroup += len(block); inGroup >= s.groupBytes {
			if err := enc.Flush(); err != nil {
				return nil, fmt.Errorf("partition %s: %w", d, err)
			}
			inGroup = 0
		}
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("partition %s: %w", d, err)
	}
	if enc.Rows() != rows {
		return nil, fmt.Errorf("partition %s: encoded %d rows of %d", d, enc.Rows(), rows)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("partition %s: rewind parquet file: %w", d, err)
	}
	return f, nil
}

// close stops speculation and removes every spill file.
func (s *spill) close() error {
	if s.jobs != nil {
		s.cancelSpec()
		s.stopSpeculation() // closes the speculative files it does not keep
	}
	for _, p := range s.parts {
		p.rowsFile.Close()
		if p.f != nil {
			p.f.Close()
		}
	}
	for _, q := range s.quarantined {
		q.f.Close()
	}
	return os.RemoveAll(s.dir)
}
