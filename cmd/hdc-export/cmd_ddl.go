package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/schema"
	"github.com/hdc-export/hdc-export/sinks"
)

// cmdDDL prints the DDL of every table the lake holds: each configured
// dataset, cab_index and the quarantine, for Athena (CREATE EXTERNAL TABLE
// with partition projection over the retention window, and ALTER TABLE ADD
// COLUMNS for columns that schema changes added) and for DuckDB (CREATE
// SECRET for an S3 lake, and a view per table). It reads the lake for the
// datasets' schema history and for which tables hold files yet.
func cmdDDL(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("ddl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "configs/demo.yaml", "config file")
	location := fs.String("location", "", "lake root the tables point at, e.g. s3://bucket/prefix or a folder (default: the sink's URL)")
	engine := fs.String("engine", "all", "athena, duckdb or all")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	athena, duck := *engine == "all" || *engine == "athena", *engine == "all" || *engine == "duckdb"
	if !athena && !duck {
		return usageError{fmt.Errorf("--engine %q: want athena, duckdb or all", *engine)}
	}
	cfg, err := LoadStorageConfig(*configPath, getenv)
	if err != nil {
		return usageError{err}
	}
	t, err := parseSinkURL(cfg.Sink.URL)
	if err != nil {
		return usageError{fmt.Errorf("sink.url: %w", err)}
	}
	root, err := ddlRoot(*location, t)
	if err != nil {
		return usageError{err}
	}
	if athena && !strings.HasPrefix(root, "s3://") {
		msg := fmt.Sprintf("Athena DDL not printed: Athena reads S3 only, and the lake root %s is a local folder; pass --location s3://bucket/prefix (where the lake is copied to)", root)
		if *engine == "athena" {
			return usageError{errors.New(msg)}
		}
		athena = false
		fmt.Fprintln(stderr, msg)
		fmt.Fprintf(stdout, "-- %s\n\n", msg)
	}
	sink, err := openSink(ctx, cfg.Sink, nil)
	if err != nil {
		return err
	}
	tables, err := lakeTables(ctx, sink, cfg, root)
	if err != nil {
		return err
	}
	if cfg.Sink.TableFormat == "iceberg" { // its report datasets are Iceberg tables (ddl_iceberg.go)
		if tables, err = printIcebergDDL(ctx, stdout, tables, athena, duck, cfg, sink); err != nil {
			return err
		}
	}
	if athena {
		w := lake.NewWindow(time.Now(), cfg.Pipeline.Retention.Days)
		if err := printAthena(stdout, tables, projectionOf(w, time.Now())); err != nil {
			return err
		}
	}
	if duck {
		return printDuckDB(stdout, tables, cfg, root, getenv)
	}
	return nil
}

// ddlRoot is the lake root the tables point at, without a trailing slash:
// --location if given (a folder made absolute), else the sink's URL.
func ddlRoot(location string, t sinkTarget) (string, error) {
	root := location
	switch {
	case root == "" && t.scheme == "s3":
		root = "s3://" + t.bucket + "/" + t.prefix
	case root == "":
		root = t.path
	}
	if !strings.Contains(root, "://") {
		abs, err := filepath.Abs(root)
		if err != nil {
			return "", fmt.Errorf("--location: %w", err)
		}
		return abs, nil
	}
	if !strings.HasPrefix(root, "s3://") {
		return "", fmt.Errorf("--location %q: want s3://bucket/prefix or a folder", location)
	}
	return strings.TrimSuffix(root, "/"), nil
}

// projectionOf is the retention window w as an Athena date projection on
// the UTC day of now: the first projected date is w.First, the oldest date
// kept, and the last is w.Last.
func projectionOf(w lake.Window, now time.Time) schema.Projection {
	today := lake.DateOf(now)
	return schema.Projection{Back: int(today - w.First), Ahead: int(w.Last - today)}
}

// ddlTable is a table and whether the lake holds any of its files yet.
type ddlTable struct {
	schema.Table
	empty bool
}

// lakeTables describes every table of the lake at root: the configured
// datasets (their configured columns widened by their schema history),
// cab_index and the quarantine.
func lakeTables(ctx context.Context, sink sinks.Sink, cfg *Config, root string) ([]ddlTable, error) {
	var tables []ddlTable
	var names []string
	for _, r := range cfg.Pipeline.Reports {
		ds, err := schema.Lookup(r.Template.View)
		if err != nil {
			return nil, err
		}
		l, err := schema.Bind(ds, r.Template.Columns())
		if err != nil {
			return nil, fmt.Errorf("report %s: %w", r.Name, err)
		}
		h, err := lake.ReadSchemaHistory(ctx, sink, r.Name)
		if err != nil {
			return nil, err
		}
		var known []schema.Field
		for _, name := range slices.Sorted(maps.Keys(h.Columns)) {
			typ, err := schema.ParseType(h.Columns[name])
			if err != nil {
				return nil, fmt.Errorf("schema record of %s: column %s: %w", r.Name, name, err)
			}
			known = append(known, schema.Field{Name: name, Type: typ})
		}
		tables = append(tables, ddlTable{Table: schema.ReportTable(r.Name, root+"/"+r.Name, l, known, h.Added)})
		names = append(names, r.Name)
	}
	tables = append(tables, ddlTable{Table: schema.CabIndexTableAt(root + "/" + lake.CabIndexDir)})
	tables = append(tables, ddlTable{Table: schema.QuarantineTableAt(root+"/"+lake.QuarantineDir, names)})
	for i, t := range tables {
		prefix := strings.TrimPrefix(t.Root, root+"/") + "/"
		has, err := lake.HasObjects(ctx, sink, prefix)
		if err != nil {
			return nil, err
		}
		tables[i].empty = !has
	}
	return tables, nil
}

// printAthena prints each table's CREATE EXTERNAL TABLE and, where columns
// were added, the ALTER TABLE for a table created before them.
func printAthena(w io.Writer, tables []ddlTable, p schema.Projection) error {
	for _, t := range tables {
		ddl, err := schema.AthenaDDL(t.Table, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "-- %s: Athena\n%s\n", t.Name, ddl)
		if alter := schema.AthenaAddColumns(t.Table); alter != "" {
			fmt.Fprintf(w, "-- %s: Athena, columns added after its first run (for a table created before them)\n%s\n", t.Name, alter)
		}
	}
	return nil
}

// printDuckDB prints CREATE SECRET for an S3 root, then each table's view.
// A table with no file yet gets its view commented out: DuckDB refuses a
// view over a glob that matches nothing.
func printDuckDB(w io.Writer, tables []ddlTable, cfg *Config, root string, getenv func(string) string) error {
	if strings.HasPrefix(root, "s3://") {
		s := schema.S3Secret{Scope: root, Region: cfg.Sink.S3.Region, Endpoint: cfg.Sink.S3.Endpoint, PathStyle: cfg.Sink.S3.PathStyle}
		if s.Endpoint == "" { // the SDK's own variables (see the README)
			s.Endpoint = cmp.Or(getenv("AWS_ENDPOINT_URL_S3"), getenv("AWS_ENDPOINT_URL"))
		}
		secret, err := schema.DuckDBSecret(s)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "-- DuckDB: S3 secret (httpfs; substitute the ${AWS_…} placeholders when you run it, e.g. with envsubst)\n%s\n", secret)
	}
	for _, tb := range tables {
		view := schema.DuckDBView(tb.Table)
		if tb.empty {
			fmt.Fprintf(w, "-- %s: DuckDB (the lake holds no %s file yet, and DuckDB refuses a view over no file: run ddl again once it has one)\n", tb.Name, tb.Name)
			view = "-- " + strings.ReplaceAll(strings.TrimSuffix(view, "\n"), "\n", "\n-- ") + "\n"
		} else {
			fmt.Fprintf(w, "-- %s: DuckDB\n", tb.Name)
		}
		fmt.Fprintf(w, "%s\n", view)
	}
	return nil
}
