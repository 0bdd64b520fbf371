package pipeline

import (
	"context"
	"errors"
	"fmt"
	"github.com/hdc-export/hdc-export/internal/lake"
	"maps"
	"slices"
	"strings"

	"github.com/hdc-export/hdc-export/schema"
	"github.com/hdc-export/hdc-export/sinks"
)

// ErrSchemaChange marks an incompatible schema change: a column that
// changed type. Nothing of the run is committed.
var ErrSchemaChange = errors.New("incompatible schema change")

// checkSchema compares a run's columns with the dataset's record, before
// anything of the run is committed. A column whose type changed is an
// error wrapping ErrSchemaChange, naming column and types. Added or missing
// columns are compatible (Parquet readers match columns by name, and a
// missing one reads as NULL): it returns the change (nil if none, or for a
// dataset's first run) and, if columns were added, the widened record,
// which the caller stores once the run's partitions are committed (so that
// a run redone after a crash sees, and records, the same change).
func (r *Runner) checkSchema(ctx context.Context, dataset string, l *schema.Layout) (*lake.SchemaChange, *lake.DatasetSchema, error) {
	rec := lake.DatasetSchema{Dataset: dataset, Columns: map[string]string{}}
	switch err := lake.GetJSON(ctx, r.Sink, lake.SchemaKey(dataset), &rec); {
	case errors.Is(err, sinks.ErrNotFound):
	case err != nil:
		return nil, nil, fmt.Errorf("read schema record: %w", err)
	}
	first := len(rec.Columns) == 0
	var ch lake.SchemaChange
	var errs []error
	seen := map[string]bool{}
	for _, f := range l.Fields {
		seen[f.Name] = true
		switch old, ok := rec.Columns[f.Name]; {
		case !ok:
			ch.Added = append(ch.Added, f.Name)
			rec.Columns[f.Name] = f.Type.String()
		case old != f.Type.String():
			errs = append(errs, fmt.Errorf("column %s was %s and is now %s", f.Name, old, f.Type))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("%w in dataset %s: %v; nothing of this run is committed (keep the old type, or export to a new dataset name)",
			ErrSchemaChange, dataset, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	for _, name := range slices.Sorted(maps.Keys(rec.Columns)) {
		if !seen[name] {
			ch.Missing = append(ch.Missing, name)
		}
	}
	var widened *lake.DatasetSchema
	if len(ch.Added) > 0 {
		if !first {
			rec.Added = append(rec.Added, ch.Added...)
		}
		widened = &rec
	}
	if first || (len(ch.Added) == 0 && len(ch.Missing) == 0) {
		return nil, widened, nil
	}
	r.Log.Info("compatible schema change", "dataset", dataset, "added", ch.Added, "missing", ch.Missing)
	return &ch, widened, nil
}
