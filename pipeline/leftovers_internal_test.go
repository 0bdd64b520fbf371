//go:build unix

package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/sinks/local"
)

// TestClaimTempSweepsDeadRunsOnly: a run's spill folders, however young,
// are removed by the next run once their runner is gone (its lock on the
// temp folder dropped), never while it holds the lock.
func TestClaimTempSweepsDeadRunsOnly(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	mkdir := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dead := mkdir(tempPrefix + "killed")
	other := mkdir("unrelated") // not ours: never touched

	live, err := claimTemp(dir, now) // nobody else holds the lock
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Error("a dead run's young spill folder survived a run that had the temp folder to itself")
	}
	mine := mkdir(tempPrefix + "live") // the live run's

	second, err := claimTemp(dir, now) // another run, while the first lives
	if err != nil {
		t.Fatal(err)
	}
	if n, err := sweepIdleTemp(dir, now, true); err != nil || n.found != 0 {
		t.Errorf("a purge while runs live swept %d folders (%v)", n, err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Fatal("a live run's spill folder was removed")
	}
	live.release()
	second.release()

	if n, err := sweepIdleTemp(dir, now, false); err != nil || n.found != 1 {
		t.Errorf("dry run after the runs ended: %d folders (%v), want 1", n, err)
	}
	third, err := claimTemp(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	third.release()
	if _, err := os.Stat(mine); !os.IsNotExist(err) {
		t.Error("the spill folder of a run that ended survived the next run")
	}
	if _, err := os.Stat(other); err != nil {
		t.Error("a folder that is not a spill folder was removed")
	}
}

// TestPurgeRemovesPartialWrites: under the lease, a purge removes every
// partial write of a killed put, however young, except a lease
// contender's (only those from over a minute before the cycle) and
// doctor's (an hour);
// without a lease, only those an hour old.
func TestPurgeRemovesPartialWrites(t *testing.T) {
	root := t.TempDir()
	sink, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	cycle := time.Now().Add(-time.Minute)
	plant := func(key string, age time.Duration) {
		p := filepath.Join(root, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o640); err != nil {
			t.Fatal(err)
		}
		mt := time.Now().Add(-age)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	young, old := time.Second, 2*time.Hour
	plant("ihv_driver/date=2026-11-20/.tmp-data", young)
	plant("cabs/date=2026-11-20/.tmp-cab", young)
	plant("_hdc/manifests/ihv_driver/.tmp-manifest", young)
	plant("_hdc/lease/.tmp-contender", young)          // after the cycle began: may be live
	plant("_hdc/lease/.tmp-loser", 90*time.Second)     // just before it: a contender that lost, maybe still linking
	plant("_hdc/lease/.tmp-dead", 3*time.Minute)       // well before it: dead
	plant("_hdc/doctor/abc/.tmp-probe", 2*time.Minute) // doctor runs without the lease
	plant("_hdc/doctor/def/.tmp-probe", old)

	r := &Runner{Sink: sink, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if n, err := r.sweepSinkTemp(cycle); err != nil || n != 1 {
		t.Errorf("without a lease: removed %d (%v), want 1 (the hour-old one)", n, err)
	}
	r.Fence = func(context.Context) error { return nil }
	if n, err := r.sweepSinkTemp(cycle); err != nil || n != 4 {
		t.Errorf("under the lease: removed %d (%v), want 4", n, err)
	}
	var left []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			left = append(left, filepath.ToSlash(rel))
		}
		return err
	})
	slices.Sort(left)
	if want := []string{"_hdc/doctor/abc/.tmp-probe", "_hdc/lease/.tmp-contender", "_hdc/lease/.tmp-loser"}; !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
	if _, err := os.Stat(filepath.Join(root, "ihv_driver")); !os.IsNotExist(err) {
		t.Error("the folder a partial write was alone in was not removed")
	}
}

// TestTempSpaceHint: a full temp folder is an error that says what to do;
// other errors pass unchanged.
func TestTempSpaceHint(t *testing.T) {
	full := fmt.Errorf("spill: write: %w", &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC})
	err := tempSpaceHint(full, "/var/tmp/hdc")
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "the temp folder /var/tmp/hdc is full") || !strings.Contains(err.Error(), "temp_dir") {
		t.Errorf("hint: %v", err)
	}
	other := errors.New("boom")
	if tempSpaceHint(other, "") != other {
		t.Error("an unrelated error was changed")
	}
}

// TestPurgeGoesOnPastAFolderItCannotRemove: a spill folder that cannot be
// removed (another user's) is counted and named, and everything else is
// still destroyed.
func TestPurgeGoesOnPastAFolderItCannotRemove(t *testing.T) {
	lake, tmp := t.TempDir(), t.TempDir()
	sink, err := local.New(lake)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	if err := sink.Put(t.Context(), "ihv_driver/date=2026-09-01/part-00000.parquet", strings.NewReader("old")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{tempPrefix + "foreign", tempPrefix + "dead"} {
		if err := os.Mkdir(filepath.Join(tmp, name), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	removeAll = func(path string) error {
		if filepath.Base(path) == tempPrefix+"foreign" {
			return &os.PathError{Op: "unlinkat", Path: path, Err: syscall.EACCES}
		}
		return os.RemoveAll(path)
	}
	t.Cleanup(func() { removeAll = os.RemoveAll })

	r := &Runner{Sink: sink, Config: Config{TempDir: tmp, Retention: Retention{Days: 30}}, Now: func() time.Time { return now },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rep, err := r.Purge(t.Context(), false)
	if err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "remove it by hand") {
		t.Errorf("purge error: %v", err)
	}
	if rep.Deleted != 1 || rep.TempFolders != 2 || rep.TempFoldersFailed != 1 || rep.Judge() != VerdictCannotDestroy {
		t.Errorf("report: deleted %d, temp folders %d (%d failed), verdict %s", rep.Deleted, rep.TempFolders, rep.TempFoldersFailed, rep.Judge())
	}
	if _, err := os.Stat(filepath.Join(tmp, tempPrefix+"dead")); !os.IsNotExist(err) {
		t.Error("the removable spill folder survived")
	}
}
