package pipeline

import (
	"time"

	"github.com/hdc-export/hdc-export/cabmirror"
	"github.com/hdc-export/hdc-export/internal/lake"
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
	// Ingest checks (see LimitsConfig and coverage): rows dated in the
	// window but outside the days their run is taken to cover (kept, and
	// in rows_written, when no newer run covers their date); bad rows past
	// the quarantine's cap (counted, not kept); runs held back because
	// they would empty or sharply shrink partitions an older run filled
	// (nothing of them committed; the next cycle tries them again).
	RowsOutsideCoverage   int64 `json:"rows_outside_coverage"`
	RowsBadNotQuarantined int64 `json:"rows_bad_not_quarantined"`
	RunsHeldBack          int   `json:"runs_held_back"`
	PartitionsHeldBack    int   `json:"partitions_held_back"`

	// Cabs (see Runner.Mirror): counts only, never CabIdHash values.
	CabsMirrored       int   `json:"cabs_mirrored"`
	CabBytes           int64 `json:"cab_bytes"`
	CabsSkippedExpired int   `json:"cabs_skipped_expired"` // CabExpirationTime passed
	CabsNotFound       int   `json:"cabs_not_found"`       // the API answered 404 (gone)
	CabsRejected       int   `json:"cabs_rejected"`        // CabIdHash not a GUID (hostile or garbled)
	CabsRefused        int   `json:"cabs_refused"`         // link to a host off the allowlist
	CabsDeferred       int   `json:"cabs_deferred"`        // cut by a limit; the next run continues
	CabsFailed         int   `json:"cabs_failed"`          // download or verification failed
	// CabReasons counts the cabs that did not land by outcome and reason
	// (cabmirror's Outcome* and Reason* constants), e.g.
	// {"refused": {"host_not_allowed": 1}, "retried": {"md5_mismatch": 2}}:
	// counts only, never CabIdHash values.
	CabReasons map[string]map[string]int `json:"cab_outcomes,omitempty"`

	ObjectsPurged int    `json:"objects_purged"`
	OldestDate    string `json:"oldest_date,omitempty"`          // oldest dated object before the purge
	Unrecognised  int    `json:"objects_unrecognised,omitempty"` // objects purge cannot date (see purge --check)
	// Retention is the report of the cycle's last purge.
	Retention     *PurgeReport `json:"retention,omitempty"`
	ReportsFailed int          `json:"reports_failed"`
	Errors        int          `json:"errors"`
	// Interrupted is set when the cycle's context ended (a signal or a lost
	// lease) before the cycle did: work may be left for the next run.
	Interrupted bool   `json:"interrupted,omitempty"`
	Duration    string `json:"duration"`

	// Changed lists the report partitions this cycle wrote or replaced,
	// and Purged the partitions whose data its purges destroyed (see
	// signal.go), sorted, each once: the downstream signal, so that an
	// ingestion job loads (or drops) just these.
	Changed []Partition `json:"partitions_changed"`
	Purged  []Partition `json:"partitions_purged"`
}

// LeftWork reports whether a cycle that returned no error still left
// something undone that an operator must hear of: a cab refused or failed,
// or a newer run held back by the shrink guard. Such a cycle exits 3.
func (s *Summary) LeftWork() bool { return s.CabsIncomplete() || s.RunsHeldBack > 0 }

// NothingToDo reports whether the cycle found no new run, mirrored no cab
// and purged nothing, and no cab was refused or failed.
func (s *Summary) NothingToDo() bool {
	return s.RunsIngested == 0 && s.CabsMirrored == 0 && s.ObjectsPurged == 0 && s.Errors == 0 &&
		!s.CabsIncomplete()
}

// CabsIncomplete reports whether this cycle refused or failed a cab: the
// cycle is partial even if every report landed (the next run retries the
// failed cabs; a refused one, once cabs.allow_hosts changes).
func (s *Summary) CabsIncomplete() bool { return s.CabsRefused > 0 || s.CabsFailed > 0 }

func (s *Summary) add(r runResult) {
	s.RunsIngested++
	s.Partitions += r.partitions
	s.Rows += r.commit.Rows
	s.Bytes += r.bytes
	s.RowsTooOld += r.commit.TooOld
	s.RowsSuperseded += r.commit.Superseded
	s.RowsBad += r.commit.Bad
	s.noteChanged(r.commit.Dataset, r.commit.Partitions)
	s.RowsOutsideCoverage += r.commit.Uncovered
	s.RowsBadNotQuarantined += r.commit.BadNotKept
}

// addCabs adds the counts of a cab stage run.
func (s *Summary) addCabs(r cabmirror.Result) {
	for _, d := range r.IndexChanged {
		s.noteChanged(lake.CabIndexDir, []string{d.String()})
	}
	s.CabsMirrored += r.Mirrored
	s.CabBytes += r.Bytes
	s.CabsSkippedExpired += r.SkippedExpired
	s.CabsNotFound += r.NotFound
	s.CabsRejected += r.Rejected
	s.CabsRefused += r.Refused
	s.CabsDeferred += r.Deferred
	s.CabsFailed += r.Failed
	for outcome, reasons := range r.Reasons {
		for reason, n := range reasons {
			if s.CabReasons == nil {
				s.CabReasons = map[string]map[string]int{}
			}
			if s.CabReasons[outcome] == nil {
				s.CabReasons[outcome] = map[string]int{}
			}
			s.CabReasons[outcome][reason] += n
		}
	}
}
