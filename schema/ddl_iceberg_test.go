package schema

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func icebergTestTable(t *testing.T, root string) Table {
	t.Helper()
	l, err := Bind(IHVDriver, names(IHVDriver))
	if err != nil {
		t.Fatal(err)
	}
	return ReportTable("ihv_driver", root, l, nil, nil)
}

// TestAthenaIcebergDDL: a CREATE TABLE (not EXTERNAL, which Athena refuses
// for Iceberg) with every column typed as in the Hive DDL, partitioned by
// identity on failure_date, at the table root, with table_type ICEBERG and
// no Hive partition projection.
func TestAthenaIcebergDDL(t *testing.T) {
	tb := icebergTestTable(t, "s3://lake/hdc/ihv_driver")
	ddl, err := AthenaIcebergDDL(tb)
	if err != nil {
		t.Fatal(err)
	}
	hive, err := AthenaDDL(tb, Projection{Back: 29, Ahead: 1})
	if err != nil {
		t.Fatal(err)
	}
	cols := func(s string) string { return s[strings.Index(s, "(\n"):strings.Index(s, "\n)\n")] }
	if cols(ddl) != cols(hive) {
		t.Errorf("columns differ from the Hive DDL:\n%s\nvs\n%s", cols(ddl), cols(hive))
	}
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS `ihv_driver` (\n",
		"\n)\nPARTITIONED BY (`failure_date`)\n",
		"\nLOCATION 's3://lake/hdc/ihv_driver/'\n",
		"'table_type' = 'ICEBERG'",
		"  `failure_date` DATE",
	} {
		if !strings.Contains(ddl, want) {
			t.Errorf("DDL lacks %q:\n%s", want, ddl)
		}
	}
	for _, bad := range []string{"EXTERNAL", "projection", "STORED AS", "`date`"} {
		if strings.Contains(ddl, bad) {
			t.Errorf("DDL holds %q:\n%s", bad, ddl)
		}
	}
	if !strings.HasSuffix(ddl, ");\n") {
		t.Errorf("DDL does not end the statement:\n%s", ddl)
	}
}

func TestAthenaIcebergRefuses(t *testing.T) {
	if _, err := AthenaIcebergDDL(icebergTestTable(t, "/tmp/lake/ihv_driver")); !errors.Is(err, ErrNotS3) {
		t.Errorf("local root: %v, want ErrNotS3", err)
	}
	if _, err := AthenaIcebergDDL(QuarantineTableAt("s3://lake/hdc/_hdc/quarantine", []string{"ihv_driver"})); !errors.Is(err, errNotIceberg) {
		t.Errorf("quarantine: %v, want errNotIceberg", err)
	}
	tb := icebergTestTable(t, "s3://lake/hdc/ihv_driver")
	tb.Columns = slices.DeleteFunc(tb.Columns, func(f Field) bool { return f.Name == IcebergPartitionSource })
	if _, err := AthenaIcebergDDL(tb); !errors.Is(err, errNotIceberg) {
		t.Errorf("no failure_date: %v, want errNotIceberg", err)
	}
}

func TestDuckDBIcebergView(t *testing.T) {
	tb := icebergTestTable(t, "s3://lake/hdc/ihv_driver/")
	got, err := DuckDBIcebergView(tb, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := "CREATE OR REPLACE VIEW \"ihv_driver\" AS\n  SELECT * FROM iceberg_scan('s3://lake/hdc/ihv_driver');\n"; got != want {
		t.Errorf("root form:\n%s\nwant\n%s", got, want)
	}
	meta := "s3://lake/hdc/ihv_driver/metadata/00003-a'b.metadata.json"
	if got, err = DuckDBIcebergView(tb, meta); err != nil || !strings.Contains(got, "iceberg_scan('s3://lake/hdc/ihv_driver/metadata/00003-a''b.metadata.json')") {
		t.Errorf("metadata form: %v\n%s", err, got)
	}
	if _, err := DuckDBIcebergView(tb, "s3://lake/hdc/oem_driver/metadata/00003-x.metadata.json"); err == nil {
		t.Error("another table's metadata file was accepted")
	}
}
