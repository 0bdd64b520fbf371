package devcenter

import (
	"encoding/csv"
	"errors"
	"io"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// FuzzRecordReaderMatchesCSV: on any input, with any of the sniffed
// delimiters and any buffer size, RecordReader returns what encoding/csv
// (configured as reports need it) returns: the same records, the same line
// per record, and the same parse errors with the same positions.
//
//	go test -run '^$' -fuzz FuzzRecordReaderMatchesCSV -fuzztime 30s ./devcenter/
func FuzzRecordReaderMatchesCSV(f *testing.F) {
	many := strings.Repeat("2026-11-20\tdev-1\t3\n", 5000) // more than a chunk
	for _, s := range []string{
		"a\tb\tc\nd\te\tf\n",
		"a,b\r\nc,d\r\n",
		"a\tb\n\n\r\nc\td",
		"a\tb\r",
		"a\tb\r\r\n\"x\"\n",
		"\"quoted\ttab\"\tx\ny\tz\n",
		"\"multi\nline\r\nfield\"\tx\nnext\tline\n",
		"a,\"b\"\"c\",d\ne,f\n",
		"a,\"bad\"quote,c\nd,e\n",
		"a,b\"c,d\nnext,line\n",
		"x\t\"unterminated\nstill\n",
		"x,\"unterminated\nstill\n",
		"\"a\"\"\n\"\"b\"\n\"\"\"\n",
		";;\n|\n\"\"\n",
		many + "\"q\tq\"\tz\n" + many,
		strings.Repeat("long", 5000) + "\t\"x\"\n" + strings.Repeat("y", 70000) + "\n",
	} {
		f.Add(s, byte(0), false)
		f.Add(s, byte(1), true)
		f.Add(s, byte(4), false) // read ahead
		f.Add(s, byte(5), true)
	}
	f.Fuzz(func(t *testing.T, data string, delim byte, small bool) {
		comma := []rune{'\t', ',', ';', '|'}[delim%4]
		want := csv.NewReader(strings.NewReader(data))
		want.Comma, want.FieldsPerRecord, want.LazyQuotes = comma, -1, comma == '\t'
		var src io.Reader = strings.NewReader(data)
		size := 64 << 10
		if small { // lines longer than a block, read a byte at a time
			src, size = iotest.OneByteReader(src), 16
		}
		got := newRecordReader(src, comma, size)
		if delim&4 != 0 {
			stop := got.ReadAhead()
			defer stop()
		}
		for i := 0; ; i++ {
			wrec, werr := want.Read()
			// Odd records are taken through Unsplit when they can be,
			// and split with AppendFields; Field must agree with it.
			var grec []string
			var gerr error
			line, unsplit := "", false
			if i%2 == 1 {
				line, unsplit = got.Unsplit()
			}
			if unsplit {
				grec = AppendFields(nil, line, got.Comma())
				for n := range len(grec) + 1 {
					if f, ok := Field(line, got.Comma(), n); ok != (n < len(grec)) || ok && f != grec[n] {
						t.Fatalf("record %d: Field %d = %q, %v; fields %q", i, n, f, ok, grec)
					}
				}
			} else {
				grec, gerr = got.Read()
			}
			if !reflect.DeepEqual(werr, gerr) {
				t.Fatalf("record %d: error %v, want %v", i, gerr, werr)
			}
			if !slices.Equal(wrec, grec) {
				t.Fatalf("record %d: %q, want %q", i, grec, wrec)
			}
			if werr == nil {
				if line, _ := want.FieldPos(0); got.Line() != line {
					t.Fatalf("record %d: line %d, want %d", i, got.Line(), line)
				}
			}
			if werr == io.EOF {
				return
			}
			if i > len(data) {
				t.Fatal("more records than bytes")
			}
		}
	})
}

// TestRecordReaderReadError: an error from the download ends the records
// with that error (not as a bad record), after the complete lines before
// it; quoted or not.
func TestRecordReaderReadError(t *testing.T) {
	boom := errors.New("connection reset")
	for _, data := range []string{"a\tb\nc\td\ne\t", "a\tb\nc\td\n\"e\t"} {
		r := newRecordReader(io.MultiReader(strings.NewReader(data), iotest.ErrReader(boom)), '\t', blockSize)
		var got [][]string
		var err error
		for range 10 {
			var rec []string
			if rec, err = r.Read(); err != nil {
				break
			}
			got = append(got, rec)
		}
		if !errors.Is(err, boom) || len(got) != 2 || got[1][1] != "d" {
			t.Errorf("%q: records %q, then %v; want two, then %v", data, got, err, boom)
		}
		if _, again := r.Read(); !errors.Is(again, boom) {
			t.Errorf("%q: read after the error: %v", data, again)
		}
	}
}

// TestReadAheadStops: after stop, and the file's close ending a read that
// hung, the reading goroutine is gone.
func TestReadAheadStops(t *testing.T) {
	before := runtime.NumGoroutine()
	pr, pw := io.Pipe()
	go pw.Write([]byte(strings.Repeat("a\tb\n", 100))) // then the pipe hangs
	r := newRecordReader(pr, '\t', 64)
	stop := r.ReadAhead()
	if rec, err := r.Read(); err != nil || len(rec) != 2 {
		t.Fatalf("first record %q, %v", rec, err)
	}
	stop()
	pr.Close()
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before", runtime.NumGoroutine(), before)
		}
	}
}

// stuckReader returns nothing, forever, and no error.
type stuckReader struct{}

func (stuckReader) Read([]byte) (int, error) { return 0, nil }

// TestRecordReaderNoProgress: a source that returns nothing and no error
// ends the records with io.ErrNoProgress instead of spinning.
func TestRecordReaderNoProgress(t *testing.T) {
	r := newRecordReader(io.MultiReader(strings.NewReader("a\tb\n"), stuckReader{}), '\t', 64)
	if rec, err := r.Read(); err != nil || len(rec) != 2 {
		t.Fatalf("first record %q, %v", rec, err)
	}
	if _, err := r.Read(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("err = %v, want io.ErrNoProgress", err)
	}
}
