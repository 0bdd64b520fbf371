package schema

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// TableKind is how a table's files are stored.
type TableKind int

const (
	// ParquetTable is a Parquet table partitioned by date=YYYY-MM-DD: a
	// report dataset or the cab index.
	ParquetTable TableKind = iota
	// QuarantineTable is the bad rows' TSV files,
	// <root>/<dataset>/date=YYYY-MM-DD/<report>-<run>.tsv: a header line,
	// then line, column, reason and the raw record's fields, tab-separated.
	QuarantineTable
)

// QuarantineTableName is the name the DDL gives the quarantine table.
const QuarantineTableName = "quarantine"

// Table is one table of the lake as the DDL describes it.
type Table struct {
	Name string
	// Root is the table's folder or URL (s3://bucket/prefix/<table>, or a
	// local path for DuckDB), without a trailing slash.
	Root string
	Kind TableKind
	// Columns are the data columns in file order; the partition columns
	// (date, and dataset for the quarantine) are not among them.
	Columns []Field
	// Added are the columns that compatible schema changes added after
	// the table's first run (each also in Columns), in the order added.
	Added []Field
	// Datasets are the quarantine's dataset folders (Athena projects them
	// as an enum); only for QuarantineTable.
	Datasets []string
}

// ReportTable is a report dataset's table at root: the columns of its
// configured layout, then the known columns its layout lacks (from the
// dataset's schema record), with those that schema changes added marked.
func ReportTable(name, root string, l *Layout, known []Field, added []string) Table {
	t := Table{Name: name, Root: root, Kind: ParquetTable}
	seen := map[string]bool{}
	for _, f := range l.Fields {
		t.Columns = append(t.Columns, f)
		seen[f.Name] = true
	}
	for _, f := range known {
		if !seen[f.Name] {
			t.Columns = append(t.Columns, f)
			seen[f.Name] = true
		}
	}
	for _, name := range added {
		if i := slices.IndexFunc(t.Columns, func(f Field) bool { return f.Name == name }); i >= 0 &&
			!slices.ContainsFunc(t.Added, func(f Field) bool { return f.Name == name }) {
			t.Added = append(t.Added, t.Columns[i])
		}
	}
	return t
}

// CabIndexTableAt is the cab index's table at root.
func CabIndexTableAt(root string) Table {
	return Table{Name: CabIndexTable, Root: root, Kind: ParquetTable, Columns: slices.Clone(cabIndexLayout.Fields)}
}

// QuarantineTableAt is the quarantine's table at root (the lake's
// _hdc/quarantine folder) over the given dataset folders. Its columns are
// the TSV's line, column (as column_name) and reason, and fields: the rest
// of the line, the raw record's fields as the TSV holds them (tab-separated,
// quoted where a field holds a tab, quote or line break). A record whose
// fields hold a line break is split across two rows.
func QuarantineTableAt(root string, datasets []string) Table {
	return Table{Name: QuarantineTableName, Root: root, Kind: QuarantineTable, Datasets: slices.Clone(datasets),
		Columns: []Field{{Name: "line", Type: Int64}, {Name: "column_name", Type: String}, {Name: "reason", Type: String}, {Name: "fields", Type: String}}}
}

// quarantineRegex splits a quarantine TSV line into line, column, reason
// and the rest. Athena's RegexSerDe and DuckDB's regexp_extract read the
// same pattern; '\t' is a tab to both (unescaped by Hive's parser, or read
// as the regular expression escape).
const quarantineRegex = `^([^\t]*)\t([^\t]*)\t([^\t]*)\t?(.*)$`

// Projection is the span of partition dates Athena projects, relative to
// the UTC day a query runs: from Back days before it through Ahead days
// after it, both included. The caller derives it from the retention window
// (lake.Window), so Athena looks exactly where the lake may hold data.
type Projection struct{ Back, Ahead int }

// Range is the projection.date.range value, e.g. "NOW-29DAYS,NOW+1DAYS".
func (p Projection) Range() string {
	rel := func(n int) string {
		switch {
		case n > 0:
			return fmt.Sprintf("NOW+%dDAYS", n)
		case n < 0:
			return fmt.Sprintf("NOW-%dDAYS", -n)
		}
		return "NOW"
	}
	return rel(-p.Back) + "," + rel(p.Ahead)
}

// ErrNotS3 is returned for an Athena table whose root is not an s3:// URL:
// Athena reads S3 only, and a local folder in LOCATION would be wrong.
var ErrNotS3 = errors.New("Athena reads tables from S3 only")

// athenaType maps a lake type to Athena (Hive) DDL: as SQL names it (see
// Type.String), but STRING for strings. Timestamps are Parquet INT64
// milliseconds adjusted to UTC, which Athena reads as TIMESTAMP.
func athenaType(t Type) string {
	if t == String {
		return "STRING"
	}
	return t.String()
}

// athenaIdent quotes a name for Athena DDL (backticks; `date` is reserved).
func athenaIdent(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// AthenaDDL returns CREATE EXTERNAL TABLE for t, partitioned by `date`
// DATE with partition projection over p (so no MSCK REPAIR or crawler is
// needed), and for the quarantine also by `dataset` (an enum of
// t.Datasets). Athena's projection type only formats partition values; the
// column's declared type, DATE, is what queries see, as in DuckDB. It
// fails with ErrNotS3 unless t.Root is an s3:// URL.
func AthenaDDL(t Table, p Projection) (string, error) {
	if !strings.HasPrefix(t.Root, "s3://") {
		return "", fmt.Errorf("%w: table %s would be at %q; pass --location s3://bucket/prefix (where the lake is, or is copied to)", ErrNotS3, t.Name, t.Root)
	}
	loc := t.Root + "/"
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE EXTERNAL TABLE IF NOT EXISTS %s (\n", athenaIdent(t.Name))
	for i, f := range t.Columns {
		sep := ","
		if i == len(t.Columns)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  %s %s%s\n", athenaIdent(f.Name), athenaType(f.Type), sep)
	}
	var props [][2]string
	template := loc + "date=${date}/"
	switch t.Kind {
	case ParquetTable:
		b.WriteString(")\nPARTITIONED BY (`date` DATE)\nSTORED AS PARQUET\n")
	case QuarantineTable:
		if len(t.Datasets) == 0 {
			return "", fmt.Errorf("table %s: no dataset to project", t.Name)
		}
		b.WriteString(")\nPARTITIONED BY (`dataset` STRING, `date` DATE)\n")
		b.WriteString("ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.RegexSerDe'\n")
		fmt.Fprintf(&b, "WITH SERDEPROPERTIES ('input.regex' = %s)\nSTORED AS TEXTFILE\n", sqlString(quarantineRegex))
		props = append(props, [][2]string{
			{"skip.header.line.count", "1"},
			{"projection.dataset.type", "enum"},
			{"projection.dataset.values", strings.Join(t.Datasets, ",")},
		}...)
		template = loc + "${dataset}/date=${date}/"
	}
	fmt.Fprintf(&b, "LOCATION %s\nTBLPROPERTIES (\n", sqlString(loc))
	props = append([][2]string{{"projection.enabled", "true"}}, props...)
	props = append(props, [][2]string{
		{"projection.date.type", "date"},
		{"projection.date.format", "yyyy-MM-dd"},
		{"projection.date.range", p.Range()},
		{"projection.date.interval", "1"},
		{"projection.date.interval.unit", "DAYS"},
		{"storage.location.template", template},
	}...)
	for i, p := range props {
		sep := ","
		if i == len(props)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  %s = %s%s\n", sqlString(p[0]), sqlString(p[1]), sep)
	}
	b.WriteString(");\n")
	return b.String(), nil
}

// AthenaAddColumns returns the schema-change path for an Athena table
// created before schema changes added columns (CREATE ... IF NOT EXISTS
// leaves an existing table alone): ALTER TABLE ADD COLUMNS with t.Added.
// It returns "" when no column was added.
func AthenaAddColumns(t Table) string {
	if len(t.Added) == 0 {
		return ""
	}
	cols := make([]string, len(t.Added))
	for i, f := range t.Added {
		cols[i] = athenaIdent(f.Name) + " " + athenaType(f.Type)
	}
	return fmt.Sprintf("ALTER TABLE %s ADD COLUMNS (%s);\n", athenaIdent(t.Name), strings.Join(cols, ", "))
}

// duckIdent quotes a name for DuckDB.
func duckIdent(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// DuckDBView returns a DuckDB view over t.Root (a local folder or any URL
// DuckDB reads), with the Hive `date` partition typed DATE as in Athena.
// Parquet files are read with union_by_name, so files written before a
// schema change read the added columns as NULL; re-running the statement
// (CREATE OR REPLACE) is the whole schema-change path.
func DuckDBView(t Table) string {
	root := strings.TrimSuffix(t.Root, "/")
	if t.Kind == QuarantineTable {
		// read_text takes no options: dataset and date come from the path.
		return fmt.Sprintf(`CREATE OR REPLACE VIEW %s AS
  SELECT TRY_CAST(f.line AS BIGINT) AS line, f.column_name, f.reason, f.fields, dataset, "date"
  FROM (SELECT regexp_extract(raw, %s, ['line', 'column_name', 'reason', 'fields']) AS f,
          regexp_extract(filename, '([^/\\]+)[/\\]date=[^/\\]*[/\\][^/\\]*$', 1) AS dataset,
          CAST(regexp_extract(filename, '[/\\]date=([0-9]{4}-[0-9]{2}-[0-9]{2})[/\\][^/\\]*$', 1) AS DATE) AS "date"
        FROM (SELECT filename, unnest(string_split(content, chr(10))[2:]) AS raw FROM read_text(%s))
        WHERE raw <> '');
`, duckIdent(t.Name), sqlString(quarantineRegex), sqlString(root+"/*/date=*/*.tsv"))
	}
	return fmt.Sprintf("CREATE OR REPLACE VIEW %s AS\n  SELECT * FROM read_parquet(%s, hive_partitioning = true, hive_types = {'date': DATE}, union_by_name = true);\n",
		duckIdent(t.Name), sqlString(root+"/date=*/*.parquet"))
}

// S3Secret is what DuckDB needs to read an S3 lake. It holds no
// credentials: DuckDBSecret prints placeholders for them.
type S3Secret struct {
	Scope    string // s3://bucket/prefix the secret applies to
	Region   string
	Endpoint string // base URL of an S3-compatible store; "" for AWS
	// PathStyle selects path-style URLs, as the sink uses them (MinIO and
	// most self-hosted stores need them).
	PathStyle bool
}

// DuckDBSecret returns DuckDB's CREATE SECRET for s. The key id and secret
// are shell-style placeholders for the AWS SDK's variables
// (${AWS_ACCESS_KEY_ID}, ${AWS_SECRET_ACCESS_KEY}), to be substituted
// when the statement runs (for example by envsubst), so that no credential
// is ever printed or stored with the DDL.
func DuckDBSecret(s S3Secret) (string, error) {
	var b strings.Builder
	b.WriteString("CREATE OR REPLACE SECRET hdc_lake (\n  TYPE S3,\n  KEY_ID '${AWS_ACCESS_KEY_ID}',\n  SECRET '${AWS_SECRET_ACCESS_KEY}',\n")
	region := s.Region
	if region == "" {
		region = "us-east-1"
	}
	fmt.Fprintf(&b, "  REGION %s,\n", sqlString(region))
	if s.Endpoint != "" {
		scheme, host, ok := strings.Cut(s.Endpoint, "://")
		if !ok || host == "" || (scheme != "http" && scheme != "https") {
			return "", fmt.Errorf("S3 endpoint %q: want http://host[:port] or https://host[:port]", s.Endpoint)
		}
		host = strings.TrimSuffix(host, "/")
		if strings.Contains(host, "/") {
			return "", fmt.Errorf("S3 endpoint %q: DuckDB takes a host and port only, no path", s.Endpoint)
		}
		fmt.Fprintf(&b, "  ENDPOINT %s,\n  USE_SSL %t,\n", sqlString(host), scheme == "https")
	}
	if s.PathStyle {
		b.WriteString("  URL_STYLE 'path',\n")
	}
	fmt.Fprintf(&b, "  SCOPE %s\n);\n", sqlString(strings.TrimSuffix(s.Scope, "/")))
	return b.String(), nil
}

// ParseType is the inverse of Type.String ("VARCHAR", "BIGINT", ...), for
// the types that records such as a dataset's schema record hold.
func ParseType(s string) (Type, error) {
	for _, t := range []Type{String, Int64, Float64, Date, Timestamp} {
		if t.String() == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown column type %q", s)
}
