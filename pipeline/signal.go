package pipeline

import (
	"cmp"
	"slices"
	"strings"

	"github.com/hdc-export/hdc-export/internal/lake"
)

// Partition names one date partition of a dataset: the folder
// <dataset>/date=<date>/ of the lake.
type Partition struct {
	Dataset string `json:"dataset"`
	Date    string `json:"date"` // YYYY-MM-DD
}

// noteChanged records that a run wrote or replaced the dataset's
// partitions of dates.
func (s *Summary) noteChanged(dataset string, dates []string) {
	for _, d := range dates {
		s.Changed = append(s.Changed, Partition{dataset, d})
	}
}

// notePurged records the partitions of datasets (report datasets and
// cab_index; not the cab files nor the runner's own state) whose data a
// purge destroyed. A partition that object lock kept is not listed.
func (s *Summary) notePurged(rep *PurgeReport) {
	if rep == nil || rep.DryRun {
		return
	}
	for prefix := range rep.Prefixes {
		dataset, date, ok := strings.Cut(prefix, "/date=")
		if !ok || strings.Contains(dataset, "/") || strings.HasPrefix(dataset, "_") || dataset == lake.CabDir {
			continue
		}
		if _, err := lake.ParseDate(date); err != nil || rep.LockedPrefixes[prefix] > 0 {
			continue
		}
		s.Purged = append(s.Purged, Partition{dataset, date})
	}
}

// sortSignal sorts the changed and purged partitions by dataset and date,
// each once, and makes both lists non-nil (JSON [] rather than null).
func (s *Summary) sortSignal() {
	for _, list := range []*[]Partition{&s.Changed, &s.Purged} {
		slices.SortFunc(*list, func(a, b Partition) int {
			return cmp.Or(cmp.Compare(a.Dataset, b.Dataset), cmp.Compare(a.Date, b.Date))
		})
		*list = slices.Compact(*list)
		if *list == nil {
			*list = []Partition{}
		}
	}
}
