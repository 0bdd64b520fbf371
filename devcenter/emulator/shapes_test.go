package emulator

import (
	"bytes"
	"compress/gzip"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// newestFile downloads the newest finished IHV run's file of an emulator
// with opts, gunzipped, and splits it into lines.
func newestFile(t *testing.T, opts Options) []string {
	t.Helper()
	h := newHarness(t, opts, testNow)
	resp, body := h.get(h.newestLink(DemoIHVReportID))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if opts.Gzip {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
}

// dates returns the FailureDate values of a TSV file's rows, sorted and
// deduplicated.
func dates(t *testing.T, lines []string) []string {
	t.Helper()
	di := slices.Index(strings.Split(lines[0], "\t"), "FailureDate")
	var out []string
	for _, l := range lines[1:] {
		out = append(out, strings.Split(l, "\t")[di])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestShapesCoverage(t *testing.T) {
	runDay := testNow.Add(-2 * time.Hour).Truncate(24 * time.Hour) // the newest run's day
	day := func(n int) string { return runDay.AddDate(0, 0, n).Format(time.DateOnly) }
	if got := dates(t, newestFile(t, Options{})); got[0] != day(-7) || got[len(got)-1] != day(-1) {
		t.Errorf("documented reading: dates %v", got)
	}
	if got := dates(t, newestFile(t, Options{Shapes: FileShapes{CoverageEndsOnRunDay: true}})); got[0] != day(-6) || got[len(got)-1] != day(0) {
		t.Errorf("ending with the run day: dates %v", got)
	}
	if got := dates(t, newestFile(t, Options{Shapes: FileShapes{ShiftDays: -3}})); got[0] != day(-10) || got[len(got)-1] != day(-4) {
		t.Errorf("shifted: dates %v", got)
	}
	if got := newestFile(t, Options{Shapes: FileShapes{Empty: true}}); len(got) != 1 {
		t.Errorf("empty: %d lines", len(got))
	}
	// From leaves older runs alone.
	if got := newestFile(t, Options{Shapes: FileShapes{From: testNow, Empty: true}}); len(got) < 2 {
		t.Errorf("a run before From changed: %d lines", len(got))
	}
}

func TestShapesExtraColumns(t *testing.T) {
	lines := newestFile(t, Options{Shapes: FileShapes{ExtraColumns: 5}})
	head := strings.Split(lines[0], "\t")
	if len(head) != len(IHVColumns)+5 || head[len(head)-1] != "Extra5" {
		t.Errorf("header %q", head)
	}
	for _, l := range lines[1:] {
		if n := len(strings.Split(l, "\t")); n != len(head) {
			t.Fatalf("row of %d fields, header %d", n, len(head))
		}
	}
}

func TestShapesStreamed(t *testing.T) {
	plain := newestFile(t, Options{Delimiter: ','})
	for _, gz := range []bool{false, true} {
		lines := newestFile(t, Options{Delimiter: ',', Gzip: gz, Shapes: FileShapes{HugeLine: 3 << 20, HugeLineQuoted: true}})
		if len(lines) != len(plain)+1 || lines[0] != plain[0] || len(lines[1]) != 3<<20 || lines[1][0] != '"' || !slices.Equal(lines[2:], plain[1:]) {
			t.Errorf("gzip %v: huge line: %d lines (plain %d), line 2 of %d bytes", gz, len(lines), len(plain), len(lines[1]))
		}
	}
	a := newestFile(t, Options{Shapes: FileShapes{RandomBody: 1 << 20}})
	b := newestFile(t, Options{Shapes: FileShapes{RandomBody: 1 << 20}})
	body := strings.Join(a[1:], "\n")
	if a[0] != strings.Join(IHVColumns, "\t") || !slices.Equal(a, b) || len(body) < 1<<20-1 {
		t.Errorf("random body: header %.40q, %d bytes, same twice %v", a[0], len(body), slices.Equal(a, b))
	}
}

func TestShapesValidate(t *testing.T) {
	for _, s := range []FileShapes{{HugeLine: -1}, {HugeLine: 1, RandomBody: 1}, {ExtraColumns: -2}} {
		if err := (Options{Shapes: s}).Validate(); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}
