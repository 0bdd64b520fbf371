package sinks

import (
	"errors"
	"fmt"
	"testing"
)

// TestErrPermanentSaysSo: a wrapped ErrPermanent is found by errors.Is and
// tells a retry policy (which asks for a Permanent method) to stop.
func TestErrPermanentSaysSo(t *testing.T) {
	err := fmt.Errorf("s3 put %q: access denied: %w", "k", ErrPermanent)
	if !errors.Is(err, ErrPermanent) {
		t.Fatal("errors.Is does not find ErrPermanent")
	}
	var p interface{ Permanent() bool }
	if !errors.As(err, &p) || !p.Permanent() {
		t.Fatal("a wrapped ErrPermanent does not say it is permanent")
	}
	if errors.As(fmt.Errorf("x: %w", ErrNotFound), &p) {
		t.Error("ErrNotFound says it is permanent")
	}
}
