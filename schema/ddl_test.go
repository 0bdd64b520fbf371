package schema

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// TestAthenaDDLTypeRules: every column type is one of the lake's allowed
// Athena types (no INT96, no unsigned, timestamps as TIMESTAMP), names are
// snake_case, and the table is projected on `date`.
func TestAthenaDDLTypeRules(t *testing.T) {
	header := append(append([]string{}, names(IHVDriver)...), "SUM(EventCount)", "AVG(EventCount)", "Unknown Extra")
	l, err := Bind(IHVDriver, header)
	if err != nil {
		t.Fatal(err)
	}
	ddl, err := AthenaDDL(ReportTable("ihv_driver", "s3://lake/hdc/ihv_driver", l, nil, nil), Projection{Back: 29, Ahead: 1})
	if err != nil {
		t.Fatal(err)
	}
	colRE := regexp.MustCompile("(?m)^  `([^`]+)` (\\w+),?$")
	cols := colRE.FindAllStringSubmatch(ddl, -1)
	if len(cols) != len(header) {
		t.Fatalf("%d columns in DDL, want %d:\n%s", len(cols), len(header), ddl)
	}
	allowed := map[string]bool{"BIGINT": true, "DOUBLE": true, "DATE": true, "TIMESTAMP": true, "STRING": true}
	want := map[string]string{"failure_date": "DATE", "failure_date_time": "TIMESTAMP", "event_count": "BIGINT",
		"report_id": "BIGINT", "device_id": "STRING", "sum_event_count": "BIGINT", "avg_event_count": "DOUBLE", "unknown_extra": "STRING"}
	for _, c := range cols {
		if !allowed[c[2]] {
			t.Errorf("column %s has type %s", c[1], c[2])
		}
		if w, ok := want[c[1]]; ok && w != c[2] {
			t.Errorf("column %s is %s, want %s", c[1], c[2], w)
		}
		if SnakeCase(c[1]) != c[1] {
			t.Errorf("column %s is not snake_case", c[1])
		}
	}
	for _, s := range []string{"PARTITIONED BY (`date` DATE)", "'projection.date.type' = 'date'", "'projection.date.format' = 'yyyy-MM-dd'", "'projection.date.range' = 'NOW-29DAYS,NOW+1DAYS'",
		"'storage.location.template' = 's3://lake/hdc/ihv_driver/date=${date}/'", "STORED AS PARQUET", "LOCATION 's3://lake/hdc/ihv_driver/'"} {
		if !strings.Contains(ddl, s) {
			t.Errorf("DDL lacks %s:\n%s", s, ddl)
		}
	}
	if strings.Contains(strings.ToUpper(ddl), "INT96") {
		t.Error("DDL mentions INT96")
	}
}

func TestDuckDBViewQuotes(t *testing.T) {
	v := DuckDBView(Table{Name: "oem_driver", Root: "/data/o'lake/oem_driver/"})
	want := "CREATE OR REPLACE VIEW \"oem_driver\" AS\n  SELECT * FROM read_parquet('/data/o''lake/oem_driver/date=*/*.parquet', hive_partitioning = true, hive_types = {'date': DATE}, union_by_name = true);\n"
	if v != want {
		t.Errorf("view:\n%s\nwant:\n%s", v, want)
	}
	q := DuckDBView(QuarantineTableAt("/l/_hdc/quarantine", []string{"a"}))
	for _, s := range []string{`CREATE OR REPLACE VIEW "quarantine" AS`, `dataset, "date"`, "read_text('/l/_hdc/quarantine/*/date=*/*.tsv')", `AS DATE) AS "date"`} {
		if !strings.Contains(q, s) {
			t.Errorf("quarantine view lacks %s:\n%s", s, q)
		}
	}
}

// TestAthenaRefusesLocalLocation: a local folder never becomes an Athena
// LOCATION.
func TestAthenaRefusesLocalLocation(t *testing.T) {
	for _, root := range []string{"/data/lake/ihv_driver", "lake/ihv_driver", "file:///data/lake/ihv_driver", "C:\\lake\\ihv_driver", ""} {
		ddl, err := AthenaDDL(CabIndexTableAt(root), Projection{Back: 29, Ahead: 1})
		if !errors.Is(err, ErrNotS3) || ddl != "" || !strings.Contains(err.Error(), "--location s3://") {
			t.Errorf("root %q: %v\n%s", root, err, ddl)
		}
	}
}

// TestAthenaDateQuotedAndTyped: `date` is backquoted in every table and
// typed DATE, as DuckDB types it, and the projection formats it as the
// lake's keys spell it.
func TestAthenaDateQuotedAndTyped(t *testing.T) {
	for _, tb := range []Table{CabIndexTableAt("s3://b/p/cab_index"), QuarantineTableAt("s3://b/p/_hdc/quarantine", []string{"ihv_driver", "oem_driver"})} {
		ddl, err := AthenaDDL(tb, Projection{Back: 6, Ahead: 1})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(ddl, "`date` DATE)") || regexp.MustCompile(`\bdate\b`).MatchString(regexp.MustCompile("`[^`]*`|'[^']*'").ReplaceAllString(ddl, "")) {
			t.Errorf("%s: date not quoted or not DATE:\n%s", tb.Name, ddl)
		}
		if !strings.Contains(ddl, "'projection.date.range' = 'NOW-6DAYS,NOW+1DAYS'") {
			t.Errorf("%s: range:\n%s", tb.Name, ddl)
		}
	}
	q, _ := AthenaDDL(QuarantineTableAt("s3://b/p/_hdc/quarantine", []string{"ihv_driver", "oem_driver"}), Projection{Back: 6, Ahead: 1})
	for _, s := range []string{"PARTITIONED BY (`dataset` STRING, `date` DATE)", "'projection.dataset.values' = 'ihv_driver,oem_driver'",
		"'storage.location.template' = 's3://b/p/_hdc/quarantine/${dataset}/date=${date}/'", "'skip.header.line.count' = '1'"} {
		if !strings.Contains(q, s) {
			t.Errorf("quarantine DDL lacks %s:\n%s", s, q)
		}
	}
}

// TestAthenaAddColumns: columns that schema changes added come as one
// ALTER TABLE ADD COLUMNS, in the order added; none, no statement.
func TestAthenaAddColumns(t *testing.T) {
	l, err := Bind(IHVDriver, []string{"FailureDate", "EventCount"})
	if err != nil {
		t.Fatal(err)
	}
	known := []Field{{Name: "event_count", Type: Int64}, {Name: "market", Type: String}, {Name: "new_thing", Type: String}, {Name: "sum_x", Type: Float64}}
	tb := ReportTable("ihv_driver", "s3://b/ihv_driver", l, known, []string{"sum_x", "new_thing", "sum_x", "gone"})
	if got, want := AthenaAddColumns(tb), "ALTER TABLE `ihv_driver` ADD COLUMNS (`sum_x` DOUBLE, `new_thing` STRING);\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var cols []string
	for _, f := range tb.Columns {
		cols = append(cols, f.Name)
	}
	if got := strings.Join(cols, ","); got != "failure_date,event_count,market,new_thing,sum_x" {
		t.Errorf("columns %s", got)
	}
	if s := AthenaAddColumns(ReportTable("ihv_driver", "s3://b/ihv_driver", l, known, nil)); s != "" {
		t.Errorf("no change, but %q", s)
	}
}

func TestProjectionRange(t *testing.T) {
	for p, want := range map[Projection]string{{29, 1}: "NOW-29DAYS,NOW+1DAYS", {0, 1}: "NOW,NOW+1DAYS", {6, 0}: "NOW-6DAYS,NOW"} {
		if got := p.Range(); got != want {
			t.Errorf("%+v: %q, want %q", p, got, want)
		}
	}
}

// TestDuckDBSecretRefusesEndpointPaths: DuckDB takes a host, not a URL path.
func TestDuckDBSecretRefusesEndpointPaths(t *testing.T) {
	for _, ep := range []string{"127.0.0.1:9000", "ftp://x", "http://h/path"} {
		if s, err := DuckDBSecret(S3Secret{Scope: "s3://b", Endpoint: ep}); err == nil {
			t.Errorf("endpoint %q accepted:\n%s", ep, s)
		}
	}
	s, err := DuckDBSecret(S3Secret{Scope: "s3://b/p/"})
	if err != nil || strings.Contains(s, "ENDPOINT") || strings.Contains(s, "URL_STYLE") || !strings.Contains(s, "REGION 'us-east-1'") || !strings.Contains(s, "SCOPE 's3://b/p'") {
		t.Errorf("AWS secret: %v\n%s", err, s)
	}
}

func names(d *Dataset) []string {
	var out []string
	for _, c := range d.Columns {
		out = append(out, c.Source)
	}
	return out
}
