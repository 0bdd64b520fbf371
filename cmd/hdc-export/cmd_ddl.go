package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/hdc-export/hdc-export/schema"
)

// cmdDDL prints, for each configured dataset, the Athena CREATE EXTERNAL
// TABLE (partition projection on date) and the DuckDB view.
func cmdDDL(_ context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("ddl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "configs/demo.yaml", "config file")
	location := fs.String("location", "", "lake root for the DDL (default: the sink URL; s3:// for Athena)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	cfg, err := LoadStorageConfig(*configPath, getenv)
	if err != nil {
		return usageError{err}
	}
	root := *location
	if root == "" {
		t, err := parseSinkURL(cfg.Sink.URL)
		if err != nil {
			return usageError{err}
		}
		switch t.scheme {
		case "s3":
			root = "s3://" + t.bucket + "/" + t.prefix
		default:
			if root, err = filepath.Abs(t.path); err != nil {
				return err
			}
		}
	}
	root = strings.TrimSuffix(root, "/")
	for _, r := range cfg.Pipeline.Reports {
		ds, err := schema.Lookup(r.Template.View)
		if err != nil {
			return err
		}
		l, err := schema.Bind(ds, r.Template.Columns())
		if err != nil {
			return fmt.Errorf("report %s: %w", r.Name, err)
		}
		loc := root + "/" + r.Name
		fmt.Fprintf(stdout, "-- %s (%s): Athena\n%s\n-- %s: DuckDB\n%s\n", r.Name, ds.View,
			l.AthenaDDL(r.Name, loc, cfg.Pipeline.Retention.Days), r.Name, schema.DuckDBView(r.Name, loc))
	}
	return nil
}
