//go:build iceberg

package icebergtest

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"

	"github.com/hdc-export/hdc-export/internal/lake"
)

// Day is what a scan holds for one failure date: its rows and the sum of
// their event_count.
type Day struct{ Rows, Events int64 }

// ScanDays reads t's current snapshot with iceberg-go's own scan and
// totals it per failure date (YYYY-MM-DD).
func ScanDays(ctx context.Context, t *table.Table) (map[string]Day, error) {
	out := map[string]Day{}
	_, recs, err := t.Scan().ToArrowRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("scan %v: %w", t.Identifier(), err)
	}
	for rec, err := range recs {
		if err != nil {
			return nil, fmt.Errorf("scan %v: %w", t.Identifier(), err)
		}
		sc := rec.Schema()
		di, ei := sc.FieldIndices("failure_date"), sc.FieldIndices("event_count")
		if len(di) != 1 || len(ei) != 1 {
			rec.Release()
			return nil, fmt.Errorf("scan %v: columns failure_date/event_count missing: %v", t.Identifier(), sc)
		}
		dates, events := rec.Column(di[0]).(*array.Date32), rec.Column(ei[0]).(*array.Int64)
		for i := range int(rec.NumRows()) {
			d := lake.Date(dates.Value(i)).String()
			s := out[d]
			out[d] = Day{s.Rows + 1, s.Events + events.Value(i)}
		}
		rec.Release()
	}
	return out, nil
}
