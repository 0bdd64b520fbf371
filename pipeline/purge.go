package pipeline

import (
	"context"
	"fmt"

	"github.com/hdc-export/hdc-export/sinks"
)

// deleteBatch is how many keys one Delete call carries (S3's limit).
const deleteBatch = 1000

// purge deletes every object whose date is outside the window: data, cabs,
// manifests and commit records alike, by the "date=" segment of the key.
func (r *Runner) purge(ctx context.Context, w Window, sum *Summary) error {
	var stale []string
	err := r.Sink.List(ctx, "", func(o sinks.Object) error {
		if d, ok := KeyDate(o.Key); ok && !w.Contains(d) {
			stale = append(stale, o.Key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	for len(stale) > 0 {
		n := min(len(stale), deleteBatch)
		if err := r.Sink.Delete(ctx, stale[:n]...); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		sum.ObjectsPurged += n
		stale = stale[n:]
	}
	if sum.ObjectsPurged > 0 {
		r.Log.Info("purged objects outside the retention window", "objects", sum.ObjectsPurged, "window_start", w.First.String())
	}
	return nil
}
