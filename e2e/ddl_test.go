package e2e

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// badRowEvery makes the emulator spoil one row in this many (below
// bad_rows.max_fraction's 1%), so the lake holds a quarantine.
const badRowEvery = "150"

// ddlConfig writes a config for an external emulator with cabs on (a small
// byte budget, the emulator's blob host allowed), the demo's two reports,
// and the sink from HDC_SINK_URL.
func ddlConfig(t *testing.T, emu *emulator) string {
	t.Helper()
	templates := filepath.Join(repoRoot(t), "configs", "templates")
	body := fmt.Sprintf(`devcenter: {tenant_id: %s, client_id: %s}
sink: {url: ./unused}
retention: {days: %d}
cabs:
  enabled: true
  byte_budget: 33554432
  rate_per_second: 500
  allow_hosts: [%q]
reports:
  - {name: ihv_driver, template_file: %s}
  - {name: oem_driver, template_file: %s}
`, demoTenant, demoClient, retentionDays, emu.URL,
		filepath.Join(templates, "ihv_all_last7days.json"), filepath.Join(templates, "oem_all_last7days.json"))
	path := filepath.Join(t.TempDir(), "ddl.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ddlOutput runs `hdc-export ddl` with env and returns its stdout.
func ddlOutput(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(hdcBinary(t), append([]string{"ddl"}, args...)...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hdc-export ddl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// TestDDLViewsReadTheLake exports a lake with cabs and bad rows into a
// folder, runs the DuckDB DDL that `hdc-export ddl` prints, and queries
// every view and the README's cab_index join.
func TestDDLViewsReadTheLake(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, "--rows-per-day", "120", "--bad-row-every", badRowEvery)
	lake := filepath.Join(t.TempDir(), "lake")
	config := ddlConfig(t, emu)
	env := childEnv(append([]string{"HDC_SINK_URL=file://" + lake}, emu.env()...))
	sum := runExportWith(t, config, env)
	out := ddlOutput(t, env, "--config", config, "--engine", "duckdb")
	athena := ddlOutput(t, env, "--config", config, "--engine", "athena", "--location", "s3://bucket/prefix")
	checkDDLAgainstLake(t, out, athena, lake, sum)
}

// TestDDLOnMinIO exports into MinIO: `ddl` reads the lake's schema history
// from S3 and prints an S3 secret for the endpoint with placeholders, never
// the credentials. DuckDB's httpfs cannot be installed offline, so the
// views run against the lake downloaded from MinIO (--location).
func TestDDLOnMinIO(t *testing.T) {
	t.Parallel()
	srv := startMinIO(t)
	emu := startEmulator(t, "--rows-per-day", "120", "--bad-row-every", badRowEvery)
	bucket := srv.createBucket(t)
	config := ddlConfig(t, emu)
	env := srv.s3ExportEnv(emu, srv.Endpoint, bucket, lakePrefix)
	sum := runExportWith(t, config, env)

	all := ddlOutput(t, env, "--config", config)
	secret := section(all, "-- DuckDB: S3 secret")
	endpoint := strings.TrimPrefix(srv.Endpoint, "http://")
	for _, want := range []string{"TYPE S3", "KEY_ID '${AWS_ACCESS_KEY_ID}'", "SECRET '${AWS_SECRET_ACCESS_KEY}'",
		"ENDPOINT '" + endpoint + "'", "USE_SSL false", "URL_STYLE 'path'", "SCOPE 's3://" + bucket + "/" + lakePrefix + "'"} {
		if !strings.Contains(secret, want) {
			t.Errorf("the S3 secret lacks %s:\n%s", want, all)
		}
	}
	if strings.Contains(all, srv.SecretKey) || strings.Contains(all, srv.AccessKey) {
		t.Error("ddl printed the S3 credentials")
	}
	if want := "LOCATION 's3://" + bucket + "/" + lakePrefix + "/ihv_driver/'"; !strings.Contains(all, want) {
		t.Errorf("Athena DDL lacks %s:\n%s", want, all)
	}

	local := filepath.Join(t.TempDir(), "lake")
	srv.mustAWS(t, "s3", "cp", "--recursive", "--only-show-errors", "s3://"+bucket+"/"+lakePrefix, local)
	out := ddlOutput(t, env, "--config", config, "--engine", "duckdb", "--location", local)
	if strings.Contains(out, "CREATE OR REPLACE SECRET") {
		t.Error("a secret for a local --location")
	}
	checkDDLAgainstLake(t, out, all, local, sum)
}

// checkDDLAgainstLake runs the printed DuckDB DDL (out) against the lake
// folder and checks the views: every dataset view reads all rows with
// `date` a DATE equal to failure_date, the cab index and the quarantine
// views read what the lake holds, the Athena DDL (athena) declares each
// view column with the same type, and the README's cab_index join runs.
func checkDDLAgainstLake(t *testing.T, out, athena, lake string, sum summary) {
	t.Helper()
	db := openDuckDB(t)
	tables := []string{"cab_index", "quarantine"}
	for _, ds := range datasets {
		tables = append(tables, ds.name)
	}
	for _, name := range tables {
		view := section(out, "-- "+name+": DuckDB")
		if !strings.HasPrefix(view, "CREATE OR REPLACE VIEW") {
			t.Fatalf("%s: no DuckDB view (or a commented one) in the ddl output:\n%s", name, out)
		}
		if _, err := db.Exec(view); err != nil {
			t.Fatalf("%s: the printed view does not run: %v\n%s", name, err, view)
		}
		if typ := queryStrings(t, db, fmt.Sprintf(`SELECT column_type FROM (DESCRIBE "%s") WHERE column_name = 'date'`, name)); !slices.Equal(typ, []string{"DATE"}) {
			t.Errorf("%s: date is %v in DuckDB, want DATE", name, typ)
		}
		checkAthenaTypes(t, db, name, section(athena, "-- "+name+": Athena"))
	}
	for _, ds := range datasets {
		viaView := queryInt(t, db, fmt.Sprintf(`SELECT count(*) FROM "%s" WHERE "date" = failure_date`, ds.name))
		direct := queryInt(t, db, "SELECT count(*) FROM "+datasetScan(lake, ds.name))
		if viaView == 0 || viaView != direct {
			t.Errorf("%s: the view reads %d rows (with date = failure_date), the lake holds %d", ds.name, viaView, direct)
		}
	}
	cabs := queryInt(t, db, `SELECT count(*) FROM cab_index WHERE "date" = failure_date`)
	if direct := queryInt(t, db, "SELECT count(*) FROM "+datasetScan(lake, "cab_index")); cabs == 0 || cabs != direct {
		t.Errorf("cab_index: the view reads %d rows, the lake holds %d", cabs, direct)
	}
	bad, _ := sum["rows_bad"].(float64)
	q := queryInt(t, db, `SELECT count(*) FROM quarantine WHERE line > 1 AND column_name = 'EventCount' AND reason <> '' AND fields LIKE '%not-a-number%' AND dataset IN ('ihv_driver', 'oem_driver')`)
	if total := queryInt(t, db, `SELECT count(*) FROM quarantine`); bad == 0 || q != int64(bad) || total != q {
		t.Errorf("quarantine: %d rows as expected, %d in all; the run quarantined %v", q, total, bad)
	}
	for _, example := range []string{"cab_index join", "quarantine by reason"} {
		q := readmeSQL(t, example)
		if rows := queryInt(t, db, "SELECT count(*) FROM ("+strings.TrimSuffix(strings.TrimSpace(q), ";")+")"); rows == 0 {
			t.Errorf("the README's %s returns no row:\n%s", example, q)
		}
	}
}

// checkAthenaTypes checks that the Athena DDL declares every column of the
// DuckDB view with the same type.
func checkAthenaTypes(t *testing.T, db *sql.DB, name, athena string) {
	t.Helper()
	if !strings.HasPrefix(athena, "CREATE EXTERNAL TABLE") {
		t.Errorf("%s: no Athena DDL", name)
		return
	}
	cols := describe(t, db, fmt.Sprintf(`SELECT * FROM "%s"`, name))
	for _, c := range cols {
		typ := strings.TrimSuffix(c.typ, " WITH TIME ZONE") // UTC-adjusted millis: Athena's TIMESTAMP
		if typ == "VARCHAR" {
			typ = "STRING"
		}
		if !regexp.MustCompile("(?m)[ (]`" + regexp.QuoteMeta(c.name) + "` " + typ + "[,)\n]").MatchString(athena) {
			t.Errorf("%s: the Athena DDL lacks column %s %s (DuckDB %s):\n%s", name, c.name, typ, c.typ, athena)
		}
	}
}

// readmeSQL returns the SQL block that follows the README's marker
// "<!-- e2e: name -->", so the README's examples are the tested ones.
func readmeSQL(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- e2e: " + regexp.QuoteMeta(name) + " -->\\s*```sql\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatalf("README.md has no SQL block marked <!-- e2e: %s -->", name)
	}
	return string(m[1])
}

// section returns the lines after the line starting with head, up to the
// next blank line.
func section(out, head string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, head):
			in = true
		case in && line == "":
			return b.String()
		case in:
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
