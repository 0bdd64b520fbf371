package pipeline

import (
	"fmt"
	"io"
	"sync/atomic"
)

// liveRun is the run being ingested, for the progress line.
type liveRun struct {
	label string       // "ihv_driver run 20261202T020000Z"
	read  atomic.Int64 // bytes of the download read so far
}

// countingReader counts the bytes read through it into n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// progressRows reports the live run's rows read so far and its bytes
// downloaded, if anyone listens.
func (r *Runner) progressRows(rows int) {
	if r.Progress == nil || r.live == nil {
		return
	}
	r.Progress(fmt.Sprintf("%s: %s rows, %s read", r.live.label, humanCount(int64(rows)), humanBytes(r.live.read.Load())))
}

// humanCount writes n as 950, 12.3k, 1.2M.
func humanCount(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprint(n)
	case n < 1_000_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprintf("%.1fM", float64(n)/1e6)
}

// humanBytes writes n as 512 B, 34 kB, 340 MB, 1.2 GB (decimal units).
func humanBytes(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1_000_000:
		return fmt.Sprintf("%d kB", n/1000)
	case n < 1_000_000_000:
		return fmt.Sprintf("%d MB", n/1_000_000)
	}
	return fmt.Sprintf("%.1f GB", float64(n)/1e9)
}
