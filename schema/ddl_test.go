package schema

import (
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
	ddl := l.AthenaDDL("ihv_driver", "s3://lake/hdc/ihv_driver", 30)
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
	for _, s := range []string{"PARTITIONED BY (`date` STRING)", "'projection.date.type' = 'date'", "'projection.date.range' = 'NOW-30DAYS,NOW'",
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
	v := DuckDBView("oem_driver", "/data/o'lake/oem_driver/")
	if !strings.Contains(v, "read_parquet('/data/o''lake/oem_driver/*/*.parquet', hive_partitioning = true") {
		t.Errorf("view: %s", v)
	}
}

func names(d *Dataset) []string {
	var out []string
	for _, c := range d.Columns {
		out = append(out, c.Source)
	}
	return out
}
