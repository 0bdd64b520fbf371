package schema

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/parquet-go/parquet-go/compress/zstd"
)

// TestZstdCodecMatchesParquetGo checks that the kept encoders write what
// parquet-go's own codec writes, from several goroutines at once.
func TestZstdCodecMatchesParquetGo(t *testing.T) {
	for _, level := range []zstd.Level{zstd.SpeedDefault, zstd.SpeedFastest} {
		ours, theirs := newZstdCodec(level), &zstd.Codec{Level: level}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				var dst []byte
				for i := range 20 {
					src := bytes.Repeat([]byte(fmt.Sprintf("row %d of goroutine %d;", i, g)), 1000+i*100)
					var err error
					if dst, err = ours.Encode(dst, src); err != nil {
						t.Error(err)
						return
					}
					want, _ := theirs.Encode(nil, src)
					if !bytes.Equal(dst, want) {
						t.Errorf("level %v: output differs from parquet-go's codec", level)
						return
					}
					if back, err := ours.Decode(nil, dst); err != nil || !bytes.Equal(back, src) {
						t.Errorf("level %v: round trip: %v", level, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if len(ours.idle) == 0 {
			t.Errorf("level %v: no encoder kept", level)
		}
	}
}
