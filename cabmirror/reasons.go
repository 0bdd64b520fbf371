package cabmirror

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"

	"github.com/hdc-export/hdc-export/devcenter"
)

// Outcomes of a cab that did not land, as Result.Reasons keys them (the
// summary's "cab_outcomes"). Each maps reasons (the Reason* constants) to
// counts of distinct cabs; "retried" counts attempts instead.
const (
	// OutcomeRefused: this run refused the cab's link (its host is off the
	// allowlist). The refusal is remembered in the partition's cab state:
	// later runs do not ask for the cab again until cabs.allow_hosts changes.
	OutcomeRefused = "refused"
	// OutcomeRefusedEarlier: an earlier run refused the cab under the same
	// allowlist, so this run did not ask for it.
	OutcomeRefusedEarlier = "refused_earlier"
	// OutcomeFailed: the download or its verification failed, after the
	// in-run retries; the next run tries again.
	OutcomeFailed = "failed"
	// OutcomeDeferred: not tried to the end in this run; the next run
	// continues.
	OutcomeDeferred = "deferred"
	// OutcomeSkipped: permanently not mirrored (expired or gone).
	OutcomeSkipped = "skipped"
	// OutcomeRejected: the reference itself was refused before any request
	// (counted per distinct value and partition).
	OutcomeRejected = "rejected"
	// OutcomeRetried: download attempts of this run that were retried, by
	// the reason of the failed attempt (a cab can count more than once).
	OutcomeRetried = "retried"
)

// Reasons, as Result.Reasons keys them under an outcome.
const (
	// ReasonHostNotAllowed: the cab API's 302 pointed at a host off
	// cabs.allow_hosts; nothing was sent there (refused, refused_earlier).
	ReasonHostNotAllowed = "host_not_allowed"
	// ReasonMD5Mismatch: the bytes' MD5 differs from the one the blob host
	// reported (failed, retried).
	ReasonMD5Mismatch = "md5_mismatch"
	// ReasonSizeMismatch: the body was longer than the announced size
	// (failed, retried).
	ReasonSizeMismatch = "size_mismatch"
	// ReasonBlobChanged: the blob's size or MD5 changed between a download
	// and its resumption (failed, retried).
	ReasonBlobChanged = "blob_changed"
	// ReasonDownloadBroken: the download broke off more often than one
	// attempt resumes it (failed, retried).
	ReasonDownloadBroken = "download_broken"
	// ReasonLinkExpired: the blob host kept refusing fresh links (403)
	// (failed).
	ReasonLinkExpired = "link_expired"
	// ReasonAPIError: the cab download API failed after the client's
	// retries (failed).
	ReasonAPIError = "api_error"
	// ReasonBlobError: the blob host failed after the client's retries
	// (failed).
	ReasonBlobError = "blob_error"
	// ReasonStoreError: the sink could not store the cab (failed).
	ReasonStoreError = "store_error"
	// ReasonByteBudget: cabs.byte_budget was spent (deferred).
	ReasonByteBudget = "byte_budget"
	// ReasonFailureStreak: so many cabs failed in a row that the run
	// stopped asking (deferred).
	ReasonFailureStreak = "failure_streak"
	// ReasonInterrupted: the run was cancelled, by a signal or a lost
	// lease (deferred).
	ReasonInterrupted = "interrupted"
	// ReasonExpired: CabExpirationTime passed by the runner's clock
	// (skipped).
	ReasonExpired = "expired"
	// ReasonNotFound: the API or the blob host answered 404 (skipped).
	ReasonNotFound = "not_found"
	// ReasonMalformedID: CabIdHash is not a GUID, or the row's
	// ApplicationId is malformed (rejected).
	ReasonMalformedID = "malformed_id"
)

// maxCabAttempts bounds the downloads of one cab in one run whose bytes
// fail verification or whose download keeps breaking off (each attempt
// already resumes interruptions, see cabReader).
const maxCabAttempts = 3

// reasonError gives a failure its reason.
type reasonError struct {
	reason string
	err    error
}

func (e *reasonError) Error() string { return e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

// because marks err with reason, unless err already carries one.
func because(reason string, err error) error {
	var re *reasonError
	if err == nil || errors.As(err, &re) {
		return err
	}
	return &reasonError{reason: reason, err: err}
}

// failureReason is the reason of a failed download (see because).
func failureReason(err error) string {
	var re *reasonError
	switch {
	case errors.As(err, &re):
		return re.reason
	case errors.Is(err, devcenter.ErrLinkExpired):
		return ReasonLinkExpired
	}
	return ReasonBlobError
}

// retryable reports whether a failed download is worth another attempt
// in this run: its bytes were wrong or it kept breaking off. Failures the
// client already retried (API and blob host errors, expired links) and
// the sink's are not.
func retryable(err error) bool {
	switch failureReason(err) {
	case ReasonMD5Mismatch, ReasonSizeMismatch, ReasonBlobChanged, ReasonDownloadBroken:
		return true
	}
	return false
}

// allowFingerprint identifies an allowlist: a refusal remembered under
// one fingerprint is tried again under any other. Entries are compared
// trimmed and in lower case, in any order.
func allowFingerprint(hosts []string) string {
	norm := make([]string, len(hosts))
	for i, h := range hosts {
		norm[i] = strings.ToLower(strings.TrimSpace(h))
	}
	slices.Sort(norm)
	norm = slices.Compact(norm)
	sum := sha256.Sum256([]byte(strings.Join(norm, "\n")))
	return hex.EncodeToString(sum[:8])
}

// tally counts cabs by outcome and reason.
type tally map[string]map[string]int

func (t tally) add(outcome, reason string, n int) {
	if outcome == "" || n == 0 {
		return
	}
	if reason == "" {
		reason = ReasonInterrupted // a queued cab the run never reached
	}
	if t[outcome] == nil {
		t[outcome] = map[string]int{}
	}
	t[outcome][reason] += n
}
