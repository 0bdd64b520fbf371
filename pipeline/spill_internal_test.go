package pipeline

import (
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/hdc-export/hdc-export/schema"
)

// TestSpillBoundsBufferedRows: rows spread over many dates never leave more
// than maxBufferedRows in open row groups, and every row still lands in its
// date's file.
func TestSpillBoundsBufferedRows(t *testing.T) {
	l, err := schema.Bind(schema.OEMDriver, []string{"FailureDate", "EventCount"})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := newSpill(t.TempDir(), l, schema.EncoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	const dates, rows = 5, maxBufferedRows*2 + 123
	d0, _ := ParseDate("2026-11-01")
	for i := range rows {
		d := d0 + Date(i%dates)
		row, _, err := l.Convert([]string{d.String(), "1"}, i+2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := sp.write(d, row); err != nil {
			t.Fatal(err)
		}
		if sp.buffered > maxBufferedRows {
			t.Fatalf("%d rows buffered", sp.buffered)
		}
	}
	written, err := sp.finish()
	if err != nil || len(written) != dates {
		t.Fatalf("finish: %v, %d dates", err, len(written))
	}
	total, groups := int64(0), 0
	for _, d := range written {
		p := sp.parts[d]
		if err := l.Verify(p.f, p.enc.Rows()); err != nil {
			t.Fatal(err)
		}
		st, _ := p.f.Stat()
		pf, err := parquet.OpenFile(p.f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		total += pf.NumRows()
		groups += len(pf.RowGroups())
	}
	if total != rows || groups <= dates {
		t.Errorf("%d rows in %d row groups; want %d rows in more than %d groups", total, groups, rows, dates)
	}
}
