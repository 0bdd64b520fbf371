package pipeline

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/csv"
	"fmt"
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
	parts  map[Date]*spillPart
	// groupBytes is where row groups are cut; rowGroupBytes but in tests.
	groupBytes int
	// quarantined holds the rows that did not parse, per date, as TSV:
	// line, column, reason, then the record's raw fields.
	quarantined map[Date]*quarantineFile
}

type quarantineFile struct {
	path string
	f    *os.File
	w    *csv.Writer
	rows int64
}

// spillPart is one date's rows file and, after encode, its Parquet file.
type spillPart struct {
	rowsPath string
	rowsFile *os.File
	w        *bufio.Writer
	rows     int64

	f *os.File // the encoded Parquet file, positioned at its start
}

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
	if tempDir != "" {
		if err := os.MkdirAll(tempDir, 0o700); err != nil {
			return nil, fmt.Errorf("create temp folder: %w", err)
		}
	}
	dir, err := os.MkdirTemp(tempDir, tempPrefix)
	if err != nil {
		return nil, fmt.Errorf("create spill folder: %w", err)
	}
	return &spill{dir: dir, layout: layout, groupBytes: rowGroupBytes, parts: map[Date]*spillPart{}, quarantined: map[Date]*quarantineFile{}}, nil
}

// write appends one row, in the row codec's form, to date d's rows file.
func (s *spill) write(d Date, row []byte) error {
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

// quarantine keeps a bad record for date d. The values stay in the temp
// folder and then the lake's quarantine, under retention; they are never
// logged.
func (s *spill) quarantine(d Date, fe *schema.FieldError, rec []string) error {
	q, ok := s.quarantined[d]
	if !ok {
		path := filepath.Join(s.dir, "quarantine-"+d.String()+".tsv")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
		if err != nil {
			return fmt.Errorf("create quarantine file: %w", err)
		}
		q = &quarantineFile{path: path, f: f, w: csv.NewWriter(f)}
		q.w.Comma = '\t'
		if err := q.w.Write([]string{"line", "column", "reason", "fields..."}); err != nil {
			return fmt.Errorf("write quarantine file: %w", err)
		}
		s.quarantined[d] = q
	}
	reason := fe.Err.Error()
	if err := q.w.Write(append([]string{strconv.Itoa(fe.Line), fe.Column, reason}, rec...)); err != nil {
		return fmt.Errorf("write quarantine file: %w", err)
	}
	q.rows++
	return nil
}

// finishQuarantine flushes the quarantine files and rewinds them.
func (s *spill) finishQuarantine() error {
	for _, q := range s.quarantined {
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
func (s *spill) dates() []Date {
	dates := make([]Date, 0, len(s.parts))
	for d := range s.parts {
		dates = append(dates, d)
	}
	slices.Sort(dates)
	return dates
}

// encode converts the dates' rows files into Parquet files with up to
// workers encoders at once, calling done (from the calling goroutine, in
// the order they finish) for each encoded partition. Each rows file is
// removed once encoded. It stops at the first error.
func (s *spill) encode(ctx context.Context, dates []Date, workers int, opts schema.EncoderOptions, done func(Date, *spillPart) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		d   Date
		err error
	}
	todo := make(chan Date)
	results := make(chan result)
	var wg sync.WaitGroup
	for range max(1, min(workers, len(dates))) {
		wg.Go(func() {
			for d := range todo {
				err := s.encodePart(ctx, d, opts)
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
		for _, d := range dates {
			select {
			case todo <- d:
			case <-ctx.Done():
				return
			}
		}
	}()
	var err error
	for range dates {
		r := <-results
		if err = r.err; err == nil {
			err = done(r.d, s.parts[r.d])
		}
		if err != nil {
			break
		}
	}
	cancel()
	wg.Wait()
	return err
}

// encodePart writes date d's Parquet file from its rows file.
func (s *spill) encodePart(ctx context.Context, d Date, opts schema.EncoderOptions) (err error) {
	p := s.parts[d]
	if err := p.w.Flush(); err != nil {
		return fmt.Errorf("partition %s: write spill file: %w", d, err)
	}
	if _, err := p.rowsFile.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("partition %s: rewind spill file: %w", d, err)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, d.String()+".parquet"), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("partition %s: create parquet file: %w", d, err)
	}
	p.f = f
	enc, err := s.layout.NewEncoder(f, opts)
	if err != nil {
		return err
	}
	r := bufio.NewReaderSize(p.rowsFile, spillBuffer)
	var (
		block   []byte // encoded rows of the batch; the decoded rows alias it
		ends    []int  // end offset of each row in block
		batch   = make([]parquet.Row, encodeBatch)
		inGroup int
	)
	for read := int64(0); read < p.rows; {
		if err := ctx.Err(); err != nil {
			return err
		}
		block, ends = block[:0], ends[:0]
		for ; read < p.rows && len(ends) < encodeBatch; read++ {
			n, err := binary.ReadUvarint(r)
			if err != nil {
				return fmt.Errorf("partition %s: read spill file: %w", d, err)
			}
			block = slices.Grow(block, int(n))
			if _, err := io.ReadFull(r, block[len(block):len(block)+int(n)]); err != nil {
				return fmt.Errorf("partition %s: read spill file: %w", d, err)
			}
			block = block[:len(block)+int(n)]
			ends = append(ends, len(block))
		}
		start := 0
		for i, end := range ends {
			row, _, err := s.layout.DecodeRow(block[start:end], batch[i])
			if err != nil {
				return fmt.Errorf("partition %s: %w", d, err)
			}
			batch[i], start = row, end
		}
		if err := enc.Write(batch[:len(ends)]); err != nil {
			return fmt.Errorf("partition %s: %w", d, err)
		}
		if inGroup += len(block); inGroup >= s.groupBytes {
			if err := enc.Flush(); err != nil {
				return fmt.Errorf("partition %s: %w", d, err)
			}
			inGroup = 0
		}
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("partition %s: %w", d, err)
	}
	if enc.Rows() != p.rows {
		return fmt.Errorf("partition %s: encoded %d rows of %d", d, enc.Rows(), p.rows)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("partition %s: rewind parquet file: %w", d, err)
	}
	// The rows are in the Parquet file now; free the disk early.
	p.rowsFile.Close()
	if err := os.Remove(p.rowsPath); err != nil {
		return fmt.Errorf("partition %s: remove spill file: %w", d, err)
	}
	return nil
}

// close removes every spill file.
func (s *spill) close() error {
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
