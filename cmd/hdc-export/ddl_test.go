package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/sinks/local"
)

// TestDDLProjectionIsTheRetentionWindow: for every allowed retention, at
// any time of day, the dates Athena projects from the printed range are
// exactly the dates the retention window keeps: the first projected date
// is the oldest date kept (not one day earlier) and the last is the
// window's last.
func TestDDLProjectionIsTheRetentionWindow(t *testing.T) {
	rangeRE := regexp.MustCompile(`^NOW(?:-(\d+)DAYS)?,NOW\+(\d+)DAYS$`)
	for days := 1; days <= 30; days++ {
		for _, now := range []time.Time{
			time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 21, 23, 59, 59, 0, time.UTC),
			time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), // across February
		} {
			w := lake.NewWindow(now, days)
			r := projectionOf(w, now).Range()
			m := rangeRE.FindStringSubmatch(r)
			if m == nil {
				t.Fatalf("days %d: range %q", days, r)
			}
			back, _ := strconv.Atoi(m[1])
			ahead, _ := strconv.Atoi(m[2])
			// Athena evaluates NOW±N DAYS in UTC and formats yyyy-MM-dd.
			first := lake.DateOf(now.AddDate(0, 0, -back))
			last := lake.DateOf(now.AddDate(0, 0, ahead))
			if first != w.First || last != w.Last {
				t.Errorf("days %d at %s: range %q projects %s..%s, the window keeps %s..%s", days, now, r, first, last, w.First, w.Last)
			}
			if w.Contains(first-1) || !w.Contains(first) || !w.Contains(last) || w.Contains(last+1) {
				t.Errorf("days %d: the projection's edges are not the window's", days)
			}
		}
	}
}

// TestDDLCommand runs `ddl` against a local lake whose schema record shows
// a column added after the first run.
func TestDDLCommand(t *testing.T) {
	ctx := context.Background()
	path := writeConfig(t, validBody+"retention: {days: 7}\n")
	lakeDir := filepath.Join(filepath.Dir(path), "lake")
	sink, err := local.New(lakeDir)
	if err != nil {
		t.Fatal(err)
	}
	rec := lake.DatasetSchema{Dataset: "ihv", Columns: map[string]string{"failure_date": "DATE", "event_count": "BIGINT", "new_thing": "VARCHAR"}, Added: []string{"new_thing"}}
	if err := lake.PutJSON(ctx, sink, lake.SchemaKey("ihv"), rec); err != nil {
		t.Fatal(err)
	}
	ddl := func(args ...string) (string, string, int) {
		var out, errOut strings.Builder
		code := run(ctx, append([]string{"ddl", "--config", path}, args...), &out, &errOut, env(map[string]string{"HDC_SINK_URL": lakeDir}))
		return out.String(), errOut.String(), code
	}

	// Athena: never a local folder in LOCATION.
	out, errOut, code := ddl("--engine", "athena")
	if code != exitUsage || !strings.Contains(errOut, "--location s3://") || strings.Contains(out, "LOCATION") {
		t.Errorf("athena on a local lake: exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	out, errOut, code = ddl("--engine", "athena", "--location", t.TempDir())
	if code != exitUsage || strings.Contains(out, "LOCATION") {
		t.Errorf("athena with a folder --location: exit %d, stderr %q", code, errOut)
	}
	out, errOut, code = ddl()
	if code != 0 || strings.Contains(out, "LOCATION") || !strings.Contains(out, "-- Athena DDL not printed") ||
		!strings.Contains(out, fmt.Sprintf("read_parquet('%s/ihv/date=*/*.parquet'", lakeDir)) {
		t.Errorf("all engines on a local lake: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}

	// Athena at an S3 location: the added column is in CREATE, and the
	// ALTER TABLE path brings it to a table created before it.
	out, errOut, code = ddl("--engine", "athena", "--location", "s3://bkt/pre/")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"LOCATION 's3://bkt/pre/ihv/'",
		"  `new_thing` STRING\n)",
		"ALTER TABLE `ihv` ADD COLUMNS (`new_thing` STRING);",
		"'projection.date.range' = 'NOW-6DAYS,NOW+1DAYS'",
		"LOCATION 's3://bkt/pre/cab_index/'",
		"LOCATION 's3://bkt/pre/_hdc/quarantine/'",
		"'projection.dataset.values' = 'ihv'",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("athena DDL lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "CREATE OR REPLACE VIEW") {
		t.Error("--engine athena printed DuckDB views")
	}
}

// TestDDLDuckDBSecret: an S3 lake gets CREATE SECRET with the endpoint and
// placeholders for the credentials, never their values.
func TestDDLDuckDBSecret(t *testing.T) {
	cfg := &Config{}
	cfg.Sink.S3.Endpoint, cfg.Sink.S3.PathStyle = "http://127.0.0.1:9000", true
	var out strings.Builder
	getenv := env(map[string]string{"AWS_ACCESS_KEY_ID": "AKIDSECRETVALUE", "AWS_SECRET_ACCESS_KEY": "topsecretvalue"})
	if err := printDuckDB(&out, nil, cfg, "s3://b/p", getenv); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TYPE S3", "KEY_ID '${AWS_ACCESS_KEY_ID}'", "SECRET '${AWS_SECRET_ACCESS_KEY}'", "ENDPOINT '127.0.0.1:9000'", "USE_SSL false", "URL_STYLE 'path'", "SCOPE 's3://b/p'"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("secret lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "SECRETVALUE") || strings.Contains(out.String(), "topsecret") {
		t.Errorf("a credential was printed:\n%s", out.String())
	}
	// The SDK's endpoint variable serves when the config names none.
	out.Reset()
	if err := printDuckDB(&out, nil, &Config{}, "s3://b/p", env(map[string]string{"AWS_ENDPOINT_URL": "https://s3.example.net"})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ENDPOINT 's3.example.net'") || !strings.Contains(out.String(), "USE_SSL true") {
		t.Errorf("AWS_ENDPOINT_URL not used:\n%s", out.String())
	}
}
