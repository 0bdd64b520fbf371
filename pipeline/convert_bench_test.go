package pipeline

import (
	"bytes"
	"context"
	"github.com/hdc-export/hdc-export/internal/lake"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/devcenter/devcentertest"
	"github.com/hdc-export/hdc-export/devcenter/emulator"
	"github.com/hdc-export/hdc-export/schema"
)

// BenchmarkConvert measures converting one emulator report (an IHV
// Last30Days file of every column, 5,000 rows per date) from its bytes to
// verified Parquet files: both passes of ingest, without the download and
// the upload. With -cpu 1 it measures the whole CPU work of a conversion;
// with -cpu 2 the pipelined time. `make bench` measures the whole run
// against DuckDB; this is the in-process view for profiling
// (-cpuprofile).
func BenchmarkConvert(b *testing.B) {
	now := time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)
	_, client := devcentertest.Start(b, emulator.Options{RowsPerDay: 5000, Period: "Last30Days", Now: func() time.Time { return now }})
	ctx := context.Background()
	runs, err := client.ReportData(ctx, emulator.DemoIHVReportID, now.AddDate(0, 0, -2), now)
	if err != nil {
		b.Fatal(err)
	}
	run := slices.MaxFunc(runs, func(a, b devcenter.Run) int { return a.Time.Compare(b.Time) })
	body, err := client.Download(ctx, run.Location)
	if err != nil {
		b.Fatal(err)
	}
	data, err := io.ReadAll(body)
	body.Close()
	if err != nil {
		b.Fatal(err)
	}
	w := lake.NewWindow(now, 90)
	j := job{run: run, owns: map[lake.Date]bool{}, first: w.First, last: lake.DateOf(now)}
	for d := w.First; d <= lake.DateOf(now); d++ {
		j.owns[d] = true
	}
	r := &Runner{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tmp := b.TempDir()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		cr, err := devcenter.NewReportReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		header, _ := cr.Read()
		layout, err := schema.Bind(schema.IHVDriver, header)
		if err != nil {
			b.Fatal(err)
		}
		sp, err := newSpill(tmp, layout)
		if err != nil {
			b.Fatal(err)
		}
		workers := ParquetConfig{}.encoders() // follows -cpu
		var c lake.Commit
		sp.speculate(ctx, workers, schema.EncoderOptions{})
		if err := r.split(ctx, cr, "bench", layout, sp, newRouter(&c, w, j)); err != nil {
			b.Fatal(err)
		}
		err = sp.encode(ctx, sp.dates(), workers, schema.EncoderOptions{}, func(d lake.Date, p *spillPart) error {
			return layout.Verify(p.f, p.rows)
		})
		if err != nil {
			b.Fatal(err)
		}
		if c.Rows == 0 || c.Bad > 0 {
			b.Fatalf("%d rows, %d bad", c.Rows, c.Bad)
		}
		sp.close()
	}
}
