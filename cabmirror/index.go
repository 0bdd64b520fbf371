package cabmirror

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // the cab's checksum as the blob host reports it
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/schema"
	"github.com/hdc-export/hdc-export/sinks"
)

// maxCabIndexBytes bounds an index file read into memory (about a
// million cabs of one date).
const maxCabIndexBytes = 256 << 20

// cabIndexes writes the cab index of every date inside the window so that
// it describes exactly the cabs stored under that date: present holds what
// was in the lake before this run, jobs what this run did. A date's index
// is rewritten only when its rows change, so an idle run writes nothing.
// A cab without a row (a crash between the cab and its index) is hashed
// from the sink.
//
// The mirror writes each date's index as soon as the last cab queued for
// that date is settled (dateDone, from any goroutine), while later dates
// still download; finish writes the rest.
type cabIndexes struct {
	m       *Mirror
	ctx     context.Context
	indexed map[lake.Date]bool // dates with an index in the lake
	present map[lake.Date]map[string]int64
	jobs    map[string]*cabJob
	byDate  map[lake.Date][]*cabJob // queued jobs, by date
	pending map[lake.Date]*atomic.Int32

	ready   chan lake.Date
	done    sync.WaitGroup
	mu      sync.Mutex
	wrote   map[lake.Date]bool
	changed []lake.Date // dates whose index was written or removed
	errs    []error
}

// startCabIndexes lists the existing indexes and starts the early writer.
// ctx should outlive cancellation: every cab that landed must be indexed.
func (m *Mirror) startCabIndexes(ctx context.Context, w lake.Window, present map[string]cabObject, jobs map[string]*cabJob, queue []*cabJob) (*cabIndexes, error) {
	x := &cabIndexes{m: m, ctx: ctx, indexed: map[lake.Date]bool{}, present: map[lake.Date]map[string]int64{}, jobs: jobs,
		byDate: map[lake.Date][]*cabJob{}, pending: map[lake.Date]*atomic.Int32{}, wrote: map[lake.Date]bool{}}
	err := m.Sink.List(ctx, lake.CabIndexDir+"/", func(o sinks.Object) error {
		if d, ok := lake.KeyDate(o.Key); ok && w.Contains(d) && o.Key == lake.CabIndexKey(d) {
			x.indexed[d] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list cab index: %w", err)
	}
	for h, o := range present {
		if x.present[o.date] == nil {
			x.present[o.date] = map[string]int64{}
		}
		x.present[o.date][h] = o.size
	}
	for _, j := range queue {
		d := j.ref.date
		x.byDate[d] = append(x.byDate[d], j)
		if x.pending[d] == nil {
			x.pending[d] = new(atomic.Int32)
		}
		x.pending[d].Add(1)
	}
	x.ready = make(chan lake.Date, len(x.pending))
	x.done.Go(func() {
		for d := range x.ready {
			x.write(d)
		}
	})
	return x, nil
}

// jobDone notes that a queued job is settled (mirrored or not).
func (x *cabIndexes) jobDone(j *cabJob) {
	if x.pending[j.ref.date].Add(-1) == 0 {
		x.ready <- j.ref.date
	}
}

// stored is what date d holds once its jobs are settled: hash → size.
func (x *cabIndexes) stored(d lake.Date) map[string]int64 {
	out := maps.Clone(x.present[d])
	for _, j := range x.byDate[d] {
		if j.outcome == cabMirrored {
			if out == nil {
				out = map[string]int64{}
			}
			out[j.ref.hash] = j.size
		}
	}
	return out
}

func (x *cabIndexes) write(d lake.Date) {
	changed, err := x.m.writeCabIndex(x.ctx, d, x.stored(d), x.indexed[d], x.jobs)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.wrote[d] = true
	if changed {
		x.changed = append(x.changed, d)
	}
	if err != nil {
		x.errs = append(x.errs, fmt.Errorf("cab index %s: %w", d, err))
	}
}

// finish waits for the early writes, then writes every other date's index
// (dates with stored cabs, or with an index to remove) with workers at once.
func (x *cabIndexes) finish(workers int) error {
	close(x.ready)
	x.done.Wait()
	todo := map[lake.Date]bool{}
	for d := range x.present {
		todo[d] = true
	}
	for d := range x.byDate {
		todo[d] = true
	}
	for d := range x.indexed {
		todo[d] = true
	}
	for d := range x.wrote {
		delete(todo, d)
	}
	dates := slices.Sorted(maps.Keys(todo))
	err := parallel(x.ctx, workers, len(dates), func(ctx context.Context, i int) error {
		x.write(dates[i])
		return nil
	})
	return errors.Join(append(x.errs, err)...)
}

// writeCabIndex writes date d's cab index of cabs, or removes it when
// there are none; changed reports whether the lake's index changed.
func (m *Mirror) writeCabIndex(ctx context.Context, d lake.Date, cabs map[string]int64, exists bool, jobs map[string]*cabJob) (changed bool, err error) {
	key := lake.CabIndexKey(d)
	old := map[string]schema.CabIndexRow{}
	var oldRows []schema.CabIndexRow
	if exists {
		rows, err := m.readCabIndex(ctx, key)
		switch {
		case errors.Is(err, sinks.ErrNotFound):
		case err != nil:
			// An unreadable index is rebuilt from the cabs.
			m.Log.Warn("cab index unreadable; rebuilding it", "date", d.String(), "error", err.Error())
		default:
			oldRows = rows
			for _, row := range rows {
				old[row.CabIDHash] = row
			}
		}
	}
	if len(cabs) == 0 {
		if !exists {
			return false, nil
		}
		if err := m.fence(ctx); err != nil {
			return false, err
		}
		return true, m.Sink.Delete(ctx, key)
	}
	rows := make([]schema.CabIndexRow, 0, len(cabs))
	for _, h := range slices.Sorted(maps.Keys(cabs)) {
		size := cabs[h]
		row := schema.CabIndexRow{CabIDHash: h, Key: lake.CabKey(d, h), Size: size, FailureDate: int32(d)}
		j := jobs[h]
		prev, had := old[h]
		switch {
		case j != nil && j.outcome == cabMirrored:
			row.MD5 = hex.EncodeToString(j.md5)
		case had && prev.Key == row.Key && prev.Size == size && prev.FailureDate == row.FailureDate && prev.MD5 != "":
			rows = append(rows, prev)
			continue
		default:
			sum, n, err := m.hashObject(ctx, row.Key)
			if err != nil {
				return false, redactCab(fmt.Errorf("hash stored cab: %w", err), cabRef{hash: h})
			}
			row.MD5, row.Size = sum, n
		}
		if j != nil {
			row.CollectionTime, row.ExpirationTime = timePtr(j.ref.collected), timePtr(j.ref.expires)
			row.Dataset, row.View = j.ref.dataset, j.ref.view
		} else if had {
			row.CollectionTime, row.ExpirationTime = prev.CollectionTime, prev.ExpirationTime
			row.Dataset, row.View = prev.Dataset, prev.View
		}
		rows = append(rows, row)
	}
	if exists && slices.EqualFunc(oldRows, rows, schema.CabIndexRow.Equal) {
		return false, nil
	}
	b, err := schema.EncodeCabIndex(rows, m.Compression)
	if err != nil {
		return false, err
	}
	if err := m.fence(ctx); err != nil {
		return false, err
	}
	return true, m.Sink.Put(ctx, key, bytes.NewReader(b))
}

// timePtr is t as an index row holds it: nil if unknown (zero).
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (m *Mirror) readCabIndex(ctx context.Context, key string) ([]schema.CabIndexRow, error) {
	rc, err := m.Sink.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxCabIndexBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(b) > maxCabIndexBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxCabIndexBytes)
	}
	return schema.DecodeCabIndex(b)
}

// hashObject streams a stored object through MD5.
func (m *Mirror) hashObject(ctx context.Context, key string) (string, int64, error) {
	rc, err := m.Sink.Get(ctx, key)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	h := md5.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
