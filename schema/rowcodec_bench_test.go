package schema

import (
	"strconv"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// BenchmarkDecodeRow measures decoding spilled rows of every IHV column
// into parquet.Rows, per value (go test -run '^$' -bench DecodeRow ./schema/).
func BenchmarkDecodeRow(b *testing.B) {
	l, rec := ihvRecord(b)
	var buf []byte
	for range 512 {
		var err error
		buf, _, err = l.AppendRow(buf, rec, 1)
		if err != nil {
			b.Fatal(err)
		}
	}
	rows := make([]parquet.Row, 512)
	for b.Loop() {
		src := buf
		for i := range rows {
			var n int
			rows[i], n, _ = l.DecodeRow(src, rows[i])
			src = src[n:]
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*512*len(rec)), "ns/value")
}

// BenchmarkParseTimestamp measures the common timestamp form (go test -run
// '^$' -bench ParseTimestamp ./schema/).
func BenchmarkParseTimestamp(b *testing.B) {
	for b.Loop() {
		if _, err := ParseTimestamp("2026-11-01 10:00:00"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendRow measures typing a record of every IHV column into the
// row codec, per value (go test -run '^$' -bench AppendRow ./schema/).
func BenchmarkAppendRow(b *testing.B) {
	l, rec := ihvRecord(b)
	var buf []byte
	for b.Loop() {
		var err error
		if buf, _, err = l.AppendRow(buf[:0], rec, 2); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rec)), "ns/value")
}

// ihvRecord returns a layout of every IHV column and a record of typical
// values for it.
func ihvRecord(b *testing.B) (*Layout, []string) {
	var header []string
	for _, f := range IHVDriver.Columns {
		header = append(header, f.Source)
	}
	l, err := Bind(IHVDriver, header)
	if err != nil {
		b.Fatal(err)
	}
	rec := make([]string, len(header))
	for i, f := range l.Fields {
		switch f.Type {
		case String:
			rec[i] = "some-string-value-" + strconv.Itoa(i)
		case Int64:
			rec[i] = "12345"
		case Float64:
			rec[i] = "1.5"
		case Date:
			rec[i] = "2026-11-01"
		case Timestamp:
			rec[i] = "2026-11-01 10:00:00"
		}
	}
	return l, rec
}
