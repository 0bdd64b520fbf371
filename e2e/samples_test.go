package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/e2e/apiclient"
)

// TestSampleTemplatesQueryable exports the API reference's five sample
// templates (projections, a condition, aggregates with HAVING, ORDER BY and
// LIMIT) and reads them back with DuckDB: each lands as a typed table whose
// aggregate columns are numeric with sanitised names, holding exactly the
// rows of the newest run's file as the independent client downloads it.
func TestSampleTemplatesQueryable(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, "--rows-per-day", "600")
	dir := t.TempDir()
	samples := filepath.Join(repoRoot(t), "devcenter", "emulator", "testdata")
	// The schedules started yesterday, so each has run today at 00:00 UTC.
	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1).Format(time.RFC3339)
	cfg := "devcenter: {tenant_id: demo-tenant, client_id: demo-client}\ncabs: {enabled: false}\nreports:\n"
	files := []string{"sample1-ihv-all-columns.json", "sample2-oem-all-columns.json", "sample3-ihv-failures-by-driver.json",
		"sample4-oem-kernel-crashes.json", "sample5-ihv-top-drivers.json"}
	for i, f := range files {
		cfg += fmt.Sprintf("  - {name: sample%d, template_file: %s, schedule: {start: %s, interval_hours: 24}}\n", i+1, filepath.Join(samples, f), start)
	}
	config := filepath.Join(dir, "samples.yaml")
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	lake := filepath.Join(dir, "lake")
	runExportWith(t, config, childEnv(append([]string{"HDC_SINK_URL=file://" + lake}, emu.env()...)))

	// Athena reads S3 only: the DDL names where the lake would be copied to.
	ddlCmd := exec.Command(hdcBinary(t), "ddl", "--config", config, "--engine", "athena", "--location", "s3://hdc-samples/lake")
	ddlCmd.Env = childEnv(append([]string{"HDC_SINK_URL=file://" + lake}, emu.env()...))
	out, err := ddlCmd.Output()
	if err != nil {
		t.Fatalf("hdc-export ddl: %v", err)
	}
	ddl := string(out)
	db := openDuckDB(t)
	today := time.Now().UTC().Format(time.DateOnly)
	wantTypes := map[string]map[string]string{
		"sample1": {"failure_date": "DATE", "failure_date_time": "TIMESTAMP WITH TIME ZONE", "event_count": "BIGINT", "device_id": "VARCHAR"},
		"sample2": {"failure_date": "DATE", "cab_expiration_time": "TIMESTAMP WITH TIME ZONE", "model": "VARCHAR"},
		"sample3": {"driver_name": "VARCHAR", "failure_hash": "VARCHAR", "sum_event_count": "BIGINT", "dcount_device_id": "BIGINT"},
		"sample4": {"failure_name": "VARCHAR", "sum_event_count": "BIGINT"},
		"sample5": {"driver_name": "VARCHAR", "dcount_device_id": "BIGINT"},
	}
	for i := range files {
		name := fmt.Sprintf("sample%d", i+1)
		types := map[string]string{}
		rows, err := db.Query(fmt.Sprintf("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM %s)", datasetScan(lake, name)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for rows.Next() {
			var c, ty string
			if err := rows.Scan(&c, &ty); err != nil {
				t.Fatal(err)
			}
			types[c] = ty
		}
		rows.Close()
		for c, ty := range wantTypes[name] {
			if !strings.HasPrefix(types[c], strings.Fields(ty)[0]) {
				t.Errorf("%s: column %s is %q, want %s", name, c, types[c], ty)
			}
		}
		athena := section(ddl, "-- "+name+": Athena")
		if athena == "" {
			t.Fatalf("%s: no Athena DDL in:\n%s", name, ddl)
		}
		for c := range types {
			if c != "date" && !strings.Contains(athena, "`"+c+"` ") {
				t.Errorf("%s: the Athena DDL lacks column %s:\n%s", name, c, athena)
			}
		}
		if i >= 2 { // undated: each run's whole file under its run's date
			want := newestRunRecords(t, emu, name, lake)
			got := queryInt(t, db, "SELECT count(*) FROM "+datasetScan(lake, name)+" WHERE date = "+sqlString(today))
			if got != want || want == 0 {
				t.Errorf("%s: %d rows in the lake, the newest run's file has %d", name, got, want)
			}
		}
	}
	// Sample 5's LIMIT holds in every snapshot.
	if n := queryInt(t, db, "SELECT max(n) FROM (SELECT count(*) AS n FROM "+datasetScan(lake, "sample5")+" GROUP BY date)"); n > 10 {
		t.Errorf("a sample5 snapshot holds %d rows, above the template's limit of 10", n)
	}
}

// newestRunRecords counts the records of the newest run of the report the
// lake bound to dataset, downloaded with the independent client.
func newestRunRecords(t *testing.T, emu *emulator, dataset, lake string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(lake, "_hdc", "reports", dataset+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if _, err := fmt.Sscanf(string(b[bytes.Index(b, []byte(`"report_id":`))+len(`"report_id":`):]), "%d", &id); err != nil {
		t.Fatalf("binding %s: %v", b, err)
	}
	c := emu.client()
	ctx := context.Background()
	now := time.Now()
	runs, err := c.Runs(ctx, id, now.AddDate(0, 0, -2), now)
	if err != nil || len(runs) == 0 {
		t.Fatalf("report %d: %d runs, %v", id, len(runs), err)
	}
	newest := slices.MaxFunc(runs, func(a, b apiclient.Run) int { return a.Time.Compare(b.Time) })
	body, err := c.Download(ctx, newest.Location)
	if err != nil {
		t.Fatal(err)
	}
	cr := csv.NewReader(bytes.NewReader(body))
	cr.Comma, cr.LazyQuotes = '\t', true
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(recs) - 1)
}
