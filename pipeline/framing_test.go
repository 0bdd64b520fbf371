package pipeline_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/parquet-go/parquet-go"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/devcenter/emulator"
)

// reframingAPI re-writes every report file it downloads: frame gets the
// file's records (header first) and returns the bytes to serve instead.
type reframingAPI struct {
	*devcenter.Client
	frame func(recs [][]string) []byte
}

func (c reframingAPI) Download(ctx context.Context, link string) (io.ReadCloser, error) {
	body, err := c.Client.Download(ctx, link)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	cr := csv.NewReader(body)
	cr.Comma, cr.LazyQuotes, cr.FieldsPerRecord = '\t', true, -1
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(c.frame(recs))), nil
}

// tricky is a FailureName with every character CSV framing must survive.
// (A CRLF inside a quoted field reads as LF: encoding/csv normalises it.)
const tricky = "a,b;\"quoted\"\nsecond line\tand a tab"

// TestFramingVariants: a gzipped CSV with a BOM, CRLF line ends and quoted
// fields holding delimiters, quotes and newlines lands exactly like the
// plain TSV; empty and header-only files are runs with no rows.
func TestFramingVariants(t *testing.T) {
	plain := newHarness(t, emulator.Options{RowsPerDay: 30})
	plain.run(t)
	want := lakeStats(t, plain.lakeDir, "ihv_driver")

	h := newHarness(t, emulator.Options{RowsPerDay: 30})
	h.runner.API = reframingAPI{h.client, func(recs [][]string) []byte {
		name := slices.Index(recs[0], "FailureName")
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write([]byte("\ufeff"))
		w := csv.NewWriter(zw)
		w.UseCRLF = true
		for i, rec := range recs {
			if i > 0 && i%3 == 0 {
				rec[name] = tricky
			}
			w.Write(rec)
		}
		w.Flush()
		zw.Close()
		return buf.Bytes()
	}}
	sum := h.run(t)
	if sum.RowsBad != 0 {
		t.Fatalf("%d bad rows", sum.RowsBad)
	}
	if got := lakeStats(t, h.lakeDir, "ihv_driver"); !maps.Equal(got, want) {
		t.Errorf("reframed lake differs from the plain one:\n got %v\nwant %v", got, want)
	}
	if n := countValue(t, h.lakeDir, "ihv_driver", "failure_name", tricky); n == 0 {
		t.Error("the quoted value with delimiters and newlines did not land intact")
	}

	for name, body := range map[string]string{"empty": "", "header only": strings.Join(emulator.IHVColumns, "\t") + "\r\n"} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, emulator.Options{RowsPerDay: 30})
			h.runner.API = reframingAPI{h.client, func([][]string) []byte { return []byte(body) }}
			sum := h.run(t)
			if sum.RunsIngested == 0 || sum.Rows != 0 || sum.RowsBad != 0 || sum.ReportsFailed != 0 {
				t.Errorf("summary %+v; want runs ingested with no rows", sum)
			}
			if files, _ := filepath.Glob(filepath.Join(h.lakeDir, "*", "date=*", "*.parquet")); len(files) != 0 {
				t.Errorf("data files from files without rows: %v", files)
			}
		})
	}
}

// countValue counts the rows of a dataset whose string column col is v.
func countValue(t *testing.T, lake, dataset, col, v string) int {
	t.Helper()
	n := 0
	files, _ := filepath.Glob(filepath.Join(lake, dataset, "date=*", "*.parquet"))
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		leaf, ok := pf.Schema().Lookup(col)
		if !ok {
			t.Fatalf("%s has no column %s", path, col)
		}
		for _, rg := range pf.RowGroups() {
			rows := rg.Rows()
			buf := make([]parquet.Row, 128)
			for {
				k, err := rows.ReadRows(buf)
				for _, row := range buf[:k] {
					if string(row[leaf.ColumnIndex].ByteArray()) == v {
						n++
					}
				}
				if err != nil {
					break
				}
			}
			rows.Close()
		}
	}
	return n
}

// truncatingAPI breaks off the first download of every link half-way, with
// io.ErrUnexpectedEOF, as a body shorter than its Content-Length does.
type truncatingAPI struct {
	*devcenter.Client
	mu   sync.Mutex
	seen map[string]bool
}

func (c *truncatingAPI) Download(ctx context.Context, link string) (io.ReadCloser, error) {
	body, err := c.Client.Download(ctx, link)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	first := !c.seen[link]
	c.seen[link] = true
	c.mu.Unlock()
	if !first {
		return body, nil
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(b[:len(b)/2]), iotest.ErrReader(io.ErrUnexpectedEOF))), nil
}

// TestBrokenDownloadsAreRetriedInTheRun: a download that breaks off is
// ingested again within the same run, which then lands the same lake as
// an unbroken one.
func TestBrokenDownloadsAreRetriedInTheRun(t *testing.T) {
	plain := newHarness(t, emulator.Options{RowsPerDay: 30})
	plain.run(t)
	h := newHarness(t, emulator.Options{RowsPerDay: 30})
	h.runner.API = &truncatingAPI{Client: h.client, seen: map[string]bool{}}
	sum := h.run(t)
	if sum.ReportsFailed != 0 || sum.RunsIngested == 0 {
		t.Fatalf("summary %+v", sum)
	}
	for _, ds := range []string{"ihv_driver", "oem_driver"} {
		if got, want := lakeStats(t, h.lakeDir, ds), lakeStats(t, plain.lakeDir, ds); !maps.Equal(got, want) {
			t.Errorf("%s differs from an unbroken run's", ds)
		}
	}
}
