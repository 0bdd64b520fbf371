package schema

import (
	"strconv"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// BenchmarkDecodeRow measures decoding spilled rows of every IHV column
// into parquet.Rows, per value (go test -run '^$' -bench DecodeRow ./schema/).
func BenchmarkDecodeRow(b *testing.B) {
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
			rec[i] = "2026-11-01T10:00:00Z"
		}
	}
	var buf []byte
	for range 512 {
		buf, _, err = l.AppendRow(buf, rec, 1)
		if err != nil {
			b.Fatal(err)
		}
	}
	rows := make([]parquet.Row, 512)
	b.ResetTimer()
	for b.Loop() {
		src := buf
		for i := range rows {
			var n int
			rows[i], n, _ = l.DecodeRow(src, rows[i])
			src = src[n:]
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*512*len(header)), "ns/value")
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
