package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"

	"github.com/hdc-export/hdc-export/sinks"
)

// ErrNoConditionalWrites reports that the store rejected a create-only put
// (If-None-Match: *) as not implemented. It also wraps sinks.ErrPermanent.
// Use Store.ProbeCreateOnly to detect support up front.
var ErrNoConditionalWrites = errors.New("store does not support conditional writes (If-None-Match: *)")

// Operation names used in errors and by mapErr.
const (
	opPut         = "put"
	opPutIfAbsent = "put-if-absent"
	opGet         = "get"
	opStat        = "stat"
	opList        = "list"
	opDelete      = "delete"
	opLifecycle   = "put-lifecycle"
	opRules       = "lifecycle-rules"
	opProbe       = "probe-create-only"
	opSettings    = "settings"
	opWalk        = "walk"
	opDestroy     = "destroy"
	opLock        = "lock"
)

// permanentCodes are S3 error codes that no retry can fix.
var permanentCodes = map[string]bool{
	"AccessDenied":                 true,
	"AllAccessDisabled":            true,
	"AccountProblem":               true,
	"AuthorizationHeaderMalformed": true, // wrong region
	"InvalidAccessKeyId":           true,
	"InvalidBucketName":            true,
	"InvalidSecurity":              true,
	"NoSuchBucket":                 true,
	"PermanentRedirect":            true, // wrong region or endpoint
	"SignatureDoesNotMatch":        true,
}

// mapErr is the one place that classifies S3 errors. It wraps err with the
// operation and key (never credentials: SDK errors carry codes, request IDs
// and URLs without secrets) and with the sinks sentinel that matches:
//
//	KeyTooLongError, XMinioInvalidObjectName      → sinks.ErrInvalidKey
//	NoSuchBucket, AccessDenied/403, InvalidAccessKeyId,
//	SignatureDoesNotMatch, …                     → sinks.ErrPermanent
//	NoSuchKey, NotFound, 404                      → sinks.ErrNotFound
//	PreconditionFailed/412                        → sinks.ErrExists
//	ConditionalRequestConflict/409 (create-only)  → sinks.ErrExists
//	NotImplemented/501 on a create-only put       → ErrNoConditionalWrites + sinks.ErrPermanent
//	NotImplemented/501 otherwise                  → sinks.ErrPermanent
//
// Anything else (5xx after retries, network errors, cancellation) is
// wrapped unclassified, so callers may retry it. HeadObject responses have
// no body, so a missing bucket on Stat reads as 404 and maps to
// sinks.ErrNotFound.
func mapErr(op, key string, err error) error {
	if err == nil {
		return nil
	}
	where := "s3 " + op
	if key != "" {
		where += fmt.Sprintf(" %q", key)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", where, err)
	}

	code, status := errorCode(err)
	var kind error
	switch {
	case errors.Is(err, ErrNoCredentials):
		return fmt.Errorf("%s: %w", where, err) // permanent already
	case code == "KeyTooLongError" || code == "XMinioInvalidObjectName":
		kind = sinks.ErrInvalidKey
	case code == "NoSuchBucket":
		kind = fmt.Errorf("bucket does not exist: %w", sinks.ErrPermanent)
	case code == "NoSuchKey" || code == "NotFound" || status == http.StatusNotFound:
		kind = sinks.ErrNotFound
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed:
		kind = sinks.ErrExists
	case op == opPutIfAbsent && (code == "ConditionalRequestConflict" || status == http.StatusConflict):
		// AWS: a concurrent conditional write to the same key is in flight.
		kind = sinks.ErrExists
	case code == "NotImplemented" || status == http.StatusNotImplemented:
		if op == opPutIfAbsent || op == opProbe {
			kind = fmt.Errorf("%w: %w", ErrNoConditionalWrites, sinks.ErrPermanent)
		} else {
			kind = fmt.Errorf("operation not implemented by the store: %w", sinks.ErrPermanent)
		}
	case permanentCodes[code] || status == http.StatusForbidden || status == http.StatusUnauthorized:
		kind = sinks.ErrPermanent
	default:
		return fmt.Errorf("%s: %w", where, err)
	}
	return fmt.Errorf("%s: %w: %w", where, kind, err)
}

// errorCode extracts the S3 error code and HTTP status from an SDK error,
// or "" and 0 when err carries none.
func errorCode(err error) (code string, status int) {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	var httpErr interface{ HTTPStatusCode() int }
	if errors.As(err, &httpErr) {
		status = httpErr.HTTPStatusCode()
	}
	return code, status
}

// objectError is a per-key failure reported inside a successful response
// (DeleteObjects), shaped as an API error so mapErr classifies it.
type objectError struct {
	code, message string
}

func (e *objectError) Error() string                 { return fmt.Sprintf("api error %s: %s", e.code, e.message) }
func (e *objectError) ErrorCode() string             { return e.code }
func (e *objectError) ErrorMessage() string          { return e.message }
func (e *objectError) ErrorFault() smithy.ErrorFault { return smithy.FaultUnknown }
