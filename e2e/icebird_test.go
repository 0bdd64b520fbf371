package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/e2e/apiclient"
)

// The second, independent Iceberg reader: icebird (npm, pinned in
// icebird/package.json and package-lock.json), an Iceberg reader in
// JavaScript on hyparquet that shares no code with iceberg-go. DuckDB's
// iceberg extension is not bundled with the DuckDB the tests link, and the
// tests run offline.
const icebirdDir = "icebird"

var (
	icebergBuildOnce sync.Once
	icebergBin       string
	icebergBuildErr  error
)

// hdcIcebergBinary builds hdc-export with -tags iceberg once per test
// process (next to the plain binary of hdcBinary).
func hdcIcebergBinary(t testing.TB) string {
	t.Helper()
	root := repoRoot(t)
	icebergBuildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hdc-e2e-iceberg-bin-")
		if err != nil {
			icebergBuildErr = err
			return
		}
		icebergBin = filepath.Join(dir, "hdc-export")
		cmd := exec.Command("go", "build", "-tags", "iceberg", "-o", icebergBin, "./cmd/hdc-export")
		cmd.Dir = root
		cmd.Env = childEnv(nil)
		if out, err := cmd.CombinedOutput(); err != nil {
			icebergBuildErr = fmt.Errorf("go build -tags iceberg ./cmd/hdc-export: %w\n%s", err, out)
		}
	})
	if icebergBuildErr != nil {
		t.Fatal(icebergBuildErr)
	}
	return icebergBin
}

// requireIcebird returns the node binary, or skips the test when node or
// the npm packages (`cd e2e/icebird && npm ci`) are missing; under CI=true
// it fails instead, since .ci/run installs them.
func requireIcebird(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(icebirdDir, "node_modules", "icebird", "package.json"))
	}
	if err != nil {
		msg := fmt.Sprintf("the icebird reader is not installed (node, and `cd e2e/icebird && npm ci`): %v", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node
}

// icebirdTable is what read.mjs prints for one table.
type icebirdTable struct {
	Columns []string    `json:"columns"`
	Rows    [][]*string `json:"rows"`
}

// TestIcebergReadByIcebird: the demo export into an Iceberg lake, read by
// icebird over HTTP, holds exactly the rows DuckDB reads from the same
// export into a plain Hive lake, date by date and row by row, with the
// same columns, and its per-date totals are the ground truth with no date
// outside the retention window.
func TestIcebergReadByIcebird(t *testing.T) {
	t.Parallel()
	node := requireIcebird(t)
	bin := hdcIcebergBinary(t)
	root := repoRoot(t)

	// The Iceberg config: configs/demo.yaml with table_format: iceberg and
	// absolute template paths (the copy lives elsewhere).
	demo, err := os.ReadFile(filepath.Join(root, "configs", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sinkLine := regexp.MustCompile(`(?m)^  url: .*$`)
	if len(sinkLine.FindAll(demo, -1)) != 1 || !bytes.Contains(demo, []byte("template_file: templates/")) {
		t.Fatal("configs/demo.yaml changed shape: want one `  url:` line under sink and template_file: templates/...")
	}
	cfgText := sinkLine.ReplaceAllString(string(demo), "$0\n  table_format: iceberg")
	cfgText = strings.ReplaceAll(cfgText, "template_file: templates/", "template_file: "+filepath.Join(root, "configs", "templates")+"/")
	iceConfig := filepath.Join(t.TempDir(), "iceberg.yaml")
	if err := os.WriteFile(iceConfig, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}

	// One emulator serves both exports, so they see the same runs; if its
	// runs change meanwhile (a clock boundary), both are done again.
	emu := startEmulator(t)
	var hiveLake, iceLake string
	truth := exportWithTruthFunc(t, emu, func() {
		base := t.TempDir()
		hiveLake, iceLake = filepath.Join(base, "hive"), filepath.Join(base, "iceberg")
		env := append([]string{"HDC_CABS=off"}, emu.env()...)
		runExportBin(t, bin, filepath.Join(root, "configs", "demo.yaml"), childEnv(append(env, "HDC_SINK_URL=file://"+hiveLake)))
		runExportBin(t, bin, iceConfig, childEnv(append(env, "HDC_SINK_URL=file://"+iceLake)))
	})
	if files := parquetFiles(t, iceLake, filepath.Join("ihv_driver", "data")); len(files) == 0 {
		t.Fatalf("the Iceberg export wrote no data files under %s", filepath.Join(iceLake, "ihv_driver", "data"))
	}

	metadata := icebergMetadataFiles(t, bin, iceConfig, iceLake)
	srv := httptest.NewServer(http.FileServer(http.Dir(iceLake)))
	t.Cleanup(srv.Close)

	db := openDuckDB(t)
	for _, ds := range datasets {
		meta, ok := metadata[ds.name]
		if !ok {
			t.Fatalf("%s: ddl named no Iceberg metadata file (got %v)", ds.name, metadata)
		}
		got := readIcebird(t, node, srv.URL, "file://"+iceLake, ds.name, meta)
		want := duckRows(t, db, hiveLake, ds.name)
		if !slices.Equal(got.Columns, want.Columns) {
			t.Errorf("%s: icebird columns %v; DuckDB reads %v from the Hive lake", ds.name, got.Columns, want.Columns)
			continue
		}
		iceTotals, err := dateTotals(got)
		if err != nil {
			t.Fatalf("%s: icebird: %v", ds.name, err)
		}
		hiveTotals := lakeTotals(t, db, hiveLake, ds.name)
		problems := append(diffTotals(iceTotals, hiveTotals), diffRows(got, want)...)
		for _, p := range problems {
			t.Errorf("%s: icebird (Iceberg) vs DuckDB (Hive): %s", ds.name, p)
		}
		tr := truth[ds.name]
		compareWithTruth(t, ds.name+" (icebird)", tr, iceTotals)
		last := tr.Today.Format(apiclient.DateLayout)
		for d := range iceTotals {
			if d < tr.WindowFirst.Format(apiclient.DateLayout) || d > last {
				t.Errorf("%s: icebird reads date %s outside the window %s..%s", ds.name, d, tr.WindowFirst.Format(apiclient.DateLayout), last)
			}
		}
		// The comparison must see a missing date: drop the newest date
		// from icebird's rows and expect a complaint from both checks.
		if dropped, d := dropDate(got); d != "" {
			dt, err := dateTotals(dropped)
			if err != nil {
				t.Fatal(err)
			}
			if len(diffTotals(dt, hiveTotals)) == 0 || len(diffRows(dropped, want)) == 0 {
				t.Errorf("%s: the comparison did not notice date %s missing from icebird's rows", ds.name, d)
			}
		}
		if len(problems) == 0 {
			t.Logf("%s: icebird read %d rows in %d dates from %s; equal to DuckDB's read of the Hive lake", ds.name, len(got.Rows), len(iceTotals), meta)
		}
	}
}

// icebergMetadataFiles returns each table's current metadata file name, as
// `hdc-export ddl --engine duckdb` names it in its iceberg_scan views.
func icebergMetadataFiles(t *testing.T, bin, config, lake string) map[string]string {
	t.Helper()
	cmd := exec.Command(bin, "ddl", "--config", config, "--engine", "duckdb")
	cmd.Env = childEnv([]string{"HDC_SINK_URL=file://" + lake})
	cmd.Dir = t.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hdc-export ddl: %v\n%s", err, stderr.String())
	}
	view := regexp.MustCompile(`(?m)^CREATE OR REPLACE VIEW "(\w+)" AS\n  SELECT \* FROM iceberg_scan\('([^']+)'\);$`)
	files := map[string]string{}
	for _, m := range view.FindAllStringSubmatch(string(out), -1) {
		dir, name := filepath.Split(m[2])
		if want := filepath.Join(lake, m[1], "metadata") + string(filepath.Separator); dir != want {
			t.Fatalf("ddl: %s's metadata file %s is not in %s", m[1], m[2], want)
		}
		files[m[1]] = name
	}
	return files
}

// readIcebird runs read.mjs for one table served at base.
func readIcebird(t *testing.T, node, base, location, table, metadata string) icebirdTable {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "read.mjs", base, location, table, metadata)
	cmd.Dir = icebirdDir
	cmd.Env = childEnv(nil)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node read.mjs %s %s: %v\n%s", table, metadata, err, tail(stderr.String(), 4000))
	}
	var tab icebirdTable
	if err := json.Unmarshal(out, &tab); err != nil {
		t.Fatalf("node read.mjs %s: output is not JSON: %v", table, err)
	}
	t.Logf("icebird read %s in %s", table, time.Since(start).Round(time.Millisecond))
	return tab
}

// duckRows reads a dataset of a Hive lake with DuckDB, normalised as
// read.mjs normalises icebird's values: integers as decimal strings, dates
// as YYYY-MM-DD, timestamps as epoch milliseconds, strings as they are.
// The columns are the Parquet files' (without the Hive partition column).
func duckRows(t *testing.T, db *sql.DB, lake, name string) icebirdTable {
	t.Helper()
	src := fmt.Sprintf("read_parquet(%s, hive_partitioning = false)", sqlString(filepath.Join(lake, name, "**", "*.parquet")))
	rows, err := db.Query("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM " + src + ")")
	if err != nil {
		t.Fatalf("%s: describe: %v", name, err)
	}
	var tab icebirdTable
	var exprs []string
	for rows.Next() {
		var col, typ string
		if err := rows.Scan(&col, &typ); err != nil {
			t.Fatal(err)
		}
		id := `"` + strings.ReplaceAll(col, `"`, `""`) + `"`
		switch typ {
		case "VARCHAR":
			exprs = append(exprs, id)
		case "BIGINT", "INTEGER", "DATE":
			exprs = append(exprs, "CAST("+id+" AS VARCHAR)")
		case "TIMESTAMP WITH TIME ZONE", "TIMESTAMP":
			exprs = append(exprs, "CAST(epoch_ms("+id+") AS VARCHAR)")
		default:
			t.Fatalf("%s: column %s has type %s, which the comparison does not normalise", name, col, typ)
		}
		tab.Columns = append(tab.Columns, col)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	rows, err = db.Query("SELECT " + strings.Join(exprs, ", ") + " FROM " + src)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		vals := make([]sql.NullString, len(exprs))
		ptrs := make([]any, len(exprs))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]*string, len(vals))
		for i, v := range vals {
			if v.Valid {
				row[i] = &v.String
			}
		}
		tab.Rows = append(tab.Rows, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return tab
}

// dateTotals aggregates a table's rows per failure_date, as lakeTotals does
// per Hive date partition.
func dateTotals(tab icebirdTable) (map[string]apiclient.Totals, error) {
	col := func(name string) (int, error) {
		if i := slices.Index(tab.Columns, name); i >= 0 {
			return i, nil
		}
		return 0, fmt.Errorf("no column %s in %v", name, tab.Columns)
	}
	di, err := col("failure_date")
	if err != nil {
		return nil, err
	}
	ei, err := col("event_count")
	if err != nil {
		return nil, err
	}
	fi, err := col("failure_date_time")
	if err != nil {
		return nil, err
	}
	num := func(s *string) (int64, error) {
		if s == nil {
			return 0, nil
		}
		return strconv.ParseInt(*s, 10, 64)
	}
	out := map[string]apiclient.Totals{}
	for _, r := range tab.Rows {
		if r[di] == nil {
			return nil, fmt.Errorf("a row without failure_date")
		}
		tot := out[*r[di]]
		e, err := num(r[ei])
		if err != nil {
			return nil, fmt.Errorf("event_count: %w", err)
		}
		f, err := num(r[fi])
		if err != nil {
			return nil, fmt.Errorf("failure_date_time: %w", err)
		}
		tot.Rows++
		tot.EventCount += e
		tot.FailureMillis += f
		out[*r[di]] = tot
	}
	return out, nil
}

// diffTotals describes every date whose totals differ.
func diffTotals(got, want map[string]apiclient.Totals) []string {
	var out []string
	dates := slices.Sorted(func(yield func(string) bool) {
		for d := range got {
			if !yield(d) {
				return
			}
		}
		for d := range want {
			if _, ok := got[d]; !ok && !yield(d) {
				return
			}
		}
	})
	for _, d := range dates {
		g, inGot := got[d]
		w, inWant := want[d]
		switch {
		case !inGot:
			out = append(out, fmt.Sprintf("date %s missing; want rows=%d sum(event_count)=%d", d, w.Rows, w.EventCount))
		case !inWant:
			out = append(out, fmt.Sprintf("date %s unexpected: rows=%d sum(event_count)=%d", d, g.Rows, g.EventCount))
		case g != w:
			out = append(out, fmt.Sprintf("date %s: rows=%d sum(event_count)=%d sum(failure ms)=%d; want rows=%d sum(event_count)=%d sum(failure ms)=%d",
				d, g.Rows, g.EventCount, g.FailureMillis, w.Rows, w.EventCount, w.FailureMillis))
		}
	}
	return out
}

// private columns are never printed: a differing row shows without them.
var privateColumns = []string{"device_id", "hardware_id", "cab_id_hash"}

// diffRows compares two tables of the same columns as multisets of rows and
// describes the difference: counts, and up to three rows of each side
// (private columns redacted).
func diffRows(got, want icebirdTable) []string {
	key := func(r []*string) string {
		b, _ := json.Marshal(r)
		return string(b)
	}
	count := map[string]int{}
	byKey := map[string][]*string{}
	for _, r := range got.Rows {
		k := key(r)
		count[k]++
		byKey[k] = r
	}
	for _, r := range want.Rows {
		k := key(r)
		count[k]--
		byKey[k] = r
	}
	var extra, missing []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range count {
			if !yield(k) {
				return
			}
		}
	}) {
		n := count[k]
		for ; n > 0; n-- {
			extra = append(extra, k)
		}
		for ; n < 0; n++ {
			missing = append(missing, k)
		}
	}
	if len(extra) == 0 && len(missing) == 0 {
		return nil
	}
	show := func(keys []string) string {
		var lines []string
		for _, k := range keys[:min(len(keys), 3)] {
			var parts []string
			for i, v := range byKey[k] {
				s := "null"
				switch {
				case slices.Contains(privateColumns, got.Columns[i]):
					s = "<private>"
				case v != nil:
					s = strconv.Quote(*v)
				}
				parts = append(parts, got.Columns[i]+"="+s)
			}
			lines = append(lines, "\n    "+strings.Join(parts, " "))
		}
		return strings.Join(lines, "")
	}
	return []string{fmt.Sprintf("%d of icebird's %d rows are not in DuckDB's read:%s\n  %d of DuckDB's %d rows are not in icebird's read:%s",
		len(extra), len(got.Rows), show(extra), len(missing), len(want.Rows), show(missing))}
}

// dropDate returns a copy of tab without the rows of its newest
// failure_date, and that date ("" if tab has none).
func dropDate(tab icebirdTable) (icebirdTable, string) {
	di := slices.Index(tab.Columns, "failure_date")
	if di < 0 {
		return tab, ""
	}
	newest := ""
	for _, r := range tab.Rows {
		if r[di] != nil && *r[di] > newest {
			newest = *r[di]
		}
	}
	out := icebirdTable{Columns: tab.Columns}
	for _, r := range tab.Rows {
		if r[di] == nil || *r[di] != newest {
			out.Rows = append(out.Rows, r)
		}
	}
	return out, newest
}
