//go:build unix

package pipeline

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// tempLock is one process's flock(2) on the temp folder itself. Every
// runner holds it shared while it may have spill folders there; the kernel
// drops it when the process dies, even by SIGKILL. Locking the folder
// rather than a file in it leaves nothing behind.
type tempLock struct{ f *os.File }

// lockTemp opens dir (default os.TempDir()) and locks it exclusively if no
// other process holds its lock. exclusive then means that no other runner
// is alive in dir, so every spill folder there is a dead run's. Otherwise
// l holds no lock until share. A nil l means that locks are unavailable.
func lockTemp(dir string) (l *tempLock, exclusive bool, err error) {
	if dir == "" {
		dir = os.TempDir()
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, false, err
	}
	switch err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); {
	case err == nil:
		return &tempLock{f: f}, true, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		return &tempLock{f: f}, false, nil
	default:
		f.Close()
		return nil, false, err
	}
}

// shareWait bounds how long share waits for another process's sweep. A
// sweep takes milliseconds; a sweeper that stalls longer (stopped, say)
// must not stall this run, which then goes on without the lock: a later
// sweep may then remove its live spill folders, which fails the run
// cleanly (the next one redoes it), never the lake.
const shareWait = 10 * time.Second

// share takes the lock shared (waiting while another process sweeps), or
// turns this process's exclusive lock into a shared one.
func (l *tempLock) share() error {
	if l == nil {
		return nil
	}
	deadline := time.Now().Add(shareWait)
	for {
		err := flock(l.f, syscall.LOCK_SH|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// release drops the lock.
func (l *tempLock) release() {
	if l != nil {
		l.f.Close()
	}
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
