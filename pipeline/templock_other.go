//go:build !unix

package pipeline

// tempLock: without flock, no lock; spill folders are then swept by age
// only (see sweepTemp).
type tempLock struct{}

func lockTemp(string) (*tempLock, bool, error) { return nil, false, nil }

func (l *tempLock) share() error { return nil }

func (l *tempLock) release() {}
