package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/hdc-export/hdc-export/schema"
	"github.com/hdc-export/hdc-export/sinks"
)

// printIcebergDDL prints the DDL of an Iceberg lake's report tables:
// Athena's CREATE TABLE for an Iceberg table registered in Glue, and a
// DuckDB view through iceberg_scan of each table's current metadata file.
// The cab index and the quarantine stay plain files, and get the Hive
// DDL from the caller.
func printIcebergDDL(ctx context.Context, w io.Writer, tables []ddlTable, athena, duck bool, cfg *Config, sink sinks.Sink) ([]ddlTable, error) {
	var rest []ddlTable
	var ice []ddlTable
	reports := map[string]bool{}
	for _, r := range cfg.Pipeline.Reports {
		reports[r.Name] = true
	}
	for _, t := range tables {
		if t.Kind == schema.ParquetTable && reports[t.Name] {
			ice = append(ice, t)
		} else {
			rest = append(rest, t)
		}
	}
	if athena {
		for _, t := range ice {
			ddl, err := schema.AthenaIcebergDDL(t.Table)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(w, "-- %s: Athena, an Iceberg table registered in Glue (Athena reads the snapshots committed through the Glue catalog)\n%s\n", t.Name, ddl)
		}
	}
	if duck {
		meta, err := icebergMetadata(ctx, cfg, sink)
		if err != nil {
			return nil, err
		}
		for _, t := range ice {
			loc, err := meta(t.Name)
			if err != nil {
				return nil, err
			}
			if !strings.Contains(t.Root, "://") { // a folder: DuckDB takes its path
				loc = strings.TrimPrefix(loc, "file://")
			}
			view, err := schema.DuckDBIcebergView(t.Table, loc)
			if err != nil {
				return nil, err
			}
			if loc == "" {
				fmt.Fprintf(w, "-- %s: DuckDB (the table has no snapshot yet: run ddl again after its first run)\n", t.Name)
				view = "-- " + strings.ReplaceAll(strings.TrimSuffix(view, "\n"), "\n", "\n-- ") + "\n"
			} else {
				fmt.Fprintf(w, "-- %s: DuckDB (INSTALL iceberg; LOAD iceberg; the snapshot current now: run ddl again after later runs)\n", t.Name)
			}
			fmt.Fprintf(w, "%s\n", view)
		}
	}
	return rest, nil
}
