package devcenter

import (
	"encoding/csv"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// TestRecordReaderTooLong: a line, or a quoted record, longer than the
// maximum is one *csv.ParseError wrapping ErrRecordTooLong, with its first
// and last lines and the fields of its prefix; reading goes on at the next
// line, with the right line numbers. An unterminated quote costs one
// record of at most the maximum, not the rest of the file.
func TestRecordReaderTooLong(t *testing.T) {
	const max = 8 << 10
	long := strings.Repeat("x", 3*max)
	quoted := "q\t\"" + strings.Repeat("y", max/4) + "\n" + strings.Repeat("z\n", max/2) // never closed
	for _, comma := range []rune{'\t', ','} {
		sep := string(comma)
		data := "a" + sep + "b\n" + "2026-11-20" + sep + long + "\n" + "c" + sep + "d\n" + long + // line 4 ends the file
			"\n" + "e" + sep + "f\n"
		if comma == ',' {
			data += strings.ReplaceAll(quoted, "\t", ",")
		}
		for _, size := range []int{16, 1000, blockSize} {
			for _, ahead := range []bool{false, true} {
				var src io.Reader = strings.NewReader(data)
				if size == 16 {
					src = iotest.HalfReader(src)
				}
				r := newRecordReader(src, comma, size)
				r.SetMaxRecord(max)
				if ahead {
					defer r.ReadAhead()()
				}
				type rec struct {
					fields   []string
					from, to int
					long     bool
				}
				var got []rec
				for {
					f, err := r.Read()
					if err == io.EOF {
						break
					}
					var pe *csv.ParseError
					switch {
					case errors.As(err, &pe) && errors.Is(err, ErrRecordTooLong):
						got = append(got, rec{f, pe.StartLine, pe.Line, true})
						if r.Line() != pe.StartLine {
							t.Errorf("Line() = %d, want %d", r.Line(), pe.StartLine)
						}
					case err != nil:
						t.Fatalf("comma %q size %d: %v", comma, size, err)
					default:
						got = append(got, rec{f, r.Line(), r.Line(), false})
					}
				}
				want := []rec{{[]string{"a", "b"}, 1, 1, false}, {nil, 2, 2, true}, {[]string{"c", "d"}, 3, 3, false},
					{nil, 4, 4, true}, {[]string{"e", "f"}, 5, 5, false}}
				if comma == ',' {
					// The quoted record's lines, up to the one past the
					// maximum; the lines after it are records again.
					cut := 6 + (max-(len(quoted)-max))/2 + 1
					want = append(want, rec{nil, 6, cut, true})
					for l := cut + 1; l <= 6+max/2; l++ {
						want = append(want, rec{[]string{"z"}, l, l, false})
					}
				}
				if len(got) != len(want) {
					t.Fatalf("comma %q size %d: %d records, want %d", comma, size, len(got), len(want))
				}
				for i, g := range got {
					w := want[i]
					if g.long != w.long || g.from != w.from || g.to != w.to || (!w.long && strings.Join(g.fields, "|") != strings.Join(w.fields, "|")) {
						t.Fatalf("comma %q size %d: record %d = %v..%v long %v %.20q, want %v..%v long %v", comma, size, i, g.from, g.to, g.long, g.fields, w.from, w.to, w.long)
					}
					if g.long && (len(strings.Join(g.fields, sep)) > RecordPrefix || len(g.fields) == 0) {
						t.Errorf("record %d: prefix of %d bytes", i, len(strings.Join(g.fields, sep)))
					}
				}
				if got[1].fields[0] != "2026-11-20" {
					t.Errorf("the prefix lost the first field: %.30q", got[1].fields)
				}
			}
		}
	}
}

// endlessLine is n bytes of one line without a line end, opening with a
// quote if quoted, read without holding them.
type endlessLine struct {
	n      int64
	quoted bool
}

func (e *endlessLine) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), e.n))
	for i := range k {
		p[i] = 'x'
	}
	if e.quoted {
		p[0], e.quoted = '"', false
	}
	e.n -= int64(k)
	return k, nil
}

// TestRecordReaderTooLongBounded: a 256 MiB line, quoted or not, is read
// past with the heap bounded by a few times the maximum, not the line.
func TestRecordReaderTooLongBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 512 MiB")
	}
	for _, quoted := range []bool{false, true} {
		src := io.MultiReader(strings.NewReader("h1,h2\n"), &endlessLine{n: 256 << 20, quoted: quoted}, strings.NewReader("\na,b\n"))
		r := newRecordReader(src, ',', blockSize)
		r.SetMaxRecord(1 << 20)
		defer r.ReadAhead()()
		var peak uint64
		var ms runtime.MemStats
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, err := r.Read(); err == io.EOF {
					return
				}
			}
		}()
	wait:
		for {
			select {
			case <-done:
				break wait
			default:
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
				runtime.Gosched()
			}
		}
		if peak > 64<<20 {
			t.Errorf("quoted %v: heap in use peaked at %d MiB", quoted, peak>>20)
		}
	}
}
