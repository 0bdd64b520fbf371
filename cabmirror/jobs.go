package cabmirror

import (
	"slices"
	"time"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/schema"
)

// State is the mirror's record for one dataset partition: the run (and
// data file checksums) of the partition manifest whose every cab reference
// is done (mirrored, already present, permanently skipped, or refused under
// the allowlist AllowHosts). Counts only, except Refused: the CabIdHash
// values whose links were refused, so that no run asks for them again
// until the allowlist changes. The record is dated like its partition and
// leaves the lake with it.
type State struct {
	Dataset  string `json:"dataset"`
	Date     string `json:"date"`
	Run      string `json:"run"`
	Files    string `json:"files"` // SHA-256 of the partition's data files, comma-separated
	Refs     int    `json:"refs"`  // distinct cabs referenced
	Expired  int    `json:"expired"`
	NotFound int    `json:"not_found"`
	Rejected int    `json:"rejected"`
	// Refused lists the cabs (normalised CabIdHash, sorted) whose link
	// pointed off the allowlist whose fingerprint is AllowHosts (see
	// allowFingerprint); both are empty when none was refused.
	Refused    []string `json:"refused,omitempty"`
	AllowHosts string   `json:"allow_hosts,omitempty"`
	// Unsettled marks a record written only to remember refusals: some
	// cab of the partition failed or was deferred, so the partition is
	// mirrored again, but its refused cabs are not asked for.
	Unsettled bool `json:"unsettled,omitempty"`
}

// settled reports whether st records the partition of manifest run and
// files as done under the allowlist with fingerprint allow.
func (st *State) settled(run, files, allow string) bool {
	return !st.Unsettled && st.Run == run && st.Files == files && (len(st.Refused) == 0 || st.AllowHosts == allow)
}

// cabOutcome is what became of one distinct cab in a run.
type cabOutcome int

const (
	cabQueued         cabOutcome = iota // to download
	cabPresent                          // already in the lake
	cabMirrored                         // downloaded, verified and stored
	cabExpired                          // CabExpirationTime passed by the runner's clock
	cabNotFound                         // the API or blob answered 404: gone
	cabRefused                          // link off the allowlist
	cabRefusedEarlier                   // refused by an earlier run under the same allowlist
	cabDeferred                         // cut by a limit or cancellation
	cabFailed                           // download or verification failed
)

// done reports a final outcome: the partition need not look at it again
// (a refusal, until the allowlist changes).
func (o cabOutcome) done() bool {
	return o == cabPresent || o == cabMirrored || o == cabExpired || o == cabNotFound ||
		o == cabRefused || o == cabRefusedEarlier
}

// name is the outcome as Result.Reasons keys it; "" for the outcomes of
// cabs that are in the lake.
func (o cabOutcome) name() string {
	switch o {
	case cabRefused:
		return OutcomeRefused
	case cabRefusedEarlier:
		return OutcomeRefusedEarlier
	case cabFailed:
		return OutcomeFailed
	case cabDeferred, cabQueued:
		return OutcomeDeferred
	case cabExpired, cabNotFound:
		return OutcomeSkipped
	}
	return ""
}

// cabRef is one distinct cab referenced by a partition.
type cabRef struct {
	hash      string // normalised (lower case): the key's name
	raw       string // as the report gave it (validated): sent to the API
	app       string // ApplicationId, IHV only, may be empty
	view      string // IHVDriver or OEMDriver
	dataset   string
	date      lake.Date // failure date of the partition that referenced it first
	collected time.Time // zero if unknown
	expires   time.Time // zero if unknown
}

// endpoint picks the documented cab download method for the row.
func (c *cabRef) endpoint() devcenter.CabEndpoint {
	switch {
	case c.view == schema.OEMDriver.View:
		return devcenter.CabHardware
	case c.app != "":
		return devcenter.CabDriver
	}
	return devcenter.CabIHVDriver
}

// cabJob is one distinct cab of this run and what became of it.
type cabJob struct {
	ref     cabRef
	outcome cabOutcome
	size    int64
	md5     []byte
	reason  string // why it did not land (see the Reason* constants)
	err     error  // redacted: names no CabIdHash
}

// cabPartition is a dataset partition whose cabs are to be checked.
type cabPartition struct {
	dataset  string
	view     string
	date     lake.Date
	run      string
	files    []lake.File
	refs     []cabRef
	rejected int       // distinct CabIdHash values refused (see NormalizeCabID)
	readErr  error     // its references could not be read
	jobs     []*cabJob // one per distinct cab, shared between partitions
}

// hasJob reports whether one of the partition's cabs has a matching outcome.
func (p *cabPartition) hasJob(match func(cabOutcome) bool) bool {
	return slices.ContainsFunc(p.jobs, func(j *cabJob) bool { return match(j.outcome) })
}

// unsettled reports whether some cab of the partition is not done (it
// failed or was deferred), so the partition is mirrored again.
func (p *cabPartition) unsettled() bool {
	return p.hasJob(func(o cabOutcome) bool { return !o.done() })
}
