package s3

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestCopySource(t *testing.T) {
	for key, want := range map[string]string{
		"lake/ds/date=2026-11-20/part-00000.parquet": "b/lake/ds/date%3D2026-11-20/part-00000.parquet",
		"a b/c+d&e?f#g%h":  "b/a%20b/c%2Bd%26e%3Ff%23g%25h",
		"ünï/~x_y.z-":      "b/%C3%BCn%C3%AF/~x_y.z-",
		"plain/Key09/AZaz": "b/plain/Key09/AZaz",
	} {
		if got := copySource("b", key); got != want {
			t.Errorf("copySource(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestReadHead(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB
	for _, c := range []struct {
		n, limit int64
	}{{0, 1 << 20}, {1, 1 << 20}, {1000, 1 << 20}, {1_000_000, 1_000_000}, {1_000_000, 1 << 19}, {1_000_000, 1 << 20}} {
		r := iotest.OneByteReader(bytes.NewReader(data[:c.n]))
		if c.n > 100_000 {
			r = iotest.HalfReader(bytes.NewReader(data[:c.n]))
		}
		got, err := readHead(r, c.limit)
		if err != nil {
			t.Fatalf("readHead(%d bytes, limit %d): %v", c.n, c.limit, err)
		}
		want := data[:min(c.n, c.limit)]
		if !bytes.Equal(got, want) {
			t.Errorf("readHead(%d bytes, limit %d) returned %d bytes", c.n, c.limit, len(got))
		}
		if int64(cap(got)) > c.limit {
			t.Errorf("readHead(limit %d) grew its buffer to %d", c.limit, cap(got))
		}
	}
	boom := errors.New("boom")
	if _, err := readHead(io.MultiReader(bytes.NewReader(data[:10]), iotest.ErrReader(boom)), 100); !errors.Is(err, boom) {
		t.Errorf("readHead(failing reader) = %v, want boom", err)
	}
}
