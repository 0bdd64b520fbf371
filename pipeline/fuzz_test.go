package pipeline_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/schema"
)

// FuzzRowParser feeds arbitrary file bodies under a fixed header through the
// same path a report takes (framing sniffing, CSV/TSV records, typing, the
// spill codec). It must never panic; every record either becomes a row
// that decodes back to its typed values or a *schema.FieldError that does
// not quote the value.
//
//	go test -run '^$' -fuzz FuzzRowParser -fuzztime 30s ./pipeline/
func FuzzRowParser(f *testing.F) {
	for _, s := range []string{
		"2026-11-20\t3\tdev-1\t2026-11-20 10:11:12\t1.5\n",
		"11/20/2026\t\t\t2026-11-20T23:59:59Z\t\n",
		"112026\t-9\t\"quoted\ttab\"\t2/14/2017 1:04:55 PM\tNaN\n",
		"2026-11-20\t1\r\n2026-11-21\t2\t3\t4\t5\t6\r\n",
		"\"2026-11-20\t1\tdev\n with newline\"\t\t\n",
		"not-a-date\tSECRET-value\tx\ty\tz\n",
		"",
	} {
		f.Add(s)
	}
	header := "FailureDate\tEventCount\tDeviceId\tFailureDateTime\tAVG(EventCount)\n"
	l, err := schema.Bind(schema.IHVDriver, strings.Split(strings.TrimSpace(header), "\t"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		cr, err := devcenter.NewReportReader(strings.NewReader(header + body))
		if err != nil {
			return
		}
		if _, err := cr.Read(); err != nil {
			t.Fatalf("header: %v", err)
		}
		var buf []byte
		for line := 2; ; line++ {
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil && len(rec) == 0 {
				continue // a framing error: the runner quarantines the line
			}
			rec = append([]string(nil), rec...)
			var date int32
			buf, date, err = l.AppendRow(buf[:0], rec, line)
			if err != nil {
				var fe *schema.FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("%v is not a FieldError", err)
				}
				msg := err.Error()
				for _, v := range rec {
					if len(v) >= 6 && strings.Contains(msg, v) && !strings.Contains(header+fe.Column+fe.Err.Error(), v) {
						t.Fatalf("error %q quotes value %q", msg, v)
					}
				}
				continue
			}
			row, n, err := l.DecodeRow(buf, nil)
			if err != nil || n != len(buf) || len(row) != len(rec) {
				t.Fatalf("decode: %v, %d of %d bytes, %d values", err, n, len(buf), len(row))
			}
			if want, _ := schema.ParseDate(rec[0]); row[0].Int32() != want || date != want {
				t.Fatalf("date %d / %d, want %d", row[0].Int32(), date, want)
			}
			if rec[2] != "" && !bytes.Equal(row[2].ByteArray(), []byte(rec[2])) {
				t.Fatalf("string %q came back as %q", rec[2], row[2].ByteArray())
			}
			if rec[1] == "" != row[1].IsNull() {
				t.Fatalf("NULL-ness of %q lost", rec[1])
			}
		}
	})
}
