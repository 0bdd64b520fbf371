package devcenter

import (
	"strings"
	"testing"
)

// BenchmarkRecordReader reads a 32 MiB TSV of report-like lines, a few
// quoted, through Unsplit and Read, as the ingest does.
func BenchmarkRecordReader(b *testing.B) {
	line := "1\t2026-11-20\t2026-11-20 13:45:00\tACME Corp\tacme.sys\t10.0.1.2\t0x0000007E\tdev-00000000-0000\tx64\t3\n"
	quoted := "1\t2026-11-20\t\"quoted\tfield\"\tACME\tacme.sys\t10.0.1.2\t0x7E\tdev-1\tx64\t3\n"
	var sb strings.Builder
	for sb.Len() < 32<<20 {
		for range 99 {
			sb.WriteString(line)
		}
		sb.WriteString(quoted)
	}
	data := sb.String()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r := newRecordReader(strings.NewReader(data), '\t', blockSize)
		var fields []string
		for {
			if l, ok := r.Unsplit(); ok {
				fields = AppendFields(fields[:0], l, '\t')
				continue
			}
			var err error
			if fields, err = r.Append(fields[:0]); err != nil {
				break
			}
		}
	}
}
