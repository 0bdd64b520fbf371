package schema

import (
	"fmt"
	"strings"
)

// athenaType maps a lake type to Athena (Hive) DDL: as SQL names it (see
// Type.String), but STRING for strings. Timestamps are Parquet INT64
// milliseconds adjusted to UTC, which Athena reads as TIMESTAMP.
func athenaType(t Type) string {
	if t == String {
		return "STRING"
	}
	return t.String()
}

// AthenaDDL returns CREATE EXTERNAL TABLE for a dataset at location (the
// dataset's folder, e.g. "s3://bucket/prefix/ihv_driver/"), partitioned by
// the Hive column `date` with partition projection over the retention
// window, so no MSCK REPAIR or crawler is needed.
func (l *Layout) AthenaDDL(table, location string, retentionDays int) string {
	location = strings.TrimSuffix(location, "/") + "/"
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE EXTERNAL TABLE IF NOT EXISTS `%s` (\n", table)
	for i, f := range l.Fields {
		sep := ","
		if i == len(l.Fields)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  `%s` %s%s\n", f.Name, athenaType(f.Type), sep)
	}
	fmt.Fprintf(&b, ")\nPARTITIONED BY (`date` STRING)\nSTORED AS PARQUET\nLOCATION '%s'\nTBLPROPERTIES (\n", location)
	props := [][2]string{
		{"projection.enabled", "true"},
		{"projection.date.type", "date"},
		{"projection.date.format", "yyyy-MM-dd"},
		{"projection.date.range", fmt.Sprintf("NOW-%dDAYS,NOW", retentionDays)},
		{"projection.date.interval", "1"},
		{"projection.date.interval.unit", "DAYS"},
		{"storage.location.template", location + "date=${date}/"},
		{"parquet.compression", "ZSTD"},
	}
	for i, p := range props {
		sep := ","
		if i == len(props)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  '%s' = '%s'%s\n", p[0], p[1], sep)
	}
	b.WriteString(");\n")
	return b.String()
}

// DuckDBView returns a DuckDB view over a dataset's folder (local path or
// any URL DuckDB reads), typing the Hive `date` partition as DATE.
func DuckDBView(table, location string) string {
	location = strings.TrimSuffix(location, "/")
	return fmt.Sprintf("CREATE OR REPLACE VIEW \"%s\" AS\n  SELECT * FROM read_parquet('%s/*/*.parquet', hive_partitioning = true, hive_types = {'date': DATE});\n",
		table, strings.ReplaceAll(location, "'", "''"))
}
