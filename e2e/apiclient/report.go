package apiclient

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// File is a parsed report file.
type File struct {
	Gzipped   bool
	Delimiter rune
	Header    []string
	Rows      [][]string
}

// Column returns the index of the named column (case-insensitive), or -1.
func (f *File) Column(name string) int {
	for i, h := range f.Header {
		if strings.EqualFold(strings.TrimSpace(h), name) {
			return i
		}
	}
	return -1
}

// ParseFile parses a report file body. The format is undocumented, so it is
// sniffed: gzip by its magic bytes 1f 8b (whatever the link's extension),
// then tab or comma delimiters from the header line. The first record is the
// header of projected column names.
func ParseFile(body []byte) (*File, error) {
	f := &File{}
	if len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		f.Gzipped = true
	}
	body = bytes.TrimPrefix(body, []byte("\ufeff")) // a UTF-8 byte-order mark
	first, _, _ := bytes.Cut(body, []byte("\n"))
	switch {
	case bytes.ContainsRune(first, '\t'):
		f.Delimiter = '\t'
	case bytes.ContainsRune(first, ','):
		f.Delimiter = ','
	default:
		if len(bytes.TrimSpace(first)) == 0 {
			return nil, errors.New("report file is empty (no header)")
		}
		f.Delimiter = '\t' // a single column
	}
	r := csv.NewReader(bufio.NewReader(bytes.NewReader(body)))
	r.Comma = f.Delimiter
	r.LazyQuotes = true
	r.FieldsPerRecord = 0 // every record as long as the header
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	f.Header = header
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", len(f.Rows)+1, err)
		}
		f.Rows = append(f.Rows, rec)
	}
	return f, nil
}

// ParseFailureDate parses a FailureDate tolerantly: yyyy-mm-dd, M/d/yyyy,
// mmddyy (as the docs literally say), or a date-time whose date part is
// taken. The result is midnight UTC.
func ParseFailureDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if len(s) == 6 && allDigits(s) {
		if t, err := time.Parse("010206", s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{
		"2006-01-02",
		"1/2/2006",
		"2006-01-02 15:04:05",
		"2006-01-02T15:04:05",
		"2006-01-02 15:04:05.999999999",
		"2006-01-02T15:04:05.999999999",
		time.RFC3339Nano,
		"1/2/2006 15:04:05",
		"1/2/2006 3:04:05 PM",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			y, m, d := t.Date()
			return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
		}
	}
	return time.Time{}, fmt.Errorf("FailureDate %q is not a date", s)
}

// DateForm names the spelling of a FailureDate: "iso" (2026-11-05), "mdy"
// (11/5/2026), "mmddyy" (110526), "datetime" (2026-11-05 00:00:00) or
// "other".
func DateForm(s string) string {
	s = strings.TrimSpace(s)
	switch {
	case len(s) == 6 && allDigits(s):
		return "mmddyy"
	case strings.Contains(s, "/"):
		return "mdy"
	case len(s) == len("2006-01-02") && s[4] == '-':
		return "iso"
	case len(s) > len("2006-01-02") && s[4] == '-':
		return "datetime"
	}
	return "other"
}

// ParseTimestamp parses a date-time column such as FailureDateTime
// ("yyyy-mm-dd hh:mm:ss", no zone, taken as UTC).
func ParseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{
		"2006-01-02 15:04:05.999999999",
		"2006-01-02T15:04:05.999999999",
		time.RFC3339Nano,
		"1/2/2006 15:04:05",
		"1/2/2006 3:04:05 PM",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q not understood", s)
}

// ParseCount parses EventCount: an integer, tolerating the legacy "1.0".
func ParseCount(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("EventCount %q is not an integer", s)
	}
	return int64(f), nil
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
