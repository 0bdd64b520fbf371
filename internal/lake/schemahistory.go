package lake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hdc-export/hdc-export/sinks"
)

// SchemaHistory is what the lake knows of a dataset's columns over time.
type SchemaHistory struct {
	// Columns are every column a run of the dataset has written, name →
	// SQL type; empty before the dataset's first run.
	Columns map[string]string
	// Added are the columns that compatible schema changes added after
	// the dataset's first run: those its schema record lists, then those
	// the partition manifests still in the lake record (a record written
	// before it kept them has only the manifests, which age out with
	// their partitions).
	Added []string
}

// ReadSchemaHistory reads a dataset's schema record and the schema changes
// its partition manifests record. A dataset with no run yet has an empty
// history.
func ReadSchemaHistory(ctx context.Context, s sinks.Sink, dataset string) (SchemaHistory, error) {
	var rec DatasetSchema
	switch err := GetJSON(ctx, s, SchemaKey(dataset), &rec); {
	case errors.Is(err, sinks.ErrNotFound):
	case err != nil:
		return SchemaHistory{}, fmt.Errorf("read schema record of %s: %w", dataset, err)
	}
	h := SchemaHistory{Columns: rec.Columns, Added: slices.Clone(rec.Added)}
	if h.Columns == nil {
		h.Columns = map[string]string{}
	}
	var manifests []string
	err := s.List(ctx, ManifestDir+"/"+dataset+"/", func(o sinks.Object) error {
		if strings.HasSuffix(o.Key, ".json") {
			manifests = append(manifests, o.Key)
		}
		return nil
	})
	if err != nil {
		return SchemaHistory{}, fmt.Errorf("list manifests of %s: %w", dataset, err)
	}
	for _, key := range manifests {
		var m Manifest
		switch err := GetJSON(ctx, s, key, &m); {
		case errors.Is(err, sinks.ErrNotFound): // purged since the listing
			continue
		case err != nil:
			return SchemaHistory{}, err
		}
		if m.SchemaChange == nil {
			continue
		}
		for _, c := range m.SchemaChange.Added {
			if !slices.Contains(h.Added, c) {
				h.Added = append(h.Added, c)
			}
		}
	}
	return h, nil
}

// errFound stops a listing at its first object.
var errFound = errors.New("found")

// HasObjects reports whether any object's key starts with prefix.
func HasObjects(ctx context.Context, s sinks.Sink, prefix string) (bool, error) {
	err := s.List(ctx, prefix, func(sinks.Object) error { return errFound })
	if errors.Is(err, errFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("list %s: %w", prefix, err)
	}
	return false, nil
}
