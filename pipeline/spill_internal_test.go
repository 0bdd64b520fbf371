package pipeline

import (
	"context"
	"errors"
	"github.com/hdc-export/hdc-export/internal/lake"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/schema"
)

// TestSpillEncodesEveryRow: rows spread over many dates come back, per
// date, as verified Parquet files holding exactly those rows in order, cut
// into row groups by spilled bytes; the rows files are gone afterwards.
func TestSpillEncodesEveryRow(t *testing.T) {
	l, sp := testSpill(t, "FailureDate", "EventCount", "OEMName")
	sp.groupBytes = 64 << 10
	const dates, rows = 7, 50_000
	d0, _ := lake.ParseDate("2026-11-01")
	var buf []byte
	for i := range rows {
		d := d0 + lake.Date(i%dates)
		var err error
		buf, _, err = l.AppendRow(buf[:0], []string{d.String(), "7", "oem " + string(rune('a'+i%26))}, i+2)
		if err != nil {
			t.Fatal(err)
		}
		if err := sp.write(d, buf); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[lake.Date]bool{}
	total := int64(0)
	err := sp.encode(t.Context(), sp.dates(), 2, schema.EncoderOptions{}, func(d lake.Date, p *spillPart) error {
		seen[d] = true
		if err := l.Verify(p.f, p.rows); err != nil {
			return err
		}
		st, _ := p.f.Stat()
		pf, err := parquet.OpenFile(p.f, st.Size())
		if err != nil {
			return err
		}
		if len(pf.RowGroups()) < 2 {
			t.Errorf("date %s: %d row groups, want several", d, len(pf.RowGroups()))
		}
		total += pf.NumRows()
		if _, err := os.Stat(p.rowsPath); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("rows file of %s still there: %v", d, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != dates || total != rows {
		t.Errorf("%d dates, %d rows; want %d, %d", len(seen), total, dates, rows)
	}
}

// TestSpillEncodeStopsAtFirstError: an error from done ends encode with
// that error, and no worker is left behind (the race detector and the
// test's own exit would show one).
func TestSpillEncodeStopsAtFirstError(t *testing.T) {
	l, sp := testSpill(t, "FailureDate")
	d0, _ := lake.ParseDate("2026-11-01")
	for i := range 20 {
		row, _, _ := l.AppendRow(nil, []string{(d0 + lake.Date(i)).String()}, 2)
		if err := sp.write(d0+lake.Date(i), row); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("boom")
	calls := 0
	err := sp.encode(context.Background(), sp.dates(), 3, schema.EncoderOptions{}, func(lake.Date, *spillPart) error {
		calls++
		return boom
	})
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("encode: %v after %d calls; want boom after 1", err, calls)
	}
}

// TestSpeculationNeverLosesLateRows: a date encoded speculatively when the
// split left it, whose rows then come back, is encoded again with all of
// them; a date that stays complete keeps its speculative file.
func TestSpeculationNeverLosesLateRows(t *testing.T) {
	l, sp := testSpill(t, "FailureDate", "EventCount")
	sp.speculate(t.Context(), 2, schema.EncoderOptions{})
	time.Sleep(50 * time.Millisecond) // let the encoders wait for work
	a, _ := lake.ParseDate("2026-11-01")
	b, c := a+1, a+2
	write := func(d lake.Date, n int) {
		for i := range n {
			row, _, _ := l.AppendRow(nil, []string{d.String(), "1"}, i+2)
			if err := sp.write(d, row); err != nil {
				t.Fatal(err)
			}
			if err := sp.moved(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(a, 1000)
	write(b, 1000) // leaves a: speculated with 1000 rows
	time.Sleep(50 * time.Millisecond)
	write(a, 7)  // a comes back
	write(c, 10) // leaves a again (already tried), and b
	if sp.parts[a].spec.rows != 1000 || sp.parts[b].spec.rows != 1000 {
		t.Fatalf("speculated rows: a %d, b %d; want 1000 each", sp.parts[a].spec.rows, sp.parts[b].spec.rows)
	}
	got := map[lake.Date]int64{}
	err := sp.encode(t.Context(), sp.dates(), 2, schema.EncoderOptions{}, func(d lake.Date, p *spillPart) error {
		if err := l.Verify(p.f, p.rows); err != nil {
			return err
		}
		got[d] = p.rows
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got[a] != 1007 || got[b] != 1000 || got[c] != 10 {
		t.Errorf("rows per date %v; want a 1007, b 1000, c 10", got)
	}
}

// TestSpillEncodeReturnsWhenCancelled: cancelling the context while
// partitions are being encoded ends encode with the context's error
// instead of leaving it waiting for results that never come.
func TestSpillEncodeReturnsWhenCancelled(t *testing.T) {
	l, sp := testSpill(t, "FailureDate", "EventCount")
	d0, _ := lake.ParseDate("2026-11-01")
	for i := range 200_000 {
		row, _, _ := l.AppendRow(nil, []string{(d0 + lake.Date(i%8)).String(), "1"}, 2)
		if err := sp.write(d0+lake.Date(i%8), row); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- sp.encode(ctx, sp.dates(), 2, schema.EncoderOptions{}, func(lake.Date, *spillPart) error { return nil })
	}()
	time.Sleep(5 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("encode: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("encode did not return after cancellation")
	}
}

// TestSplitCountsEveryRow: each row of a report is counted once, as kept,
// bad, outside the window or superseded, by its date whether or not the
// rest of it types; only bad rows of owned dates are quarantined.
func TestSplitCountsEveryRow(t *testing.T) {
	w := lake.Window{First: mustDate(t, "2026-11-10"), Last: mustDate(t, "2026-11-13")}
	j := job{owns: map[lake.Date]bool{mustDate(t, "2026-11-10"): true, mustDate(t, "2026-11-11"): true},
		first: mustDate(t, "2026-11-10"), last: mustDate(t, "2026-11-12")}
	// 2026-11-12 is in the window but a newer run owns it.
	report := strings.Join([]string{
		"FailureDate\tEventCount\tOEMName",
		"2026-11-10\t1\ta",    // kept
		"2026-11-11\t2\tb",    // kept
		"2026-11-11\tmany\tc", // bad: quarantined
		"2026-11-11\t3",       // bad (field count): quarantined
		"someday\t4\td",       // bad date: quarantined under the run's first date
		"2026-11-09\t5\te",    // too old
		"2026-11-01\tmany\tf", // too old, bad or not
		"2026-11-02\t6",       // too old, field count or not
		"2026-11-14\t8\ti",    // after the window (tomorrow is its last day): outside
		"2026-11-12\t7\tg",    // superseded
		"2026-11-12\tmany\th", // superseded, bad or not
		"2026-11-12",          // superseded, field count or not
	}, "\n") + "\n"
	cr, err := devcenter.NewReportReader(strings.NewReader(report))
	if err != nil {
		t.Fatal(err)
	}
	header, _ := cr.Read()
	l, sp := testSpill(t, header...)
	r := &Runner{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var c lake.Commit
	if err := r.split(t.Context(), cr, "test", l, sp, newRouter(&c, w, j)); err != nil {
		t.Fatal(err)
	}
	want := lake.Commit{Rows: 2, Bad: 3, TooOld: 4, Superseded: 3}
	if c.Rows != want.Rows || c.Bad != want.Bad || c.TooOld != want.TooOld || c.Superseded != want.Superseded {
		t.Errorf("rows %d, bad %d, too old %d, superseded %d; want %d, %d, %d, %d",
			c.Rows, c.Bad, c.TooOld, c.Superseded, want.Rows, want.Bad, want.TooOld, want.Superseded)
	}
	quarantined := map[string]int64{}
	for d, q := range sp.quarantined {
		quarantined[d.String()] = q.rows
	}
	if len(quarantined) != 2 || quarantined["2026-11-11"] != 2 || quarantined["2026-11-10"] != 1 {
		t.Errorf("quarantined per date: %v; want 2026-11-11: 2, 2026-11-10: 1", quarantined)
	}
}

func mustDate(t *testing.T, s string) lake.Date {
	t.Helper()
	d, err := lake.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testSpill binds an OEM layout to header and opens a spill for it, closed
// when the test ends.
func testSpill(t *testing.T, header ...string) (*schema.Layout, *spill) {
	t.Helper()
	l, err := schema.Bind(schema.OEMDriver, header)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := newSpill(t.TempDir(), l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.close() })
	return l, sp
}
