package schema

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// IcebergPartitionSource is the column an Iceberg lake's tables are
// partitioned by (identity on a DATE column; see internal/lake/iceberg).
const IcebergPartitionSource = "failure_date"

// AthenaIcebergDDL returns Athena's CREATE TABLE for t as an Iceberg table
// registered in Glue: format v2 (the only one Athena writes and reads),
// partitioned by identity on failure_date, LOCATION the table root. Athena
// creates the table's Iceberg metadata itself and reads the snapshots
// committed through the Glue catalog: the exporter's runs show there only
// when they commit through that catalog. It fails with ErrNotS3 unless
// t.Root is an s3:// URL, and for a table that is not a report dataset
// with a failure_date DATE column. The caller picks the tables: the cab
// index and the quarantine stay plain files in an Iceberg lake.
func AthenaIcebergDDL(t Table) (string, error) {
	if !strings.HasPrefix(t.Root, "s3://") {
		return "", fmt.Errorf("%w: table %s would be at %q; pass --location s3://bucket/prefix", ErrNotS3, t.Name, t.Root)
	}
	if err := checkIcebergTable(t); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (\n", athenaIdent(t.Name))
	for i, f := range t.Columns {
		sep := ","
		if i == len(t.Columns)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  %s %s%s\n", athenaIdent(f.Name), athenaType(f.Type), sep)
	}
	fmt.Fprintf(&b, ")\nPARTITIONED BY (%s)\nLOCATION %s\nTBLPROPERTIES (\n  'table_type' = 'ICEBERG',\n  'format' = 'parquet'\n);\n",
		athenaIdent(IcebergPartitionSource), sqlString(strings.TrimSuffix(t.Root, "/")+"/"))
	return b.String(), nil
}

// DuckDBIcebergView returns a DuckDB view over an Iceberg table through the
// iceberg extension's iceberg_scan. metadata is the table's current
// metadata file (from the catalog, e.g. s3://.../metadata/00012-<uuid>.metadata.json):
// DuckDB finds a table's version at its root only through a
// version-hint.text file, which a catalog-managed table does not have, and
// guessing the newest metadata file could pick one a killed commit left.
// The view reads the snapshot current when the statement was made; re-run
// ddl after later runs (the purge deletes old metadata files, so a stale
// view fails rather than reading expired data). Empty metadata gives the
// table-root form, iceberg_scan('<table location>'), for a table that has
// a version hint.
func DuckDBIcebergView(t Table, metadata string) (string, error) {
	if err := checkIcebergTable(t); err != nil {
		return "", err
	}
	src := strings.TrimSuffix(t.Root, "/")
	if metadata != "" {
		if !strings.HasPrefix(metadata, src+"/metadata/") {
			return "", fmt.Errorf("table %s: metadata file %q is not under the table location %s", t.Name, metadata, src)
		}
		src = metadata
	}
	return fmt.Sprintf("CREATE OR REPLACE VIEW %s AS\n  SELECT * FROM iceberg_scan(%s);\n", duckIdent(t.Name), sqlString(src)), nil
}

// errNotIceberg is returned for a table an Iceberg lake keeps as files.
var errNotIceberg = errors.New("not an Iceberg table")

// checkIcebergTable refuses a table that is not a report dataset with the
// partition's source column as a DATE.
func checkIcebergTable(t Table) error {
	if t.Kind != ParquetTable {
		return fmt.Errorf("table %s: %w (only report datasets are)", t.Name, errNotIceberg)
	}
	if !slices.ContainsFunc(t.Columns, func(f Field) bool { return f.Name == IcebergPartitionSource && f.Type == Date }) {
		return fmt.Errorf("table %s: %w: no %s DATE column to partition by", t.Name, errNotIceberg, IcebergPartitionSource)
	}
	return nil
}
