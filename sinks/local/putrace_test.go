package local_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/hdc-export/hdc-export/sinks/local"
)

// failingReader fails before its first byte.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("body failed") }

// TestFailedPutBesideNewFolder: a Put that fails and prunes the folders
// it made never breaks a concurrent Put into the same new folders (the
// cab mirror's first cabs of a date: one fails its MD5, the next lands).
func TestFailedPutBesideNewFolder(t *testing.T) {
	s, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 300 {
		dir := fmt.Sprintf("a%d/b/c", i)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for g := range 4 {
			wg.Go(func() {
				key := fmt.Sprintf("%s/k%d", dir, g)
				var r io.Reader = strings.NewReader("x")
				if g%2 == 1 {
					r = failingReader{}
				}
				if err := s.Put(ctx, key, r); (err != nil) != (g%2 == 1) {
					errs[g] = fmt.Errorf("put %s: %v", key, err)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
}
