package pipeline

import (
	"time"

	"github.com/hdc-export/hdc-export/cabmirror"
)

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

	// Cabs (see Runner.Mirror): counts only, never CabIdHash values.
	CabsMirrored       int   `json:"cabs_mirrored"`
	CabBytes           int64 `json:"cab_bytes"`
	CabsSkippedExpired int   `json:"cabs_skipped_expired"` // CabExpirationTime passed
	CabsNotFound       int   `json:"cabs_not_found"`       // the API answered 404 (gone)
	CabsRejected       int   `json:"cabs_rejected"`        // CabIdHash not a GUID (hostile or garbled)
	CabsRefused        int   `json:"cabs_refused"`         // link to a host off the allowlist
	CabsDeferred       int   `json:"cabs_deferred"`        // cut by a limit; the next run continues
	CabsFailed         int   `json:"cabs_failed"`          // download or verification failed

	ObjectsPurged int    `json:"objects_purged"`
	OldestDate    string `json:"oldest_date,omitempty"`          // oldest dated object before the purge
	Unrecognised  int    `json:"objects_unrecognised,omitempty"` // objects purge cannot date (see purge --check)
	// Retention is the report of the cycle's last purge.
	Retention     *PurgeReport `json:"retention,omitempty"`
	ReportsFailed int          `json:"reports_failed"`
	Errors        int          `json:"errors"`
	Duration      string       `json:"duration"`

	// Changed lists the report partitions this cycle wrote or replaced,
	// and Purged the partitions whose data its purges destroyed (see
	// signal.go), sorted, each once: the downstream signal, so that an
	// ingestion job loads (or drops) just these.
	Changed []Partition `json:"partitions_changed"`
	Purged  []Partition `json:"partitions_purged"`
}

// NothingToDo reports whether the cycle found no new run, mirrored no cab
// and purged nothing.
func (s *Summary) NothingToDo() bool {
	return s.RunsIngested == 0 && s.CabsMirrored == 0 && s.ObjectsPurged == 0 && s.Errors == 0
}

func (s *Summary) add(r runResult) {
	s.RunsIngested++
	s.Partitions += r.partitions
	s.Rows += r.commit.Rows
	s.Bytes += r.bytes
	s.RowsTooOld += r.commit.TooOld
	s.RowsSuperseded += r.commit.Superseded
	s.RowsBad += r.commit.Bad
	s.noteChanged(r.commit.Dataset, r.commit.Partitions)
}

// addCabs adds the counts of a cab stage run.
func (s *Summary) addCabs(r cabmirror.Result) {
	s.CabsMirrored += r.Mirrored
	s.CabBytes += r.Bytes
	s.CabsSkippedExpired += r.SkippedExpired
	s.CabsNotFound += r.NotFound
	s.CabsRejected += r.Rejected
	s.CabsRefused += r.Refused
	s.CabsDeferred += r.Deferred
	s.CabsFailed += r.Failed
}
