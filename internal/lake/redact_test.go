package lake

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// TestRedact: the text loses what the replacer names, the chain stays, and
// an error the replacer does not touch comes back as it is.
func TestRedact(t *testing.T) {
	base := &fs.PathError{Op: "open", Path: "cabs/date=2026-10-01/abc.cab", Err: fs.ErrNotExist}
	err := Redact(base, strings.NewReplacer("abc", "<cab>"))
	if got := err.Error(); strings.Contains(got, "abc") || !strings.Contains(got, "<cab>.cab") {
		t.Errorf("redacted text %q", got)
	}
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) {
		t.Error("the redacted error lost its chain")
	}
	if Redact(base, strings.NewReplacer("xyz", "<cab>")) != error(base) {
		t.Error("an untouched error was wrapped")
	}
}
