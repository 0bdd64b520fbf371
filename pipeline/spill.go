package pipeline

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/hdc-export/hdc-export/schema"
)

// tempPrefix names the runner's spill folders inside Config.TempDir.
const tempPrefix = "hdc-export-"

// staleTemp is how old a spill folder must be before a later run removes it
// as a crash leftover (far inside the retention window).
const staleTemp = 6 * time.Hour

// spill splits a run's rows by date into one Parquet file per partition in
// a private temp folder, so a report of any size is never held in memory.
type spill struct {
	dir    string
	layout *schema.Layout
	opts   schema.EncoderOptions
	parts  map[Date]*spillPart
	batch  []parquet.Row
	// buffered is the sum of the parts' buffered rows.
	buffered int
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

type spillPart struct {
	path     string
	f        *os.File
	enc      *schema.Encoder
	buffered int // rows in the encoder's open row group
}

// maxBufferedRows bounds the rows held in open row groups across all of a
// run's partitions; past it, the partition holding the most is flushed as
// a row group. This bounds memory whatever the report's size or date
// spread: a report ordered by date (the usual case) still gets full-size
// row groups, one spread evenly over many dates gets smaller ones.
const maxBufferedRows = 65536

func newSpill(tempDir string, layout *schema.Layout, opts schema.EncoderOptions) (*spill, error) {
	if tempDir != "" {
		if err := os.MkdirAll(tempDir, 0o700); err != nil {
			return nil, fmt.Errorf("create temp folder: %w", err)
		}
	}
	dir, err := os.MkdirTemp(tempDir, tempPrefix)
	if err != nil {
		return nil, fmt.Errorf("create spill folder: %w", err)
	}
	return &spill{dir: dir, layout: layout, opts: opts, parts: map[Date]*spillPart{}, batch: make([]parquet.Row, 1),
		quarantined: map[Date]*quarantineFile{}}, nil
}

// write appends one row to date d's file.
func (s *spill) write(d Date, row parquet.Row) error {
	p, ok := s.parts[d]
	if !ok {
		path := filepath.Join(s.dir, d.String()+".parquet")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
		if err != nil {
			return fmt.Errorf("create spill file: %w", err)
		}
		enc, err := s.layout.NewEncoder(f, s.opts)
		if err != nil {
			f.Close()
			return err
		}
		p = &spillPart{path: path, f: f, enc: enc}
		s.parts[d] = p
	}
	s.batch[0] = row
	if err := p.enc.Write(s.batch); err != nil {
		return err
	}
	p.buffered++
	s.buffered++
	if s.buffered > maxBufferedRows {
		return s.flushLargest()
	}
	return nil
}

// flushLargest writes out the largest open row group.
func (s *spill) flushLargest() error {
	var big *spillPart
	for _, p := range s.parts {
		if big == nil || p.buffered > big.buffered {
			big = p
		}
	}
	if err := big.enc.Flush(); err != nil {
		return err
	}
	s.buffered -= big.buffered
	big.buffered = 0
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

// finish closes every partition's encoder and returns the dates in order.
// Each file is then positioned at its start.
func (s *spill) finish() ([]Date, error) {
	dates := make([]Date, 0, len(s.parts))
	for d, p := range s.parts {
		if err := p.enc.Close(); err != nil {
			return nil, fmt.Errorf("partition %s: %w", d, err)
		}
		if _, err := p.f.Seek(0, 0); err != nil {
			return nil, fmt.Errorf("partition %s: %w", d, err)
		}
		dates = append(dates, d)
	}
	slices.Sort(dates)
	return dates, nil
}

// close removes every spill file.
func (s *spill) close() error {
	for _, p := range s.parts {
		p.f.Close()
	}
	for _, q := range s.quarantined {
		q.f.Close()
	}
	return os.RemoveAll(s.dir)
}
