package s3_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hdc-export/hdc-export/sinks/s3/miniotest"
)

// maxPeakRSS is the acceptance bound for streaming a 1 GiB object with the
// default part size (8 MiB) and concurrency (4).
const maxPeakRSS = 150 << 20

// TestPutPeakRSS builds internal/putrss, streams a 1 GiB generated object
// into MinIO with it, and checks the process's peak resident memory
// (VmHWM). It runs in a child process so the test binary's own memory does
// not count. Skipped with -short.
func TestPutPeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 1 GiB; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("peak RSS is read from Linux /proc")
	}
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)

	bin := filepath.Join(t.TempDir(), "putrss")
	build := exec.Command("go", "build", "-o", bin, "./internal/putrss")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build putrss: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-endpoint", srv.Endpoint, "-bucket", bucket, "-size", strconv.Itoa(1<<30))
	cmd.Env = append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+srv.SecretKey,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("putrss: %v\n%s", err, out)
	}
	t.Logf("putrss: %s", out)
	m := regexp.MustCompile(`peak_rss_bytes=(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no peak_rss_bytes in %q", out)
	}
	if peak, _ := strconv.ParseInt(string(m[1]), 10, 64); peak >= maxPeakRSS {
		t.Errorf("peak RSS %.1f MiB for a 1 GiB Put, want < %d MiB", float64(peak)/(1<<20), maxPeakRSS>>20)
	}
}

// BenchmarkPut1GiB streams 1 GiB generated objects into MinIO through Put
// and reports throughput and the Go runtime's peak memory obtained from the
// OS (sampled every 10 ms), which bounds the heap's share of RSS.
//
//	go test -run '^$' -bench Put1GiB -benchtime 3x ./sinks/s3/
func BenchmarkPut1GiB(b *testing.B) {
	srv := miniotest.Shared(b)
	s := srv.NewStore(b, srv.NewBucket(b), "bench")

	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				if used := ms.Sys - ms.HeapReleased; used > peak.Load() {
					peak.Store(used)
				}
			}
		}
	}()

	b.SetBytes(1 << 30)
	for i := 0; b.Loop(); i++ {
		if err := s.Put(b.Context(), "big.bin", gen(uint64(i), 1<<30)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(done)
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-MiB")
}
