package lake

import "strings"

// Redact returns err with its text passed through r, so that a logged or
// returned error names no key or CabIdHash; errors.Is and errors.As still
// see err. An error whose text r leaves as it is comes back unchanged.
func Redact(err error, r *strings.Replacer) error {
	msg := r.Replace(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// redactedError is an error whose text was redacted.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
