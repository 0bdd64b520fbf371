//go:build !iceberg

package main

import (
	"context"

	"github.com/hdc-export/hdc-export/pipeline"
	"github.com/hdc-export/hdc-export/sinks"
)

// icebergBuilt reports whether this binary links Iceberg support.
const icebergBuilt = false

// openFormat returns the lake's table format: in this build, plain Hive
// files only, and an error naming the build tag for iceberg.
func openFormat(cfg *Config, _ sinks.Sink) (pipeline.TableFormat, error) {
	return nil, checkTableFormat(cfg.Sink)
}

// icebergMetadata is unavailable in this build (see openFormat).
func icebergMetadata(_ context.Context, cfg *Config, _ sinks.Sink) (func(string) (string, error), error) {
	return nil, checkTableFormat(cfg.Sink)
}
