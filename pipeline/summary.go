package pipeline

import "time"

// Summary is what one cycle did. It holds counts only, never row content.
type Summary struct {
	Started        time.Time `json:"started"`
	WindowStart    string    `json:"window_start"` // oldest failure date kept
	RunsSeen       int       `json:"runs_seen"`
	RunsIngested   int       `json:"runs_ingested"`
	RunsCommitted  int       `json:"runs_already_committed"`
	RunsSuperseded int       `json:"runs_superseded"` // newer runs cover all their dates
	Partitions     int       `json:"partitions_written"`
	Rows           int64     `json:"rows_written"`
	Bytes          int64     `json:"bytes_written"`
	RowsTooOld     int64     `json:"rows_outside_window"`
	RowsSuperseded int64     `json:"rows_superseded"`
	RowsBad        int64     `json:"rows_bad"`
	ObjectsPurged  int       `json:"objects_purged"`
	OldestDate     string    `json:"oldest_date,omitempty"` // oldest dated object before the purge
	ReportsFailed  int       `json:"reports_failed"`
	Errors         int       `json:"errors"`
	Duration       string    `json:"duration"`
}

// NothingToDo reports whether the cycle found no new run and purged nothing.
func (s *Summary) NothingToDo() bool {
	return s.RunsIngested == 0 && s.ObjectsPurged == 0 && s.Errors == 0
}

func (s *Summary) add(r runResult) {
	s.RunsIngested++
	s.Partitions += r.partitions
	s.Rows += r.commit.Rows
	s.Bytes += r.bytes
	s.RowsTooOld += r.commit.TooOld
	s.RowsSuperseded += r.commit.Superseded
	s.RowsBad += r.commit.Bad
}
