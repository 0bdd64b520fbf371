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
type RecordReader struct {
	src   io.Reader
	comma byte
	line  int   // physical lines read so far
	err   error // the error that ended the records (io.EOF at the end)

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
	feed   lineFeed

	recLine int // the line the last record began on
}

// blockSize is the size of a block.
const blockSize = 256 << 10

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
	r := &RecordReader{src: src, comma: byte(comma), size: size}
	r.feed.r = r
	r.cr = csv.NewReader(&r.feed)
	r.cr.Comma = comma
	r.cr.FieldsPerRecord = -1
	r.cr.LazyQuotes = comma == '\t' // TSV exports do not quote; a stray quote is data
	return r
}

// Read returns the next record in a new slice, or io.EOF after the last.
// A record that breaks the quoting rules is a *csv.ParseError, after which
// reading goes on with the next record; any other error ends the file.
func (r *RecordReader) Read() ([]string, error) { return r.Append(nil) }

// Append is Read, appending the record's fields to dst.
func (r *RecordReader) Append(dst []string) ([]string, error) {
	if line, ok := r.Unsplit(); ok {
		return AppendFields(dst, line, r.comma), nil
	}
	if r.quoted {
		return r.readQuoted(dst)
	}
	return dst, r.err
}

// Unsplit returns the next record unsplit, if it is a line without a
// quote character: its fields are the line's parts between delimiters (see
// AppendFields). Otherwise ok is false, and the next record (one with
// quotes), or the error or io.EOF that ends the file, is left for Append.
// Unsplit lets a caller split lines in another goroutine, or look at one
// field only (Field).
func (r *RecordReader) Unsplit() (line string, ok bool) {
	for !r.quoted && r.err == nil {
		b, err := r.readLine()
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
// bytes never change.
func (r *RecordReader) readLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(r.block[r.pos:], '\n'); i >= 0 {
			end := r.pos + i + 1
			line := r.block[r.pos:end]
			if r.joining != nil {
				line, r.joining = append(r.joining, line...), nil
			}
			r.pos = end
			r.line++
			return line, nil
		}
		rest := r.block[r.pos:]
		if r.joining != nil || len(rest) > 0 {
			r.joining = append(r.joining, rest...) // the line runs on
		}
		if r.srcErr != nil {
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
	shift := r.line - (r.feed.lines + 1) // the pending line is cr's next
	rec, err := r.cr.Read()
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
	err     error
}

func (f *lineFeed) Read(p []byte) (int, error) {
	if len(f.pending) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		line, err := f.r.readLine()
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
