// Command putrss streams one generated object through the S3 sink and
// reports throughput and peak memory, to check that Put's memory is bounded
// by part size × concurrency whatever the object size.
//
// Credentials come from the SDK's standard chain, for example:
//
//	AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… \
//	  /usr/bin/time -v go run ./sinks/s3/internal/putrss \
//	  -endpoint http://127.0.0.1:9000 -bucket lake -size 1073741824
//
// It prints one line of key=value pairs; peak_rss_bytes is the kernel's
// high-water mark of the process's resident memory (VmHWM).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"time"

	s3sink "github.com/hdc-export/hdc-export/sinks/s3"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "putrss:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("putrss", flag.ContinueOnError)
	var cfg s3sink.Config
	fs.StringVar(&cfg.Endpoint, "endpoint", "", "S3-compatible endpoint URL (empty: AWS)")
	fs.StringVar(&cfg.Bucket, "bucket", "", "bucket (must exist)")
	fs.StringVar(&cfg.Prefix, "prefix", "putrss", "key prefix")
	fs.StringVar(&cfg.Region, "region", "", "region (default us-east-1)")
	fs.StringVar(&cfg.Checksum, "checksum", "", "checksum mode (default auto)")
	fs.BoolVar(&cfg.PathStyle, "path-style", true, "path-style addressing")
	fs.Int64Var(&cfg.PartSize, "part-size", 0, "multipart part size in bytes (default 8 MiB)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "parallel part uploads (default 4)")
	size := fs.Int64("size", 1<<30, "object size in bytes")
	key := fs.String("key", "big.bin", "object key")
	keep := fs.Bool("keep", false, "keep the object instead of deleting it afterwards")
	if err := fs.Parse(args); err != nil {
		return err
	}

	store, err := s3sink.New(ctx, cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := store.Put(ctx, *key, generator(*size)); err != nil {
		return err
	}
	elapsed := time.Since(start)
	obj, err := store.Stat(ctx, *key)
	if err != nil {
		return err
	}
	if obj.Size != *size {
		return fmt.Errorf("stored %d bytes, want %d", obj.Size, *size)
	}
	if !*keep {
		if err := store.Delete(ctx, *key); err != nil {
			return err
		}
	}

	hwm, err := peakRSS()
	if err != nil {
		return err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	_, err = fmt.Fprintf(stdout,
		"store=%s bytes=%d seconds=%.2f mib_per_s=%.1f peak_rss_bytes=%d peak_rss_mib=%.1f go_sys_mib=%.1f total_alloc_mib=%.1f num_gc=%d\n",
		store, *size, elapsed.Seconds(), float64(*size)/(1<<20)/elapsed.Seconds(),
		hwm, float64(hwm)/(1<<20), float64(ms.Sys)/(1<<20), float64(ms.TotalAlloc)/(1<<20), ms.NumGC)
	return err
}

// generator returns size pseudo-random bytes as a plain stream (no Seek,
// no WriterTo), so Put cannot learn the size in advance.
func generator(size int64) io.Reader {
	return struct{ io.Reader }{io.LimitReader(rand.NewChaCha8([32]byte{1}), size)}
}

// peakRSS reads the resident-memory high-water mark (Linux VmHWM).
func peakRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("peak RSS needs Linux /proc: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}
