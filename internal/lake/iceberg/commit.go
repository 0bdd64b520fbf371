//go:build iceberg

package iceberg

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"

	"github.com/hdc-export/hdc-export/internal/lake"
)

// RunName is what RunProperty holds for a run.
func RunName(c lake.Commit) string { return fmt.Sprintf("%d-%s", c.ReportID, c.Run) }

// Commit makes a run's partitions visible in one snapshot: for each date
// in files, the date's data becomes the run's file (or none, for a nil
// file). It creates the table on the first run.
//
// A run whose files have columns the table lacks widens the table's schema
// (and its name mapping) in the same commit; the older files read them as
// null.
//
// Commit is idempotent: it compares with the current snapshot, adds only
// files it does not reference yet, and commits nothing when the snapshot
// already holds the run's files, so a retry after a crash (before or after
// the catalog moved) never registers a file twice.
func (f *Format) Commit(ctx context.Context, c lake.Commit, files map[lake.Date]*lake.File) error {
	if len(files) == 0 {
		return nil
	}
	return f.session(ctx, true, func(cat catalogT) error {
		t, err := load(ctx, cat, c.Dataset)
		if err != nil {
			return err
		}
		if t == nil {
			if t, err = f.create(ctx, cat, c.Dataset, files); err != nil {
				return err
			}
		}
		live, err := liveFiles(ctx, t)
		if err != nil {
			return err
		}
		byDate := map[lake.Date][]iceberg.DataFile{}
		present := map[string]bool{}
		for _, df := range live {
			d, ok := dateOf(df)
			if !ok {
				return fmt.Errorf("iceberg: table %s: a data file without a date partition", c.Dataset)
			}
			byDate[d] = append(byDate[d], df)
			present[df.FilePath()] = true
		}
		spec := t.Spec()
		var add, del []iceberg.DataFile
		var cols []iceberg.NestedField // new columns of the run's files
		seen := map[string]bool{}
		for _, d := range slices.Sorted(maps.Keys(files)) {
			file, want := files[d], ""
			if file != nil {
				want = f.location(file.Key)
			}
			for _, df := range byDate[d] {
				if df.FilePath() != want {
					del = append(del, df)
				}
			}
			if file == nil || present[want] {
				continue
			}
			nc, err := f.newColumns(ctx, t, want)
			if err != nil {
				return err
			}
			for _, c := range nc {
				if !seen[c.Name] {
					seen[c.Name] = true
					cols = append(cols, c)
				}
			}
			b, err := iceberg.NewDataFileBuilder(spec, iceberg.EntryContentData, want, iceberg.ParquetFile,
				map[int]any{partitionFieldID(spec): iceberg.Date(d)}, map[int]string{partitionFieldID(spec): "date"}, nil,
				file.Rows, file.Bytes)
			if err != nil {
				return fmt.Errorf("iceberg: data file of %s: %w", d, err)
			}
			add = append(add, b.Build())
		}
		if len(add)+len(del) == 0 {
			return nil // the current snapshot holds exactly the run's files
		}
		tx := t.NewTransaction()
		if len(cols) > 0 { // in the run's one commit, with its files
			if err := addColumns(tx, t, cols); err != nil {
				return err
			}
		}
		if err := tx.ReplaceDataFilesWithDataFiles(ctx, del, add, iceberg.Properties{RunProperty: RunName(c)}); err != nil {
			return fmt.Errorf("iceberg: stage run %s of %s: %w", c.Run, c.Dataset, err)
		}
		if _, err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("iceberg: commit run %s of %s: %w", c.Run, c.Dataset, err)
		}
		return nil
	})
}

// partitionFieldID is the id of the spec's date field.
func partitionFieldID(spec iceberg.PartitionSpec) int {
	for _, fld := range spec.Fields() {
		if fld.Name == PartitionField {
			return fld.FieldID
		}
	}
	return partitionID
}

// create makes a dataset's table with the columns of the first file in
// files: format v2, partitioned by identity on failure_date.
func (f *Format) create(ctx context.Context, cat catalogT, dataset string, files map[lake.Date]*lake.File) (*table.Table, error) {
	var first string
	for _, d := range slices.Sorted(maps.Keys(files)) {
		if files[d] != nil {
			first = f.location(files[d].Key)
			break
		}
	}
	if first == "" {
		return nil, fmt.Errorf("iceberg: table %s: no data file to take its columns from", dataset)
	}
	as, err := f.fileSchema(ctx, first)
	if err != nil {
		return nil, err
	}
	sc, err := table.ArrowSchemaToIcebergWithFreshIDs(as, false)
	if err != nil {
		return nil, fmt.Errorf("iceberg: table %s: columns: %w", dataset, err)
	}
	src, ok := sc.FindFieldByName(SourceColumn)
	if !ok {
		return nil, fmt.Errorf("iceberg: table %s: the report has no %s column: an Iceberg table needs a dated report", dataset, SourceColumn)
	}
	pid := partitionID
	spec, err := iceberg.NewPartitionSpecOpts(iceberg.AddPartitionFieldBySourceID(src.ID, PartitionField, iceberg.IdentityTransform{}, sc, &pid))
	if err != nil {
		return nil, fmt.Errorf("iceberg: table %s: partition spec: %w", dataset, err)
	}
	if err := cat.CreateNamespace(ctx, table.Identifier{Namespace}, nil); err != nil && !isExists(err) {
		return nil, fmt.Errorf("iceberg: create namespace: %w", err)
	}
	t, err := cat.CreateTable(ctx, ident(dataset), sc,
		catalog.WithLocation(f.location(dataset)),
		catalog.WithPartitionSpec(&spec),
		catalog.WithProperties(iceberg.Properties{
			table.PropertyFormatVersion: "2",
			table.GCEnabledKey:          "true",
			// Old metadata files are orphans to Expire's sweep, which
			// deletes them (and any a crash leaves) in every purge; a
			// delete after each commit as well would only race it, and
			// iceberg-go logs each file it finds gone to the std log.
			table.MetadataDeleteAfterCommitEnabledKey: "false",
			table.MetadataPreviousVersionsMaxKey:      "1",
		}))
	if err != nil {
		return nil, fmt.Errorf("iceberg: create table %s: %w", dataset, err)
	}
	return t, nil
}

func isExists(err error) bool { return errors.Is(err, catalog.ErrNamespaceAlreadyExists) }

// fileSchema reads a Parquet file's columns from its footer.
func (f *Format) fileSchema(ctx context.Context, loc string) (*arrow.Schema, error) {
	fs, err := icebergio.LoadFS(ctx, f.cfg.Props, loc)
	if err != nil {
		return nil, fmt.Errorf("iceberg: open warehouse: %w", err)
	}
	fl, err := fs.Open(loc)
	if err != nil {
		return nil, fmt.Errorf("iceberg: open data file: %w", err)
	}
	defer fl.Close()
	rdr, err := file.NewParquetReader(fl)
	if err != nil {
		return nil, fmt.Errorf("iceberg: read data file footer: %w", err)
	}
	defer rdr.Close()
	as, err := pqarrow.FromParquet(rdr.MetaData().Schema, nil, rdr.MetaData().KeyValueMetadata())
	if err != nil {
		return nil, fmt.Errorf("iceberg: data file columns: %w", err)
	}
	return as, nil
}

// newColumns returns the columns of the file at loc that the table does
// not have yet, as optional fields (the table's older files lack them),
// or nil.
func (f *Format) newColumns(ctx context.Context, t *table.Table, loc string) ([]iceberg.NestedField, error) {
	as, err := f.fileSchema(ctx, loc)
	if err != nil {
		return nil, err
	}
	fs, err := table.ArrowSchemaToIcebergWithFreshIDs(as, false)
	if err != nil {
		return nil, fmt.Errorf("iceberg: data file columns: %w", err)
	}
	var out []iceberg.NestedField
	for _, fld := range fs.Fields() {
		if _, ok := t.Schema().FindFieldByName(fld.Name); !ok {
			fld.Required = false
			out = append(out, fld)
		}
	}
	return out, nil
}

// addColumns stages, in tx, the table's schema widened by cols, and its
// name mapping with them (the data files carry no field ids; readers
// find their columns by name through the mapping). A column whose name
// the table has with another type is refused by iceberg-go.
func addColumns(tx *table.Transaction, t *table.Table, cols []iceberg.NestedField) error {
	fields := slices.Clone(t.Schema().Fields())
	next := t.Metadata().LastColumnID()
	for _, c := range cols { // ids the union does not confuse with the table's
		next++
		c.ID = next
		fields = append(fields, c)
	}
	union := iceberg.NewSchema(0, fields...)
	up := tx.UpdateSchema(true, false, table.WithNameMapping(t.NameMapping())).UnionByNameWith(union)
	if err := up.Commit(); err != nil {
		return fmt.Errorf("iceberg: add columns to table %s: %w", t.Identifier()[len(t.Identifier())-1], err)
	}
	return nil
}
