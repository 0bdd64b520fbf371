package pipeline

import (
	"context"
	"fmt"
	"github.com/hdc-export/hdc-export/internal/lake"
	"slices"
	"strings"
	"time"

	"github.com/hdc-export/hdc-export/sinks"
)

// Status is what a lake holds, from its manifests and cab folders.
type Status struct {
	WindowStart string          `json:"window_start"`
	Stale       int             `json:"objects_outside_window"`
	Datasets    []DatasetStatus `json:"datasets"`
	Cabs        CabStatus       `json:"cabs"`
}

// DatasetStatus summarises one dataset's partitions.
type DatasetStatus struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
	Rows       int64  `json:"rows"`
	OldestDate string `json:"oldest_date"`
	NewestDate string `json:"newest_date"`
	NewestRun  string `json:"newest_run"`
}

// CabStatus summarises the mirrored cabs.
type CabStatus struct {
	Dates      int    `json:"dates"`
	Files      int    `json:"files"`
	Bytes      int64  `json:"bytes"`
	OldestDate string `json:"oldest_date,omitempty"`
	NewestDate string `json:"newest_date,omitempty"`
}

// ReadStatus reads the lake's manifests and lists its cabs.
func ReadStatus(ctx context.Context, s sinks.Sink, retentionDays int, now time.Time) (*Status, error) {
	w := lake.NewWindow(now, retentionDays)
	st := &Status{WindowStart: w.First.String()}
	byName := map[string]*DatasetStatus{}
	var manifests []string
	err := s.List(ctx, "", func(o sinks.Object) error {
		d, dated := lake.KeyDate(o.Key)
		if dated && !w.Contains(d) {
			st.Stale++
		}
		switch {
		case strings.HasPrefix(o.Key, lake.ManifestDir+"/"):
			manifests = append(manifests, o.Key)
		case strings.HasPrefix(o.Key, "cabs/") && dated:
			st.Cabs.Files++
			st.Cabs.Bytes += o.Size
			ds := d.String()
			if st.Cabs.OldestDate == "" || ds < st.Cabs.OldestDate {
				st.Cabs.OldestDate = ds
			}
			if ds > st.Cabs.NewestDate { // keys come in order: a new date
				st.Cabs.Dates++
				st.Cabs.NewestDate = ds
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("status: list: %w", err)
	}
	for _, key := range manifests {
		var m lake.Manifest
		if err := lake.GetJSON(ctx, s, key, &m); err != nil {
			return nil, fmt.Errorf("status: %w", err)
		}
		ds := byName[m.Dataset]
		if ds == nil {
			ds = &DatasetStatus{Name: m.Dataset, OldestDate: m.Date}
			byName[m.Dataset] = ds
		}
		ds.Partitions++
		ds.Rows += m.Rows
		ds.OldestDate = min(ds.OldestDate, m.Date)
		ds.NewestDate = max(ds.NewestDate, m.Date)
		ds.NewestRun = max(ds.NewestRun, m.Run)
	}
	for _, d := range byName {
		st.Datasets = append(st.Datasets, *d)
	}
	slices.SortFunc(st.Datasets, func(a, b DatasetStatus) int { return strings.Compare(a.Name, b.Name) })
	return st, nil
}
