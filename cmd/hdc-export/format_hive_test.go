//go:build !iceberg

package main

import (
	"errors"
	"strings"
	"testing"
)

// TestTableFormatNeedsTheTag: a binary built without the iceberg tag
// refuses an Iceberg lake with a usage error that says how to build one,
// and refuses an Iceberg block on a Hive lake and unknown formats.
func TestTableFormatNeedsTheTag(t *testing.T) {
	for _, tc := range []struct {
		sink SinkConfig
		want string
	}{
		{SinkConfig{TableFormat: "iceberg"}, "go build -tags iceberg"},
		{SinkConfig{TableFormat: "delta"}, `"delta" is not a table format`},
		{SinkConfig{Iceberg: IcebergConfig{CatalogType: "rest"}}, "sink.table_format is \"\", not iceberg"},
	} {
		cfg := &Config{Sink: tc.sink}
		_, err := openFormat(cfg, nil)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want a usage error with %q", tc.sink, err, tc.want)
		}
	}
	if f, err := openFormat(&Config{Sink: SinkConfig{TableFormat: "hive"}}, nil); f != nil || err != nil {
		t.Errorf("hive: %v, %v", f, err)
	}
}
