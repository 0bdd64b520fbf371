package devcenter

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
)

// RecordReader reads the records of a report file (see NewReportReader)
// with encoding/csv's rules and results: the same records, the same
// *csv.ParseError values with the same line numbers, the same skipped
// empty lines and CRLF handling. It is faster on the lines that make up
// nearly all of a report: a line without a quote character is one record,
// split at the delimiter, and the fields of many such lines share one
// string. A line that holds a quote, with whatever lines its quoted fields
// span, is read by an encoding/csv reader. Field counts are not checked.
//
// One difference: a read error other than io.EOF ends the records for
// good, and a partial line before it is dropped, where encoding/csv would
// return that line's fields with the error and read on. Either way the
// ingest fails the download on such an error.
type RecordReader struct {
	br    *bufio.Reader
	comma byte
	line  int   // physical lines read from br so far
	err   error // the read error that ended the file (io.EOF at the end)

	// Lines without quotes, read ahead: chunk holds them back to back,
	// ends[i] is where line i ends in it, and lines[i] its line number.
	chunk string
	ends  []int
	lines []int
	next  int // the next line of the chunk to return
	raw   []byte
	long  []byte // a line longer than br's buffer

	// A line with a quote goes to cr, which reads it, and any lines its
	// quoted fields continue on, through feed, one line per Read.
	quoted bool
	cr     *csv.Reader
	feed   lineFeed

	recLine int // the line the last record began on
}

// chunkBytes is how many bytes of lines a chunk gathers before it becomes
// one string.
const chunkBytes = 64 << 10

func newRecordReader(br *bufio.Reader, comma rune) *RecordReader {
	r := &RecordReader{br: br, comma: byte(comma)}
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
// AppendFields). Otherwise ok is false and nothing is read: the next
// record, one with quotes, or the error or io.EOF, is Append's. Unsplit
// lets a caller split lines in another goroutine, or look at one field
// only (Field).
func (r *RecordReader) Unsplit() (line string, ok bool) {
	if r.next == len(r.ends) && !r.quoted && r.err == nil {
		r.fill()
	}
	if r.next == len(r.ends) {
		return "", false
	}
	start := 0
	if r.next > 0 {
		start = r.ends[r.next-1]
	}
	line = r.chunk[start:r.ends[r.next]]
	r.recLine = r.lines[r.next]
	r.next++
	return line, true
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
// line has fewer fields.
func Field(line string, comma byte, n int) (string, bool) {
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

// fill reads lines into a new chunk until it has chunkBytes of them, a
// line with a quote (left for cr), or the end of the file.
func (r *RecordReader) fill() {
	r.raw, r.ends, r.lines, r.next = r.raw[:0], r.ends[:0], r.lines[:0], 0
	for len(r.raw) < chunkBytes {
		line, err := r.readLine()
		if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
			r.err = err // a partial line before another error is dropped
			break
		}
		if bytes.IndexByte(line, '"') >= 0 {
			r.quoted = true
			r.feed.pending = append(r.feed.pending[:0], line...)
			break
		}
		// As encoding/csv: CRLF ends a line like LF, a CR before the end
		// of the file is dropped, and an empty line is no record.
		line = bytes.TrimSuffix(line, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) > 0 {
			r.raw = append(r.raw, line...)
			r.ends = append(r.ends, len(r.raw))
			r.lines = append(r.lines, r.line)
		}
		if err != nil {
			r.err = err
			break
		}
	}
	r.chunk = string(r.raw)
}

// readLine reads one line from br, with its line end, and counts it. The
// line is valid until the next read.
func (r *RecordReader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		r.long = append(r.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = r.br.ReadSlice('\n')
			r.long = append(r.long, line...)
		}
		line = r.long
	}
	if len(line) > 0 {
		r.line++
	}
	return line, err
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

// lineFeed gives cr the pending line, then further lines of br, at most
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
		f.pending = append(f.pending[:0], line...)
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
