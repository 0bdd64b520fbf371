package emulator

import (
	"slices"
	"testing"
)

// TestBadRows: every Nth row, and only it, gets a bad EventCount; other
// columns and files without EventCount are untouched.
func TestBadRows(t *testing.T) {
	e := &Emulator{opts: Options{BadRowEvery: 3}}
	var got [][]string
	write := e.badRows([]string{"FailureDate", "EventCount"}, func(r []string) error { got = append(got, slices.Clone(r)); return nil })
	row := []string{"2026-11-01", "5"}
	for range 7 {
		if err := write(row); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range got {
		bad := (i+1)%3 == 0
		if (r[1] == badValue) != bad || r[0] != "2026-11-01" {
			t.Errorf("row %d: %q", i+1, r)
		}
	}
	if row[1] != "5" {
		t.Error("the caller's row was modified")
	}
	n := 0
	plain := e.badRows([]string{"FailureDate", "SUM(EventCount)"}, func([]string) error { n++; return nil })
	if err := plain([]string{"x", "y"}); err != nil || n != 1 {
		t.Errorf("file without EventCount: %d, %v", n, err)
	}
}
