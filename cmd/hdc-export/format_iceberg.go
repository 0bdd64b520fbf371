//go:build iceberg

package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"github.com/apache/iceberg-go/table"

	"github.com/hdc-export/hdc-export/internal/lake/iceberg"
	"github.com/hdc-export/hdc-export/pipeline"
	"github.com/hdc-export/hdc-export/sinks"
	"github.com/hdc-export/hdc-export/sinks/s3"
)

// icebergBuilt reports whether this binary links Iceberg support.
const icebergBuilt = true

// openFormat returns the lake's table format: nil for plain Hive files, or
// the Iceberg tables on the sink's own storage (the same folder or bucket
// and prefix).
func openFormat(cfg *Config, sink sinks.Sink) (pipeline.TableFormat, error) {
	if err := checkTableFormat(cfg.Sink); err != nil || cfg.Sink.TableFormat != "iceberg" {
		return nil, err
	}
	t, err := parseSinkURL(cfg.Sink.URL)
	if err != nil {
		return nil, usageError{fmt.Errorf("sink.url: %w", err)}
	}
	ic := iceberg.Config{Catalog: cfg.Sink.Iceberg.Catalog, CatalogType: cfg.Sink.Iceberg.CatalogType,
		CatalogProps: maps.Clone(cfg.Sink.Iceberg.CatalogProps), TempDir: cfg.Pipeline.TempDir}
	for prop, env := range map[string]string{"credential": "HDC_ICEBERG_CREDENTIAL", "token": "HDC_ICEBERG_TOKEN"} {
		if _, inFile := ic.CatalogProps[prop]; inFile {
			return nil, usageError{fmt.Errorf("sink.iceberg.catalog_props.%s: a secret does not belong in the file; set %s", prop, env)}
		}
		if v := os.Getenv(env); v != "" {
			if ic.CatalogProps == nil {
				ic.CatalogProps = map[string]string{}
			}
			ic.CatalogProps[prop] = v
		}
	}
	switch t.scheme {
	case "file":
		abs, err := filepath.Abs(t.path)
		if err != nil {
			return nil, fmt.Errorf("sink.url: %w", err)
		}
		ic.Warehouse = "file://" + filepath.ToSlash(abs)
	case "s3":
		ic.Warehouse = "s3://" + t.bucket
		if t.prefix != "" {
			ic.Warehouse += "/" + t.prefix
		}
		sc := cfg.Sink.S3
		region := sc.Region
		if region == "" {
			region = s3.DefaultRegion
		}
		ic.Props = map[string]string{"s3.region": region}
		if sc.Endpoint != "" {
			ic.Props["s3.endpoint"] = sc.Endpoint
		}
	}
	f, err := iceberg.New(ic, sink)
	if err != nil {
		return nil, usageError{fmt.Errorf("sink.iceberg: %w", err)}
	}
	return f, nil
}

// icebergMetadata returns a lookup of a dataset's current metadata file in
// the lake's catalog ("" for a table with none yet).
func icebergMetadata(ctx context.Context, cfg *Config, sink sinks.Sink) (func(string) (string, error), error) {
	tf, err := openFormat(cfg, sink)
	if err != nil {
		return nil, err
	}
	f, ok := tf.(*iceberg.Format)
	if !ok {
		return nil, fmt.Errorf("ddl: the lake's table format is not iceberg")
	}
	return func(dataset string) (string, error) {
		loc := ""
		err := f.Read(ctx, dataset, func(t *table.Table) error {
			if t != nil && t.CurrentSnapshot() != nil {
				loc = t.MetadataLocation()
			}
			return nil
		})
		return loc, err
	}, nil
}
