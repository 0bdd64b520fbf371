package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/hdc-export/hdc-export/internal/lake"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/devcenter/emulator"
	"github.com/hdc-export/hdc-export/pipeline"
)

// reshapingAPI rewrites every report file's columns: edit gets the header
// (on line 0) or a record and returns the fields to keep.
type reshapingAPI struct {
	*devcenter.Client
	edit func(line int, f []string) []string
}

func (c reshapingAPI) Download(ctx context.Context, link string) (io.ReadCloser, error) {
	body, err := c.Client.Download(ctx, link)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var out bytes.Buffer
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for i := 0; sc.Scan(); i++ {
		out.WriteString(strings.Join(c.edit(i, strings.Split(sc.Text(), "\t")), "\t") + "\n")
	}
	return io.NopCloser(&out), sc.Err()
}

// TestSchemaChanges: a run that adds a column and lacks another is a
// compatible change, recorded in its manifests and in the dataset's schema
// record; a run in which a column changes type fails, naming the column,
// and commits nothing.
func TestSchemaChanges(t *testing.T) {
	h := newHarness(t, emulator.Options{RowsPerDay: 20})
	h.run(t)
	ctx := context.Background()
	var rec lake.DatasetSchema
	readJSON(t, h, lake.SchemaKey("ihv_driver"), &rec)
	if rec.Columns["event_count"] != "BIGINT" || rec.Columns["market"] != "VARCHAR" || len(rec.Added) != 0 {
		t.Fatalf("schema record: %+v", rec)
	}

	// Next day: Market is gone, a new column appears.
	market := slices.Index(emulator.IHVColumns, "Market")
	h.runner.API = reshapingAPI{h.client, func(line int, f []string) []string {
		extra := "x"
		if line == 0 {
			extra = "NewThing"
		}
		if len(f) == len(emulator.IHVColumns) {
			f = slices.Delete(f, market, market+1)
		}
		return append(f, extra)
	}}
	h.runner.Config.Reports = h.runner.Config.Reports[:1] // ihv_driver
	h.clock.Advance(24 * time.Hour)
	sum := h.run(t)
	if sum.RunsIngested == 0 {
		t.Fatalf("nothing ingested: %+v", sum)
	}
	readJSON(t, h, lake.SchemaKey("ihv_driver"), &rec)
	if rec.Columns["new_thing"] != "VARCHAR" || rec.Columns["market"] != "VARCHAR" {
		t.Errorf("schema record not widened: %+v", rec)
	}
	if !slices.Equal(rec.Added, []string{"new_thing"}) {
		t.Errorf("schema record: added %q, want [new_thing]", rec.Added)
	}
	// The DDL's ALTER TABLE path reads the same history.
	if hist, err := lake.ReadSchemaHistory(ctx, h.sink, "ihv_driver"); err != nil || !slices.Equal(hist.Added, []string{"new_thing"}) || hist.Columns["new_thing"] != "VARCHAR" {
		t.Errorf("schema history: %+v, %v", hist, err)
	}
	yesterday := lake.DateOf(h.clock.Now()) - 1
	var m lake.Manifest
	readJSON(t, h, lake.ManifestKey("ihv_driver", yesterday), &m)
	if m.SchemaChange == nil || !slices.Equal(m.SchemaChange.Added, []string{"new_thing"}) || !slices.Equal(m.SchemaChange.Missing, []string{"market"}) {
		t.Errorf("manifest of %s: schema change %+v", yesterday, m.SchemaChange)
	}

	// Next day: EventCount arrives under a name that is not the documented
	// one, so it would land as a string column of the same name.
	events := slices.Index(emulator.IHVColumns, "EventCount")
	h.runner.API = reshapingAPI{h.client, func(line int, f []string) []string {
		if line == 0 {
			f[events] = "Event Count"
		}
		return f
	}}
	h.clock.Advance(24 * time.Hour)
	before := listKeys(t, h.sink)
	_, err := h.runner.Run(ctx)
	if !errors.Is(err, pipeline.ErrSchemaChange) || !strings.Contains(err.Error(), "event_count was BIGINT and is now VARCHAR") {
		t.Fatalf("err = %v, want the incompatible change named", err)
	}
	for _, key := range listKeys(t, h.sink) {
		if !slices.Contains(before, key) && !strings.HasPrefix(key, "_hdc/lease/") && !strings.HasPrefix(key, "_hdc/audit/") {
			t.Errorf("the failed run wrote %s", key)
		}
	}
}

func readJSON(t *testing.T, h *harness, key string, v any) {
	t.Helper()
	rc, err := h.sink.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := json.NewDecoder(rc).Decode(v); err != nil {
		t.Fatal(err)
	}
}
