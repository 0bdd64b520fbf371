//go:build unix

package local_test

import (
	"maps"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hdc-export/hdc-export/sinks"
)

// TestInventoryNamedPipe checks that a named pipe is walked as
// sinks.ItemOther (never opened, which would block) and unlinked.
func TestInventoryNamedPipe(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	writeFile(t, dir, "p/keep", "k")
	if err := syscall.Mkfifo(filepath.Join(dir, "p", "fifo"), 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	items := walk(t, s)
	if got := kinds(items); !maps.Equal(got, map[string]sinks.ItemKind{"p/keep": sinks.ItemObject, "p/fifo": sinks.ItemOther}) {
		t.Fatalf("Walk = %q", got)
	}
	var pipe []sinks.Item
	for _, it := range items {
		if it.Kind == sinks.ItemOther {
			pipe = append(pipe, it)
		}
	}
	if failures, err := s.Destroy(t.Context(), pipe); err != nil || len(failures) > 0 {
		t.Fatalf("Destroy = %v, %v", failures, err)
	}
	wantTree(t, dir, "p/", "p/keep")
}
