package emulator

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// FileShapes change what report files hold, so that tests can show how a
// client copes with files the reference does not rule out: another reading
// of LastNDays, a line of any length, a body of random bytes, undocumented
// columns, a header-only or date-shifted newer run. The zero value changes
// nothing. Shapes apply to the runs at or after From, so that an older run
// can stay as it was and a newer one change.
type FileShapes struct {
	// From is the first run time the shapes apply to; zero means every run.
	From time.Time
	// CoverageEndsOnRunDay reads LastNDays as the N days ending with the
	// run's day instead of the N days before it (a Last7Days run on the
	// 21st covers the 15th..21st). The run's own day then holds as many
	// rows as the day before it does in the documented reading.
	CoverageEndsOnRunDay bool
	// HugeLine, if positive, puts one line of that many bytes ('x', no
	// delimiter) right after the header, before the rows. It is streamed:
	// the emulator never holds it. HugeLineQuoted opens it with a quote
	// that is never closed.
	HugeLine       int64
	HugeLineQuoted bool
	// RandomBody, if positive, replaces the rows with that many random
	// bytes (a pure function of the seed and the run), streamed.
	RandomBody int64
	// ExtraColumns adds that many undocumented columns, Extra1..ExtraN,
	// each row holding a short value in each.
	ExtraColumns int
	// Empty makes the files header-only.
	Empty bool
	// ShiftDays moves every row's FailureDate by that many days (negative:
	// earlier), as if the service had dated the run wrongly.
	ShiftDays int
}

// validate checks the shapes.
func (s FileShapes) validate() error {
	if s.HugeLine < 0 || s.RandomBody < 0 || s.ExtraColumns < 0 {
		return fmt.Errorf("HugeLine %d, RandomBody %d and ExtraColumns %d must not be negative", s.HugeLine, s.RandomBody, s.ExtraColumns)
	}
	if s.HugeLine > 0 && s.RandomBody > 0 {
		return fmt.Errorf("HugeLine and RandomBody exclude each other")
	}
	return nil
}

// shapes returns the shapes that apply to the run of spec, or the zero
// value.
func (e *Emulator) shapes(spec fileSpec) FileShapes {
	s := e.opts.Shapes
	if !s.From.IsZero() && spec.key.run < s.From.Unix() {
		return FileShapes{}
	}
	return s
}

// coveredDays returns the first and last failure day of spec's run, and
// the age to generate day's rows at (see rowsAtAge).
func (e *Emulator) coveredDays(spec fileSpec) (first, last, ageShift int64) {
	if e.shapes(spec).CoverageEndsOnRunDay {
		return spec.runDay - int64(spec.period) + 1, spec.runDay, 1
	}
	return spec.runDay - int64(spec.period), spec.runDay - 1, 0
}

// shapeHeader adds the extra columns to a header.
func (e *Emulator) shapeHeader(spec fileSpec, h []string) []string {
	for i := range e.shapes(spec).ExtraColumns {
		h = append(h, "Extra"+strconv.Itoa(i+1))
	}
	return h
}

// shapeRow returns emit, adding the extra columns' values to each row.
func (e *Emulator) shapeRow(spec fileSpec, emit func([]string) error) func([]string) error {
	n := e.shapes(spec).ExtraColumns
	if n == 0 {
		return emit
	}
	var row []string
	return func(r []string) error {
		row = append(row[:0], r...)
		for i := range n {
			row = append(row, "x"+strconv.Itoa(i%10))
		}
		return emit(row)
	}
}

// streamed reports whether spec's file is too large, or too odd, to
// generate and cache whole, and is written as it is served.
func (e *Emulator) streamed(spec fileSpec) bool {
	s := e.shapes(spec)
	return s.HugeLine > 0 || s.RandomBody > 0
}

// serveStreamed writes the file of spec, header first, then the huge line
// and the rows, or the random bytes, without holding them: uncompressed
// with a Content-Length, or gzip-compressed without one.
func (e *Emulator) serveStreamed(w http.ResponseWriter, r *http.Request, spec fileSpec) {
	s := e.shapes(spec)
	var head, rows bytes.Buffer
	cw := csv.NewWriter(&head)
	cw.Comma = e.opts.Delimiter
	cw.Write(e.shapeHeader(spec, spec.query.header()))
	cw.Flush()
	var body io.Reader
	if s.HugeLine > 0 {
		rw := csv.NewWriter(&rows)
		rw.Comma = e.opts.Delimiter
		if err := spec.query.run(e.reportRows(spec), e.shapeRow(spec, rw.Write)); err != nil {
			writeBlobError(w, http.StatusInternalServerError, blobInternal, err.Error())
			return
		}
		rw.Flush()
		first := "x"
		if s.HugeLineQuoted {
			first = `"`
		}
		line := io.MultiReader(bytes.NewReader([]byte(first)), io.LimitReader(repeatByte('x'), s.HugeLine-1), bytes.NewReader([]byte("\n")))
		body = io.MultiReader(&head, line, &rows)
	} else {
		seed := hashOf(e.seed, tagRunFailure, uint64(spec.key.reportID), uint64(spec.key.run))
		body = io.MultiReader(&head, io.LimitReader(randomBytes{rand.NewChaCha8(seedBytes(seed))}, s.RandomBody))
	}
	size := int64(head.Len()) + int64(rows.Len()) + s.HugeLine + 1
	if s.RandomBody > 0 {
		size = int64(head.Len()) + s.RandomBody
	}
	w, answered := e.blobFault(w, r)
	if answered {
		return
	}
	w.Header().Set("x-ms-blob-type", "BlockBlob")
	if !e.opts.Gzip {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		io.Copy(w, body)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	zw := gzip.NewWriter(bw)
	io.Copy(zw, body)
	zw.Close()
	bw.Flush()
}

// repeatByte reads as an endless run of one byte.
type repeatByte byte

func (b repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// randomBytes reads as an endless stream from a ChaCha8 generator.
type randomBytes struct{ c *rand.ChaCha8 }

func (r randomBytes) Read(p []byte) (int, error) { return r.c.Read(p) }

// seedBytes spreads a 64-bit seed into a ChaCha8 seed.
func seedBytes(s uint64) (b [32]byte) {
	for i := range 4 {
		v := s + uint64(i)*0x9e3779b97f4a7c15
		for j := range 8 {
			b[i*8+j] = byte(v >> (8 * j))
		}
	}
	return b
}
