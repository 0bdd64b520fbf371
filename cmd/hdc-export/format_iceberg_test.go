//go:build iceberg

package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hdc-export/hdc-export/internal/lake/iceberg/icebergtest"
	"github.com/hdc-export/hdc-export/sinks/local"
)

// TestIcebergSecretsFromEnvironment: a REST catalog's token reaches the
// catalog from HDC_ICEBERG_TOKEN, and only from there: in the file it is a
// usage error, and without it the catalog refuses the session.
func TestIcebergSecretsFromEnvironment(t *testing.T) {
	rest := icebergtest.StartREST(t, nil)
	rest.Token = "s3cret-token"
	dir := t.TempDir()
	sink, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	config := func(props map[string]string) *Config {
		var cfg Config
		cfg.Sink.URL = dir
		cfg.Sink.TableFormat = "iceberg"
		cfg.Sink.Iceberg = IcebergConfig{CatalogType: "rest", CatalogProps: props}
		cfg.Pipeline.TempDir = t.TempDir()
		return &cfg
	}
	lookup := func(cfg *Config) error {
		current, err := icebergMetadata(context.Background(), cfg, sink)
		if err != nil {
			return err
		}
		_, err = current("ihv_driver")
		return err
	}

	t.Setenv("HDC_ICEBERG_TOKEN", "")
	if err := lookup(config(map[string]string{"uri": rest.URL})); err == nil {
		t.Error("a session without the token was accepted")
	}
	t.Setenv("HDC_ICEBERG_TOKEN", rest.Token)
	if err := lookup(config(map[string]string{"uri": rest.URL})); err != nil {
		t.Errorf("with HDC_ICEBERG_TOKEN: %v", err)
	}
	err = lookup(config(map[string]string{"uri": rest.URL, "token": rest.Token}))
	var usage usageError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "HDC_ICEBERG_TOKEN") || strings.Contains(err.Error(), rest.Token) {
		t.Errorf("a token in the file: %v, want a usage error naming HDC_ICEBERG_TOKEN and not the token", err)
	}
}
