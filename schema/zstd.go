package schema

import (
	"fmt"
	"runtime"

	kzstd "github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// keptEncoders bounds the idle encoders a zstdCodec keeps: at least as
// many as pages are compressed at once with the default parquet.encoders
// (one per worker, at most the CPUs). With more workers than this, the
// extra encoders are made anew for each page.
var keptEncoders = max(8, 2*runtime.GOMAXPROCS(0))

// zstdCodec is parquet-go's zstd codec with encoders that live as long as
// the process. parquet-go pools its encoders in a pool that every garbage
// collection empties, and a new encoder allocates and clears a history of
// at least 1 MiB: with the collector running a few dozen times a run, that
// was 5% of a run's CPU. Its output is the same as parquet-go's (same
// options).
type zstdCodec struct {
	zstd.Codec // String, CompressionCodec and Decode
	idle       chan *kzstd.Encoder
}

func newZstdCodec(level zstd.Level) *zstdCodec {
	return &zstdCodec{Codec: zstd.Codec{Level: level}, idle: make(chan *kzstd.Encoder, keptEncoders)}
}

// Encode compresses src into dst[:0]. It is safe for concurrent use.
func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	var e *kzstd.Encoder
	select {
	case e = <-c.idle:
	default:
		var err error
		e, err = kzstd.NewWriter(nil,
			kzstd.WithEncoderConcurrency(1),
			kzstd.WithEncoderLevel(c.Level),
			kzstd.WithZeroFrames(true),
			kzstd.WithEncoderCRC(false),
		)
		if err != nil {
			return dst, fmt.Errorf("zstd encoder: %w", err)
		}
	}
	dst = e.EncodeAll(src, dst[:0])
	select {
	case c.idle <- e:
	default: // enough kept: this one goes to the collector
	}
	return dst, nil
}
