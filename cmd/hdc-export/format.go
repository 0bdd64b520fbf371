package main

import (
	"fmt"
)

// IcebergConfig places an Iceberg lake's catalog.
type IcebergConfig struct {
	// CatalogType is sql (the default), rest or glue.
	CatalogType string `yaml:"catalog_type"`
	// Catalog is the SQL catalog's SQLite file. Empty (the default) keeps
	// the catalog in the lake itself (_hdc/iceberg/catalog.db), so a runner
	// needs no local state and no setup.
	Catalog string `yaml:"catalog"`
	// CatalogProps configure a rest or glue catalog, with iceberg-go's
	// property names (uri, warehouse, glue.region, glue.id...). Secrets
	// (credential, token) come from HDC_ICEBERG_CREDENTIAL and
	// HDC_ICEBERG_TOKEN, not from the file.
	CatalogProps map[string]string `yaml:"catalog_props"`
}

// isZero reports whether nothing of the Iceberg block is set.
func (c IcebergConfig) isZero() bool {
	return c.CatalogType == "" && c.Catalog == "" && len(c.CatalogProps) == 0
}

// icebergTag is the build tag that links Iceberg support.
const icebergTag = "iceberg"

// checkTableFormat validates sink.table_format.
func checkTableFormat(sc SinkConfig) error {
	switch sc.TableFormat {
	case "", "hive":
		if !sc.Iceberg.isZero() {
			return usageError{fmt.Errorf("sink.iceberg is set but sink.table_format is %q, not iceberg", sc.TableFormat)}
		}
		return nil
	case "iceberg":
		if !icebergBuilt {
			return usageError{fmt.Errorf("sink.table_format: iceberg needs a binary built with the %q build tag (go build -tags %s ./cmd/hdc-export); this one has plain Hive files only", icebergTag, icebergTag)}
		}
		return nil
	}
	return usageError{fmt.Errorf("sink.table_format: %q is not a table format (want hive or iceberg)", sc.TableFormat)}
}
