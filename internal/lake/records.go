package lake

import (
	"time"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/hdc-export/hdc-export/devcenter"
	"io"

	"github.com/hdc-export/hdc-export/sinks"
)

// Manifest records which run wrote a partition. It holds keys, counts and
// checksums, never row content.
type Manifest struct {
	Dataset       string `json:"dataset"`
	Date          string `json:"date"`
	ReportID      int64  `json:"report_id"`
	Run           string `json:"run"` // run id, e.g. 20261121T020000Z; orders runs
	Rows          int64  `json:"rows"`
	Files         []File `json:"files"`
	Schema        string `json:"schema"`         // column signature
	SchemaVersion string `json:"schema_version"` // schema.Version
	// SchemaChange is set when the run that wrote the partition changed
	// the dataset's columns compatibly (see DatasetSchema).
	SchemaChange *SchemaChange `json:"schema_change,omitempty"`
}

// File is one data object of a partition.
type File struct {
	Key    string `json:"key"`
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Commit is a run's commit record, written after all its partitions. Its
// presence means the run needs no more work.
type Commit struct {
	Dataset    string   `json:"dataset"`
	ReportID   int64    `json:"report_id"`
	Run        string   `json:"run"`
	Partitions []string `json:"partitions"` // dates this run wrote
	Rows       int64    `json:"rows"`
	Superseded int64    `json:"rows_superseded"` // rows of dates a newer run owns
	TooOld     int64    `json:"rows_outside_window"`
	Bad        int64    `json:"rows_bad"`
}

// GetJSON reads a JSON object; a missing key returns sinks.ErrNotFound.
func GetJSON(ctx context.Context, s sinks.Sink, key string, v any) error {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

// PutJSON writes v as indented JSON; equal values give equal bytes.
func PutJSON(ctx context.Context, s sinks.Sink, key string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := s.Put(ctx, key, bytes.NewReader(append(b, '\n'))); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Exists reports whether key holds an object.
func Exists(ctx context.Context, s sinks.Sink, key string) (bool, error) {
	if st, ok := s.(sinks.Stater); ok {
		_, err := st.Stat(ctx, key)
		if errors.Is(err, sinks.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	rc, err := s.Get(ctx, key)
	if errors.Is(err, sinks.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, rc.Close()
}

// DatasetSchema is the record of a dataset's columns: every column a run
// of it has written, with its SQL type. It holds names and types only,
// never data, so it is kept outside retention, at SchemaKey.
type DatasetSchema struct {
	Dataset string            `json:"dataset"`
	Columns map[string]string `json:"columns"` // lake column name → SQL type
	// Added are the columns that compatible schema changes added after
	// the dataset's first run, oldest first: the DDL's ALTER TABLE path.
	// Records written before it existed lack it (see ReadSchemaHistory).
	Added []string `json:"added,omitempty"`
}

// SchemaChange is a compatible change of a dataset's columns, recorded in
// the manifests of the partitions written by the run that made it.
type SchemaChange struct {
	Added   []string `json:"added,omitempty"`   // columns new to the dataset
	Missing []string `json:"missing,omitempty"` // known columns this run lacks (NULL in its rows)
}

// Binding remembers which template and schedule serve a configured report,
// so a changed template is edited in place rather than duplicated. It
// holds ids only.
type Binding struct {
	TemplateID devcenter.ID `json:"template_id"`
	ReportID   devcenter.ID `json:"report_id"`
}

// LeaseRecord is the content of a lease object (see LeaseKey). Taking the
// lease is a create-only put of the next epoch, so of any number of
// runners that race for it exactly one wins; the epoch is the fencing
// token.
type LeaseRecord struct {
	Holder  string    `json:"holder"`
	Epoch   int64     `json:"epoch"`
	Expires time.Time `json:"expires"`
}
