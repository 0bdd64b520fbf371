//go:build iceberg

// Package iceberg keeps a lake's datasets as Apache Iceberg tables (format
// v2, partitioned by identity on failure_date, named "date"), through
// github.com/apache/iceberg-go: by default with its SQL catalog on SQLite
// (pure Go, modernc.org/sqlite), or with a REST or Glue catalog. It is a table format as ARCHITECTURE.md describes
// one: a run's partitions become visible in one snapshot commit, and an
// expired date is destroyed by dropping it from the table, expiring every
// snapshot that still references it, and deleting what no snapshot
// reaches. It is built only with the "iceberg" build tag, so that the
// default binary does not link iceberg-go.
//
// Layout, under the sink's root (the warehouse):
//
//	<dataset>/data/date=YYYY-MM-DD/<run>.parquet   data files, one per date and run, never rewritten
//	<dataset>/metadata/...                          table metadata, manifest lists, manifests
//	_hdc/iceberg/catalog.db                         the SQLite catalog, unless a path is configured
package iceberg

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	_ "github.com/apache/iceberg-go/catalog/glue" // catalog type "glue"
	_ "github.com/apache/iceberg-go/catalog/rest" // catalog type "rest"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // s3:// warehouses
	"github.com/apache/iceberg-go/table"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"

	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/sinks"
)

const (
	// Namespace holds every table of a lake.
	Namespace = "hdc"
	// CatalogKey is where the catalog lives in the lake's state when no
	// path is configured.
	CatalogKey = lake.StateDir + "/iceberg/catalog.db"
	// RunProperty, in a snapshot's summary, names the run it committed.
	RunProperty = "hdc.run"
	// PartitionField is the partition's name; its source is SourceColumn.
	PartitionField = "date"
	SourceColumn   = "failure_date"
	partitionID    = 1000
	tempPrefix     = "hdc-export-iceberg-" // swept by the pipeline like its spill folders
)

// Config places a lake's tables.
type Config struct {
	// Warehouse is the URL of the sink's root: file:///abs/path or
	// s3://bucket/prefix, with no trailing slash.
	Warehouse string
	// Props are iceberg-go's file IO properties (s3.endpoint, s3.region,
	// s3.force-virtual-addressing...). Credentials come from the AWS SDK's
	// standard chain.
	Props map[string]string
	// Catalog is the SQLite file's path; empty keeps it in the lake at
	// CatalogKey, so a runner keeps no local state. Only for CatalogType
	// "sql".
	Catalog string
	// CatalogType is "sql" (the default when empty), "rest" or "glue".
	CatalogType string
	// CatalogProps are the REST or Glue catalog's properties, as iceberg-go
	// names them: uri, credential, token, warehouse, glue.region,
	// glue.id... They are never logged.
	CatalogProps map[string]string
	// TempDir holds the catalog's local copy while it is used.
	TempDir string
}

// Format is the Iceberg table format of one lake.
type Format struct {
	cfg  Config
	sink sinks.Sink
}

// New returns the format of the lake that sink holds.
func New(cfg Config, sink sinks.Sink) (*Format, error) {
	cfg.Warehouse = strings.TrimSuffix(cfg.Warehouse, "/")
	if !strings.HasPrefix(cfg.Warehouse, "file:///") && !strings.HasPrefix(cfg.Warehouse, "s3://") {
		return nil, fmt.Errorf("iceberg: warehouse %q is neither file:/// nor s3://", cfg.Warehouse)
	}
	switch cfg.CatalogType {
	case "", "sql":
		if len(cfg.CatalogProps) > 0 {
			return nil, errors.New("iceberg: catalog properties are for a rest or glue catalog; the sql catalog takes a path only")
		}
	case "rest":
		if cfg.CatalogProps["uri"] == "" {
			return nil, errors.New("iceberg: a rest catalog needs its uri property")
		}
		fallthrough
	case "glue":
		if cfg.Catalog != "" {
			return nil, fmt.Errorf("iceberg: a catalog path is for the sql catalog, not %s", cfg.CatalogType)
		}
	default:
		return nil, fmt.Errorf("iceberg: catalog type %q is not sql, rest or glue", cfg.CatalogType)
	}
	return &Format{cfg: cfg, sink: sink}, nil
}

// DataKey is date d's data file of run: a new key per run, so a file a
// snapshot references is never rewritten.
func (f *Format) DataKey(dataset string, d lake.Date, run string) string {
	return dataset + "/data/date=" + d.String() + "/" + run + ".parquet"
}

// metadataKeys are the shapes of the files iceberg-go writes under a
// table's metadata folder.
var metadataKeys = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}/metadata/[A-Za-z0-9._-]+\.(metadata\.json|avro)$`)

// IsState reports whether an undated key is the format's: the catalog, or
// a table's metadata. They hold paths, counts and column bounds, and are
// kept clean of out-of-window dates by Expire.
func (f *Format) IsState(key string) bool {
	return key == CatalogKey || metadataKeys.MatchString(key)
}

// location is a key's URL in the warehouse.
func (f *Format) location(key string) string { return f.cfg.Warehouse + "/" + key }

// keyOf is the inverse of location; ok is false for a URL outside the
// warehouse.
func (f *Format) keyOf(loc string) (string, bool) {
	return strings.CutPrefix(loc, f.cfg.Warehouse+"/")
}

func ident(dataset string) table.Identifier { return table.Identifier{Namespace, dataset} }

// catalogT is the catalog a session works with.
type catalogT = catalog.Catalog

// session opens the catalog, runs fn, and closes it. With the SQL catalog
// in the lake's state, it works on a local copy, put back after fn when
// write is set and the file changed: a crash before that leaves the lake's
// catalog at its old snapshot, whose files are all still there. A REST or
// Glue catalog is the service's: the session opens a client.
func (f *Format) session(ctx context.Context, write bool, fn func(catalogT) error) (err error) {
	if t := f.cfg.CatalogType; t == "rest" || t == "glue" {
		props := iceberg.Properties{}
		maps.Copy(props, f.cfg.Props) // file IO, for the tables' files
		maps.Copy(props, f.cfg.CatalogProps)
		props["type"] = t
		cat, err := catalog.Load(ctx, "hdc", props)
		if err != nil {
			return fmt.Errorf("iceberg: open the %s catalog: %w", t, err)
		}
		err = fn(cat)
		if c, ok := cat.(catalog.Closer); ok {
			err = errors.Join(err, c.Close())
		}
		return err
	}
	path := f.cfg.Catalog
	var before [32]byte
	if path == "" {
		dir, err := os.MkdirTemp(f.cfg.TempDir, tempPrefix)
		if err != nil {
			return fmt.Errorf("iceberg: catalog copy: %w", err)
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "catalog.db")
		if before, err = f.fetchCatalog(ctx, path); err != nil {
			return err
		}
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("iceberg: open catalog: %w", err)
	}
	cat, err := sqlcat.NewCatalog("hdc", db, sqlcat.SQLite, iceberg.Properties(f.cfg.Props))
	if err != nil {
		db.Close()
		return fmt.Errorf("iceberg: open catalog: %w", err)
	}
	err = fn(cat)
	err = errors.Join(err, cat.Close(), db.Close())
	if err != nil || !write || f.cfg.Catalog != "" {
		return err
	}
	return f.storeCatalog(ctx, path, before)
}

// fetchCatalog copies the lake's catalog to path, if it has one, and
// returns the copy's hash.
func (f *Format) fetchCatalog(ctx context.Context, path string) ([32]byte, error) {
	rc, err := f.sink.Get(ctx, CatalogKey)
	if errors.Is(err, sinks.ErrNotFound) {
		return [32]byte{}, nil
	}
	if err != nil {
		return [32]byte{}, fmt.Errorf("iceberg: read catalog: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return [32]byte{}, fmt.Errorf("iceberg: read catalog: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return [32]byte{}, fmt.Errorf("iceberg: catalog copy: %w", err)
	}
	return sha256.Sum256(b), nil
}

// storeCatalog puts the local copy back when it changed.
func (f *Format) storeCatalog(ctx context.Context, path string, before [32]byte) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("iceberg: catalog copy: %w", err)
	}
	if sha256.Sum256(b) == before {
		return nil
	}
	if err := f.sink.Put(ctx, CatalogKey, strings.NewReader(string(b))); err != nil {
		return fmt.Errorf("iceberg: store catalog: %w", err)
	}
	return nil
}

// load returns a dataset's table, or nil if it has none yet.
func load(ctx context.Context, cat catalog.Catalog, dataset string) (*table.Table, error) {
	t, err := cat.LoadTable(ctx, ident(dataset))
	if errors.Is(err, catalog.ErrNoSuchTable) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("iceberg: load table %s: %w", dataset, err)
	}
	return t, nil
}

// liveFiles are the data files the current snapshot of t references
// (live entries only), by path.
func liveFiles(ctx context.Context, t *table.Table) ([]iceberg.DataFile, error) {
	snap := t.CurrentSnapshot()
	if snap == nil {
		return nil, nil
	}
	fs, err := t.FS(ctx)
	if err != nil {
		return nil, err
	}
	mans, err := snap.Manifests(fs)
	if err != nil {
		return nil, fmt.Errorf("iceberg: read manifest list: %w", err)
	}
	var out []iceberg.DataFile
	for _, m := range mans {
		entries, err := m.FetchEntries(fs, true)
		if err != nil {
			return nil, fmt.Errorf("iceberg: read manifest: %w", err)
		}
		for _, e := range entries {
			if e.DataFile().ContentType() == iceberg.EntryContentData {
				out = append(out, e.DataFile())
			}
		}
	}
	return out, nil
}

// dateOf is a data file's partition date.
func dateOf(df iceberg.DataFile) (lake.Date, bool) {
	switch v := df.Partition()[partitionID].(type) {
	case iceberg.Date:
		return lake.Date(v), true
	case int32:
		return lake.Date(v), true
	}
	return 0, false
}

// Tables lists the lake's tables.
func (f *Format) tables(ctx context.Context, cat catalog.Catalog) ([]string, error) {
	var out []string
	for id, err := range cat.ListTables(ctx, table.Identifier{Namespace}) {
		if errors.Is(err, catalog.ErrNoSuchNamespace) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("iceberg: list tables: %w", err)
		}
		out = append(out, id[len(id)-1])
	}
	slices.Sort(out)
	return out, nil
}

// Read opens a dataset's table read-only and passes it to fn (nil when it
// has none): for checks, the ddl command and tests.
func (f *Format) Read(ctx context.Context, dataset string, fn func(*table.Table) error) error {
	return f.session(ctx, false, func(cat catalogT) error {
		t, err := load(ctx, cat, dataset)
		if err != nil {
			return err
		}
		return fn(t)
	})
}
