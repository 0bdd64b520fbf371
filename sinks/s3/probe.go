package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hdc-export/hdc-export/sinks"
)

// probeDir is where ProbeCreateOnly writes its short-lived probe objects,
// under the runner's state area, outside every table location.
const probeDir = "_hdc/probe/"

// ProbeCreateOnly reports whether the store enforces create-only writes
// (If-None-Match: *), by writing a fresh probe object twice under
// "_hdc/probe/": the second write must fail with a precondition error.
// It returns false, nil for a store that rejects the header as not
// implemented and for one that silently ignores it (and would overwrite a
// lease); it returns an error only when the probe itself cannot run
// (credentials, network). The probe object is deleted afterwards.
func (s *Store) ProbeCreateOnly(ctx context.Context) (bool, error) {
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return false, fmt.Errorf("s3 %s: %w", opProbe, err)
	}
	key := probeDir + "create-only-" + hex.EncodeToString(nonce[:])
	defer func() {
		// Best effort, and even if ctx was cancelled meanwhile.
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		_ = s.Delete(cleanup, key)
	}()

	stamp := time.Now().UTC().Format(time.RFC3339)
	for attempt := 1; attempt <= 2; attempt++ {
		// Distinct bodies: after retries, PutIfAbsent counts a key that
		// already holds its very bytes as its own write.
		body := fmt.Sprintf("hdc-export create-only probe %s, write %d", stamp, attempt)
		err := s.PutIfAbsent(ctx, key, strings.NewReader(body))
		switch {
		case errors.Is(err, ErrNoConditionalWrites):
			return false, nil
		case attempt == 2 && errors.Is(err, sinks.ErrExists):
			return true, nil
		case err != nil:
			return false, fmt.Errorf("s3 %s: %w", opProbe, err)
		}
	}
	// The second create-only write succeeded: the header was ignored.
	return false, nil
}
