package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLakeMatchesIndependentGroundTruth exports the emulator's demo account
// and checks, per dataset and failure date, that DuckDB reading the lake
// finds exactly the rows the independent client says the newest finished
// run covering that date holds: same dates, row counts, SUM(event_count)
// and sum of failure_date_time.
func TestLakeMatchesIndependentGroundTruth(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, "--rows-per-day", "300")
	c := emu.client()
	ctx := context.Background()
	templatesBefore, err := c.Templates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reportsBefore, err := c.Reports(ctx)
	if err != nil {
		t.Fatal(err)
	}

	lake := filepath.Join(t.TempDir(), "lake")
	truth := exportWithTruth(t, emu, lake)

	db := openDuckDB(t)
	for _, ds := range datasets {
		tr := truth[ds.name]
		compareWithTruth(t, ds.name, tr, lakeTotals(t, db, lake, ds.name))
		checkLayout(t, lake, ds.name, tr.WindowFirst)
		ids := queryStrings(t, db, fmt.Sprintf("SELECT DISTINCT CAST(report_id AS VARCHAR) FROM %s ORDER BY 1", datasetScan(lake, ds.name)))
		if want := []string{fmt.Sprint(tr.ReportID)}; !slices.Equal(ids, want) {
			t.Errorf("%s: report_id values %q, want only %q (the report exporting %s)", ds.name, ids, want, ds.view)
		}
	}
	if st, err := os.Stat(filepath.Join(lake, "_hdc")); err != nil || !st.IsDir() || len(treeHashes(t, filepath.Join(lake, "_hdc"))) == 0 {
		t.Errorf("no runner state under %s (%v)", filepath.Join(lake, "_hdc"), err)
	}

	// Reconcile must find the demo templates and schedules, never duplicate them.
	templatesAfter, err := c.Templates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reportsAfter, err := c.Reports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(templatesAfter) != len(templatesBefore) || len(reportsAfter) != len(reportsBefore) {
		t.Errorf("the export created templates or schedules: templates %d → %d, reports %d → %d",
			len(templatesBefore), len(templatesAfter), len(reportsBefore), len(reportsAfter))
	}
}

// TestParquetTypes checks the column types analysts get from DuckDB, the
// physical timestamp encoding, and the Hive partition column.
func TestParquetTypes(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, "--rows-per-day", "50")
	lake := filepath.Join(t.TempDir(), "lake")
	runExport(t, lake, emu)
	db := openDuckDB(t)
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

	for _, ds := range datasets {
		t.Run(ds.name, func(t *testing.T) {
			_, tmpl, err := emu.client().FindReport(context.Background(), ds.view)
			if err != nil {
				t.Fatal(err)
			}
			scan := datasetScan(lake, ds.name)
			if n := queryInt(t, db, "SELECT count(*) FROM "+scan); n == 0 {
				t.Fatalf("%s has no rows", ds.name)
			}
			types := describe(t, db, "SELECT * FROM "+scan)
			var names []string
			typeOf := map[string]string{}
			for _, c := range types {
				names = append(names, c.name)
				typeOf[c.name] = c.typ
				if !snake.MatchString(c.name) {
					t.Errorf("column %q is not snake_case", c.name)
				}
				if strings.HasPrefix(c.typ, "U") || strings.Contains(c.typ, "HUGEINT") {
					t.Errorf("column %s has type %s; no unsigned or 128-bit types", c.name, c.typ)
				}
			}
			// One column per projected column, plus the Hive partition column.
			if len(types) != len(tmpl.Projection)+1 {
				t.Errorf("%d columns %q; want the %d projected columns plus date", len(types), names, len(tmpl.Projection))
			}
			// DuckDB reads INT64 TIMESTAMP(MILLIS, isAdjustedToUTC=true) as
			// TIMESTAMP WITH TIME ZONE; plain TIMESTAMP is tolerated here, and
			// the physical encoding is checked below.
			want := map[string][]string{
				"report_id":           {"BIGINT"},
				"failure_date":        {"DATE"},
				"failure_date_time":   {"TIMESTAMP WITH TIME ZONE", "TIMESTAMP"},
				"cab_expiration_time": {"TIMESTAMP WITH TIME ZONE", "TIMESTAMP"},
				"cab_collection_time": {"TIMESTAMP WITH TIME ZONE", "TIMESTAMP"},
				"event_count":         {"BIGINT"},
				"device_id":           {"VARCHAR"},
				"cab_id_hash":         {"VARCHAR"},
				"failure_hash":        {"VARCHAR"},
				"date":                {"DATE"}, // Hive partition, inferred by DuckDB
			}
			if ds.view == "IHVDriver" {
				want["application_id"] = []string{"VARCHAR"} // a numeric-looking identifier stays a string
			}
			for _, col := range slices.Sorted(maps.Keys(want)) {
				ok := want[col]
				got, present := typeOf[col]
				switch {
				case !present:
					t.Errorf("no column %s (columns %q)", col, names)
				case !slices.Contains(ok, got):
					t.Errorf("column %s is %s; want one of %q", col, got, ok)
				}
			}

			// Timestamps are INT64 milliseconds adjusted to UTC in every file:
			// never INT96, micro- or nanoseconds, or strings.
			glob := sqlString(filepath.Join(lake, ds.name, "**", "*.parquet"))
			rows, err := db.Query(fmt.Sprintf(`SELECT file_name, name, type, coalesce(converted_type, ''), coalesce(logical_type, '')
				FROM parquet_schema(%s) WHERE name IN ('failure_date_time', 'cab_expiration_time', 'cab_collection_time')`, glob))
			if err != nil {
				t.Fatal(err)
			}
			seen, bad := 0, 0
			for rows.Next() {
				var file, name, typ, conv, logical string
				if err := rows.Scan(&file, &name, &typ, &conv, &logical); err != nil {
					t.Fatal(err)
				}
				seen++
				if typ != "INT64" || !strings.Contains(logical, "MILLIS=MilliSeconds()") || !strings.Contains(logical, "isAdjustedToUTC=1") {
					if bad++; bad <= 3 {
						t.Errorf("%s: %s is %s %s %s; want INT64 TIMESTAMP(MILLIS, isAdjustedToUTC=true)", filepath.Base(filepath.Dir(file)), name, typ, conv, logical)
					}
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			rows.Close()
			if bad > 3 {
				t.Errorf("… %d timestamp columns in all are not INT64 TIMESTAMP(MILLIS, UTC)", bad)
			}
			if files := parquetFiles(t, lake, ds.name); seen != 3*len(files) {
				t.Errorf("found %d timestamp columns in %d files; want 3 per file", seen, len(files))
			}

			// The partition column is not repeated inside the files.
			if n := queryInt(t, db, fmt.Sprintf("SELECT count(*) FROM parquet_schema(%s) WHERE lower(name) = 'date'", glob)); n != 0 {
				t.Errorf("%d files contain a column named date; the partition column must not be repeated inside files", n)
			}
			one := filepath.Join(lake, ds.name, parquetFiles(t, lake, ds.name)[0])
			for _, c := range describe(t, db, fmt.Sprintf("SELECT * FROM read_parquet(%s, hive_partitioning = false)", sqlString(one))) {
				if strings.EqualFold(c.name, "date") {
					t.Errorf("%s has a column named date", one)
				}
			}

			// Every row sits in its failure date's partition.
			if n := queryInt(t, db, fmt.Sprintf("SELECT count(*) FROM %s WHERE failure_date IS NULL OR failure_date <> CAST(date AS DATE)", scan)); n != 0 {
				t.Errorf("%d rows have a failure_date that differs from their date= partition (or is NULL)", n)
			}
			// The timestamp of a failure falls on its failure date (UTC).
			if n := queryInt(t, db, fmt.Sprintf("SELECT count(*) FROM %s WHERE failure_date_time IS NULL OR CAST(failure_date_time AS DATE) <> failure_date", scan)); n != 0 {
				t.Errorf("%d rows have a failure_date_time that is NULL or not on failure_date in UTC", n)
			}
		})
	}
}

// column is one row of DESCRIBE.
type column struct{ name, typ string }

// describe returns the columns of a query as DuckDB types them.
func describe(t *testing.T, db *sql.DB, q string) []column {
	t.Helper()
	rows, err := db.Query("DESCRIBE " + q)
	if err != nil {
		t.Fatalf("DESCRIBE %s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []column
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, column{name: vals[0].String, typ: vals[1].String})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIdempotentRerun checks that a second cycle over the same runs leaves
// every file of the lake, runner state included, byte-identical. The lease
// (_hdc/lease/) is the one exception: every cycle takes it anew, by design.
func TestIdempotentRerun(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, "--rows-per-day", "100")
	for attempt := 1; ; attempt++ {
		lake := filepath.Join(t.TempDir(), "lake")
		before := groundTruth(t, emu)
		runExport(t, lake, emu)
		first := withoutLease(treeHashes(t, lake))
		sum := runExport(t, lake, emu)
		second := withoutLease(treeHashes(t, lake))
		if !sameWorld(before, groundTruth(t, emu)) && attempt < 3 {
			t.Log("the emulator's runs changed between the cycles (clock boundary); starting over")
			continue
		}
		if len(first) == 0 {
			t.Fatal("the first cycle wrote nothing")
		}
		var diffs []string
		for _, k := range slices.Sorted(maps.Keys(first)) {
			switch h, ok := second[k]; {
			case !ok:
				diffs = append(diffs, "removed "+k)
			case h != first[k]:
				diffs = append(diffs, "changed "+k)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(second)) {
			if _, ok := first[k]; !ok {
				diffs = append(diffs, "added "+k)
			}
		}
		if len(diffs) > 0 {
			t.Errorf("the second cycle changed the lake (%d of %d files; second summary: %s):\n  %s",
				len(diffs), len(first), compactSummary(sum), strings.Join(diffs, "\n  "))
		} else {
			t.Logf("%d files byte-identical after the second cycle", len(first))
		}
		return
	}
}

// withoutLease drops the lease objects (_hdc/lease/) from a lake's file
// hashes: the lease is taken anew by every cycle.
func withoutLease(files map[string]string) map[string]string {
	maps.DeleteFunc(files, func(k, _ string) bool { return strings.HasPrefix(k, "_hdc/lease/") })
	return files
}

// TestEmulatorVariants checks the ground truth still matches when the
// report files and statuses take the other shapes the API reference allows.
func TestEmulatorVariants(t *testing.T) {
	t.Parallel()
	for _, v := range []struct {
		name      string
		flags     []string
		gzip      bool
		delimiter rune
		status    string
		dateForm  string
	}{
		{"gzip-comma-success-mdy", []string{"--gzip", "--delimiter", "comma", "--status-success", "--date-format", "mdy"}, true, ',', "Success", "mdy"},
		{"mmddyy", []string{"--date-format", "mmddyy"}, false, '\t', "Completed", "mmddyy"},
		{"datetime", []string{"--date-format", "datetime", "--seed", "7"}, false, '\t', "Completed", "datetime"},
	} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			emu := startEmulator(t, append([]string{"--rows-per-day", "120"}, v.flags...)...)
			lake := filepath.Join(t.TempDir(), "lake")
			truth := exportWithTruth(t, emu, lake)
			db := openDuckDB(t)
			for _, ds := range datasets {
				tr := truth[ds.name]
				// Prove the variant is really on the wire.
				if tr.Files == 0 || (tr.Gzipped == tr.Files) != v.gzip || tr.Delimiters[v.delimiter] != tr.Files ||
					tr.Statuses[v.status] == 0 || len(tr.DateForms) != 1 || tr.DateForms[v.dateForm] == 0 {
					t.Errorf("%s: the emulator did not serve the variant: files=%d gzipped=%d delimiters=%v statuses=%v date forms=%v",
						ds.name, tr.Files, tr.Gzipped, tr.Delimiters, tr.Statuses, tr.DateForms)
				}
				compareWithTruth(t, ds.name, tr, lakeTotals(t, db, lake, ds.name))
				checkLayout(t, lake, ds.name, tr.WindowFirst)
			}
		})
	}
}

// TestDemoConfigEmbeddedEmulator runs the documented demo: configs/demo.yaml
// with its embedded emulator (no HDC_API_URL) into a local folder.
func TestDemoConfigEmbeddedEmulator(t *testing.T) {
	t.Parallel()
	lake := filepath.Join(t.TempDir(), "lake")
	runExport(t, lake, nil)
	db := openDuckDB(t)
	windowFirst := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -(retentionDays - 1))
	for _, ds := range datasets {
		checkLayout(t, lake, ds.name, windowFirst)
		if len(parquetFiles(t, lake, ds.name)) == 0 {
			continue
		}
		var rows, dates int64
		q := fmt.Sprintf("SELECT count(*), count(DISTINCT date) FROM %s", datasetScan(lake, ds.name))
		if err := db.QueryRow(q).Scan(&rows, &dates); err != nil {
			t.Fatalf("%s: %v", ds.name, err)
		}
		if rows == 0 || dates == 0 {
			t.Errorf("%s: DuckDB reads %d rows in %d partitions; want some", ds.name, rows, dates)
		}
		t.Logf("%s: %d rows in %d date partitions", ds.name, rows, dates)
	}
}
