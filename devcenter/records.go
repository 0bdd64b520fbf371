package devcenter

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"sync"
	"unsafe"
)

// RecordReader reads the records of a report file (see NewReportReader)
// with encoding/csv's rules and results: the same records, the same
// *csv.ParseError values with the same line numbers, the same skipped
// empty lines and CRLF handling. It is faster on the lines that make up
// nearly all of a report: a line without a quote character is one record,
// split at the delimiter, and its fields point into the block the file
// was read into, with no copy (so a field kept keeps its whole block of
// 256 KiB in memory: clone what you keep). A line that holds a quote, with
// whatever lines its quoted fields span, is read by an encoding/csv
// reader. Field counts are not checked.
//
// One difference: a read error other than io.EOF ends the records for
// good, and a partial line before it is dropped, where encoding/csv would
// return that line's fields with the error and read on. Either way the
// ingest fails the download on such an error.
//
// Memory is bounded whatever the file holds: a record longer than the
// maximum (SetMaxRecord, DefaultMaxRecord) is never gathered whole. It is
// a *csv.ParseError wrapping ErrRecordTooLong, returned with the fields of
// the record's first RecordPrefix bytes (the last one cut short); the rest
// of it is read past, and reading goes on at the next line. A quote that
// is never closed thus costs at most the maximum, not the rest of the file.
type RecordReader struct {
	src   io.Reader
	comma byte
	line  int   // physical lines read so far
	err   error // the error that ended the records (io.EOF at the end)
	max   int   // the longest record gathered, in bytes

	// A line longer than max is read past (skipping) after its first
	// RecordPrefix bytes are kept in prefix; long is such a line, or the
	// prefix of a quoted record that ran past max, for Append to return,
	// with its first and last lines.
	skipping       bool
	prefix         []byte
	long           []byte
	longFrom       int
	longTo         int
	haveLongRecord bool

	// The file is read in blocks of size bytes, whose bytes never change
	// once read, because the strings of the records point into them.
	// block[pos:] is unread. A line that runs on into the next block is
	// gathered in joining, a buffer of its own. With ReadAhead, a
	// goroutine reads the blocks and hands them over through blocks.
	block   []byte
	pos     int
	joining []byte
	size    int
	srcErr  error // the error after the bytes in block (io.EOF at the end)
	blocks  chan fetched

	// A line with a quote goes to cr, which reads it, and any lines its
	// quoted fields continue on, through feed, one line per Read.
	quoted bool
	cr     *csv.Reader
	feed   *lineFeed

	recLine int // the line the last record began on
}

// blockSize is the size of a block.
const blockSize = 256 << 10

// DefaultMaxRecord is the default longest record a RecordReader gathers
// (see SetMaxRecord).
const DefaultMaxRecord = 16 << 20

// RecordPrefix is how many bytes of a record longer than the maximum are
// kept, in the fields returned with ErrRecordTooLong.
const RecordPrefix = 4 << 10

// ErrRecordTooLong is the cause of the *csv.ParseError of a record longer
// than the maximum (see SetMaxRecord).
var ErrRecordTooLong = errors.New("record too long")

// errTooLong is readLine's and lineFeed's signal of a line, or quoted
// record, past the maximum.
var errTooLong = errors.New("line too long")

// fetched is a block read from the file, and the error that ended the
// read, if any.
type fetched struct {
	b   []byte
	err error
}

// errStopped is what the records end with when they are read after
// ReadAhead's stop.
var errStopped = errors.New("report reader stopped")

func newRecordReader(src io.Reader, comma rune, size int) *RecordReader {
	r := &RecordReader{src: src, comma: byte(comma), size: size, max: DefaultMaxRecord}
	r.newCSV()
	return r
}

// newCSV gives the reader a new encoding/csv reader for quoted records,
// fed by a new lineFeed (after a record past the maximum broke the last).
func (r *RecordReader) newCSV() {
	r.feed = &lineFeed{r: r}
	r.cr = csv.NewReader(r.feed)
	r.cr.Comma = rune(r.comma)
	r.cr.FieldsPerRecord = -1
	r.cr.LazyQuotes = r.comma == '\t' // TSV exports do not quote; a stray quote is data
}

// SetMaxRecord sets the longest record, in bytes with its line ends, that
// is gathered whole (DefaultMaxRecord by default, at least RecordPrefix):
// a longer one is ErrRecordTooLong. Call it before reading.
func (r *RecordReader) SetMaxRecord(n int) { r.max = max(n, RecordPrefix) }

// Read returns the next record in a new slice, or io.EOF after the last.
// A record that breaks the quoting rules is a *csv.ParseError, after which
// reading goes on with the next record; any other error ends the file.
func (r *RecordReader) Read() ([]string, error) { return r.Append(nil) }

// Append is Read, appending the record's fields to dst.
func (r *RecordReader) Append(dst []string) ([]string, error) {
	if line, ok := r.Unsplit(); ok {
		return AppendFields(dst, line, r.comma), nil
	}
	if r.haveLongRecord {
		return r.tooLong(dst)
	}
	if r.quoted {
		return r.readQuoted(dst)
	}
	return dst, r.err
}

// tooLong returns the record past the maximum that Unsplit or readQuoted
// met: the fields of its prefix and a *csv.ParseError.
func (r *RecordReader) tooLong(dst []string) ([]string, error) {
	r.haveLongRecord = false
	r.recLine = r.longFrom
	dst = AppendFields(dst, string(r.long), r.comma)
	r.long = nil
	return dst, &csv.ParseError{StartLine: r.longFrom, Line: r.longTo, Column: 1, Err: ErrRecordTooLong}
}

// Unsplit returns the next record unsplit, if it is a line without a
// quote character: its fields are the line's parts between delimiters (see
// AppendFields). Otherwise ok is false, and the next record (one with
// quotes), or the error or io.EOF that ends the file, is left for Append.
// Unsplit lets a caller split lines in another goroutine, or look at one
// field only (Field).
func (r *RecordReader) Unsplit() (line string, ok bool) {
	for !r.quoted && !r.haveLongRecord && r.err == nil {
		b, err := r.readLine()
		if errors.Is(err, errTooLong) {
			r.haveLongRecord, r.long, r.longFrom, r.longTo = true, b, r.line, r.line
			break
		}
		if err != nil && !(errors.Is(err, io.EOF) && len(b) > 0) {
			r.err = err // a partial line before another error is dropped
			break
		}
		if bytes.IndexByte(b, '"') >= 0 {
			r.quoted = true
			r.feed.pending = append(r.feed.pending[:0], b...)
			break
		}
		if err != nil {
			r.err = err
		}
		// As encoding/csv: CRLF ends a line like LF, a CR before the end
		// of the file is dropped, and an empty line is no record.
		b = bytes.TrimSuffix(b, []byte{'\n'})
		b = bytes.TrimSuffix(b, []byte{'\r'})
		if len(b) > 0 {
			r.recLine = r.line
			return unsafe.String(&b[0], len(b)), true // the block's bytes never change
		}
	}
	return "", false
}

// Comma returns the delimiter.
func (r *RecordReader) Comma() byte { return r.comma }

// AppendFields appends the fields of a line from Unsplit, split at comma,
// to dst. The fields share the line's memory.
func AppendFields(dst []string, line string, comma byte) []string {
	for {
		i := strings.IndexByte(line, comma)
		if i < 0 {
			return append(dst, line)
		}
		dst, line = append(dst, line[:i]), line[i+1:]
	}
}

// Field returns field n (from 0) of a line from Unsplit, and false if the
// line has no such field.
func Field(line string, comma byte, n int) (string, bool) {
	if n < 0 {
		return "", false
	}
	for range n {
		i := strings.IndexByte(line, comma)
		if i < 0 {
			return "", false
		}
		line = line[i+1:]
	}
	if i := strings.IndexByte(line, comma); i >= 0 {
		line = line[:i]
	}
	return line, true
}

// Line returns the line on which the last record began, counting from 1.
func (r *RecordReader) Line() int { return r.recLine }

// readLine returns the next line with its line end, or what is left
// before the read error that ends the file, and counts it. The line's
// bytes never change. A line longer than r.max is not gathered: its first
// RecordPrefix bytes are returned, in a new slice, with errTooLong, once
// the rest of it has been read past.
func (r *RecordReader) readLine() ([]byte, error) {
	for {
		rest := r.block[r.pos:]
		i := bytes.IndexByte(rest, '\n')
		n := len(rest)
		if i >= 0 {
			n = i + 1
		}
		switch {
		case r.skipping: // past the maximum: drop bytes up to the line end
			r.pos += n
			if i >= 0 {
				r.line++
				r.skipping = false
				return r.prefix, errTooLong
			}
		case len(r.joining)+n > r.max:
			k := min(len(r.joining), RecordPrefix)
			r.prefix = append(bytes.Clone(r.joining[:k]), rest[:min(n, RecordPrefix-k)]...)
			r.joining, r.skipping = nil, true
			continue // read past the line, from r.pos
		case i >= 0:
			line := rest[:n]
			if r.joining != nil {
				line, r.joining = append(r.joining, line...), nil
			}
			r.pos += n
			r.line++
			return line, nil
		case r.joining != nil || n > 0:
			r.joining = append(r.joining, rest...) // the line runs on
			r.pos += n
		}
		if r.srcErr != nil {
			if r.skipping {
				r.skipping = false
				r.line++
				if !errors.Is(r.srcErr, io.EOF) {
					return nil, r.srcErr
				}
				return r.prefix, errTooLong
			}
			line := r.joining
			r.joining, r.pos = nil, len(r.block)
			if len(line) > 0 {
				r.line++
			}
			return line, r.srcErr
		}
		next := r.next()
		r.block, r.pos, r.srcErr = next.b, 0, next.err
	}
}

// next returns the next block of the file.
func (r *RecordReader) next() fetched {
	if r.blocks == nil {
		return r.fetch()
	}
	if b, ok := <-r.blocks; ok {
		return b
	}
	return fetched{err: errStopped}
}

// maxEmptyReads is how many reads in a row may return nothing before the
// file counts as broken (io.ErrNoProgress), as in bufio.
const maxEmptyReads = 100

// fetch reads a new block from the file: size bytes, or fewer before an
// error.
func (r *RecordReader) fetch() fetched {
	b := make([]byte, r.size)
	n, empty := 0, 0
	var err error
	for n < len(b) && err == nil {
		var k int
		k, err = r.src.Read(b[n:])
		n += k
		switch {
		case k > 0:
			empty = 0
		case err == nil:
			if empty++; empty == maxEmptyReads {
				err = io.ErrNoProgress
			}
		}
	}
	return fetched{b[:n], err}
}

// ReadAhead makes a goroutine of its own read the file, a few blocks ahead
// of the records, so that reading (the download, its decompression)
// overlaps parsing. Call stop when done with the records: the goroutine
// ends once stopped and its read returns, so close the file after stop
// if a read may hang. Call ReadAhead once, before any record is read.
func (r *RecordReader) ReadAhead() (stop func()) {
	if r.blocks != nil {
		panic("devcenter: ReadAhead called twice") // two goroutines would read the file at once
	}
	blocks, done := make(chan fetched, 2), make(chan struct{})
	r.blocks = blocks
	go func() {
		defer close(blocks)
		for {
			b := r.fetch()
			select {
			case blocks <- b:
			case <-done:
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// readQuoted reads the record that starts at the pending quoted line with
// cr, and puts its line numbers in the file's terms.
func (r *RecordReader) readQuoted(dst []string) ([]string, error) {
	r.quoted = false
	first := r.line
	shift := r.line - (r.feed.lines + 1) // the pending line is cr's next
	r.feed.fed = len(r.feed.pending)
	rec, err := r.cr.Read()
	if errors.Is(err, errTooLong) {
		// The record ran past the maximum: keep its prefix, and start a
		// new csv reader at the next line (this one's state is broken).
		var head []byte
		for i, f := range rec {
			if i > 0 {
				head = append(head, r.comma)
			}
			if head = append(head, f[:min(len(f), RecordPrefix-len(head))]...); len(head) >= RecordPrefix {
				break
			}
		}
		r.newCSV()
		r.long, r.longFrom, r.longTo = head, first, r.line
		return r.tooLong(dst)
	}
	if len(rec) > 0 {
		line, _ := r.cr.FieldPos(0)
		r.recLine = line + shift
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		pe.StartLine += shift
		pe.Line += shift
	}
	if err != nil && !errors.As(err, &pe) {
		r.err = err
	}
	return append(dst, rec...), err
}

// lineFeed gives cr the pending line, then further lines of the file, at most
// one line per Read, so that cr never reads beyond the record it parses.
type lineFeed struct {
	r       *RecordReader
	pending []byte
	lines   int // lines given to cr
	fed     int // bytes of the record being read, its first line included
	err     error
}

// Read feeds cr; it fails with errTooLong once the record being read
// runs past the maximum, so that cr never gathers more.
func (f *lineFeed) Read(p []byte) (int, error) {
	if len(f.pending) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		line, err := f.r.readLine()
		if f.fed += len(line); errors.Is(err, errTooLong) || f.fed > f.r.max {
			f.err = errTooLong
			return 0, f.err
		}
		f.pending = append(f.pending[:0], line...) // a copy: pending is reused, and a block's bytes must never change
		f.err = err
		if len(f.pending) == 0 {
			return 0, err
		}
	}
	n := copy(p, f.pending)
	if n == len(f.pending) && (f.pending[n-1] == '\n' || f.err != nil) {
		f.lines++
	}
	f.pending = f.pending[n:]
	return n, nil
}
