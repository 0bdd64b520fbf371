package pipeline

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // the cab's checksum as the blob host reports it
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/hdc-export/hdc-export/internal/lake"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/hdc-export/hdc-export/schema"
	"github.com/hdc-export/hdc-export/sinks"
)

// CabIndexRow is one row of the cab index (cab_index/date=D/part-00000.parquet):
// a mirrored cab, its key, size and MD5, and the times its report rows
// gave. Analysts join it to the failures on cab_id_hash. Timestamps are
// INT64 milliseconds adjusted to UTC, the date a DATE, no unsigned types,
// like every table of the lake.
type CabIndexRow struct {
	CabIDHash      string     `parquet:"cab_id_hash,string"`
	Key            string     `parquet:"key,string"`
	Size           int64      `parquet:"size,int(64)"`
	MD5            string     `parquet:"md5,string"` // lower-case hex
	CollectionTime *time.Time `parquet:"cab_collection_time,timestamp(millisecond:utc)"`
	ExpirationTime *time.Time `parquet:"cab_expiration_time,timestamp(millisecond:utc)"`
	FailureDate    int32      `parquet:"failure_date,date"`
	Dataset        string     `parquet:"dataset,string,dict"`
	View           string     `parquet:"view,string,dict"`
}

// cabIndexLayout describes the index's columns for schema.Layout.Verify,
// the independent (arrow-go) check every written index passes.
var cabIndexLayout = &schema.Layout{Fields: []schema.Field{
	{Name: "cab_id_hash", Type: schema.String},
	{Name: "key", Type: schema.String},
	{Name: "size", Type: schema.Int64},
	{Name: "md5", Type: schema.String},
	{Name: "cab_collection_time", Type: schema.Timestamp},
	{Name: "cab_expiration_time", Type: schema.Timestamp},
	{Name: "failure_date", Type: schema.Date},
	{Name: "dataset", Type: schema.String},
	{Name: "view", Type: schema.String},
}}

// maxCabIndexBytes bounds an index file read into memory (about a
// million cabs of one date).
const maxCabIndexBytes = 256 << 20

// EncodeCabIndex writes rows, sorted by cab_id_hash, as one Parquet file
// and checks it with arrow-go's reader. Equal rows give equal bytes.
func EncodeCabIndex(rows []CabIndexRow, compression string) ([]byte, error) {
	codec, err := schema.Codec(compression)
	if err != nil {
		return nil, err
	}
	rows = slices.Clone(rows)
	slices.SortFunc(rows, func(a, b CabIndexRow) int { return strings.Compare(a.CabIDHash, b.CabIDHash) })
	for i := range rows {
		rows[i].CollectionTime = truncMillis(rows[i].CollectionTime)
		rows[i].ExpirationTime = truncMillis(rows[i].ExpirationTime)
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[CabIndexRow](&buf,
		parquet.Compression(codec),
		parquet.DataPageStatistics(true),
		parquet.CreatedBy("hdc-export", schema.Version, ""),
		parquet.KeyValueMetadata("hdc.schema_version", schema.Version),
		parquet.KeyValueMetadata("hdc.table", lake.CabIndexDir),
	)
	if _, err := w.Write(rows); err != nil {
		return nil, fmt.Errorf("write cab index: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("close cab index: %w", err)
	}
	if err := cabIndexLayout.Verify(bytes.NewReader(buf.Bytes()), int64(len(rows))); err != nil {
		return nil, fmt.Errorf("cab index: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeCabIndex reads an index file.
func DecodeCabIndex(b []byte) ([]CabIndexRow, error) {
	rows, err := parquet.Read[CabIndexRow](bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("read cab index: %w", err)
	}
	return rows, nil
}

func truncMillis(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	u := time.UnixMilli(t.UnixMilli()).UTC()
	return &u
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return truncMillis(&t)
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.UnixMilli() == b.UnixMilli()
}

func sameRows(a, b []CabIndexRow) bool {
	return slices.EqualFunc(a, b, func(x, y CabIndexRow) bool {
		return x.CabIDHash == y.CabIDHash && x.Key == y.Key && x.Size == y.Size && x.MD5 == y.MD5 &&
			sameTime(x.CollectionTime, y.CollectionTime) && sameTime(x.ExpirationTime, y.ExpirationTime) &&
			x.FailureDate == y.FailureDate && x.Dataset == y.Dataset && x.View == y.View
	})
}

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
	r       *Runner
	ctx     context.Context
	indexed map[lake.Date]bool // dates with an index in the lake
	present map[lake.Date]map[string]int64
	jobs    map[string]*cabJob
	byDate  map[lake.Date][]*cabJob // queued jobs, by date
	pending map[lake.Date]*atomic.Int32

	ready chan lake.Date
	done  sync.WaitGroup
	mu    sync.Mutex
	wrote map[lake.Date]bool
	errs  []error
}

// startCabIndexes lists the existing indexes and starts the early writer.
// ctx should outlive cancellation: every cab that landed must be indexed.
func (r *Runner) startCabIndexes(ctx context.Context, w lake.Window, present map[string]cabObject, jobs map[string]*cabJob, queue []*cabJob) (*cabIndexes, error) {
	x := &cabIndexes{r: r, ctx: ctx, indexed: map[lake.Date]bool{}, present: map[lake.Date]map[string]int64{}, jobs: jobs,
		byDate: map[lake.Date][]*cabJob{}, pending: map[lake.Date]*atomic.Int32{}, wrote: map[lake.Date]bool{}}
	err := r.Sink.List(ctx, lake.CabIndexDir+"/", func(o sinks.Object) error {
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
	err := x.r.writeCabIndex(x.ctx, d, x.stored(d), x.indexed[d], x.jobs)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.wrote[d] = true
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

func (r *Runner) writeCabIndex(ctx context.Context, d lake.Date, cabs map[string]int64, exists bool, jobs map[string]*cabJob) error {
	key := lake.CabIndexKey(d)
	old := map[string]CabIndexRow{}
	var oldRows []CabIndexRow
	if exists {
		rows, err := r.readCabIndex(ctx, key)
		switch {
		case errors.Is(err, sinks.ErrNotFound):
		case err != nil:
			// An unreadable index is rebuilt from the cabs.
			r.Log.Warn("cab index unreadable; rebuilding it", "date", d.String(), "error", err.Error())
		default:
			oldRows = rows
			for _, row := range rows {
				old[row.CabIDHash] = row
			}
		}
	}
	if len(cabs) == 0 {
		if !exists {
			return nil
		}
		if err := r.fence(ctx); err != nil {
			return err
		}
		return r.Sink.Delete(ctx, key)
	}
	rows := make([]CabIndexRow, 0, len(cabs))
	for _, h := range slices.Sorted(maps.Keys(cabs)) {
		size := cabs[h]
		row := CabIndexRow{CabIDHash: h, Key: lake.CabKey(d, h), Size: size, FailureDate: int32(d)}
		j := jobs[h]
		prev, had := old[h]
		switch {
		case j != nil && j.outcome == cabMirrored:
			row.MD5 = hex.EncodeToString(j.md5)
		case had && prev.Key == row.Key && prev.Size == size && prev.FailureDate == row.FailureDate && prev.MD5 != "":
			rows = append(rows, prev)
			continue
		default:
			sum, n, err := r.hashObject(ctx, row.Key)
			if err != nil {
				return redactCab(fmt.Errorf("hash stored cab: %w", err), cabRef{hash: h})
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
	if exists && sameRows(oldRows, rows) {
		return nil
	}
	b, err := EncodeCabIndex(rows, r.Config.Parquet.Compression)
	if err != nil {
		return err
	}
	if err := r.fence(ctx); err != nil {
		return err
	}
	return r.Sink.Put(ctx, key, bytes.NewReader(b))
}

func (r *Runner) readCabIndex(ctx context.Context, key string) ([]CabIndexRow, error) {
	rc, err := r.Sink.Get(ctx, key)
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
	return DecodeCabIndex(b)
}

// hashObject streams a stored object through MD5.
func (r *Runner) hashObject(ctx context.Context, key string) (string, int64, error) {
	rc, err := r.Sink.Get(ctx, key)
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
