package main

import (
	"fmt"
)

// IcebergConfig places an Iceberg lake's SQL catalog (SQLite).
type IcebergConfig struct {
	// Catalog is the SQLite file's path. Empty (the default) keeps the
	// catalog in the lake itself (_hdc/iceberg/catalog.db), so a runner
	// needs no local state and no setup.
	Catalog string `yaml:"catalog"`
}

// icebergTag is the build tag that links Iceberg support.
const icebergTag = "iceberg"

// checkTableFormat validates sink.table_format.
func checkTableFormat(sc SinkConfig) error {
	switch sc.TableFormat {
	case "", "hive":
		if sc.Iceberg != (IcebergConfig{}) {
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
