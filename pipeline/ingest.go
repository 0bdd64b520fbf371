package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/hdc-export/hdc-export/internal/lake"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/schema"
	"github.com/hdc-export/hdc-export/sinks"
)

// runResult is what ingesting one run did.
type runResult struct {
	commit     lake.Commit
	change     *lake.SchemaChange  // the run's compatible schema change, if any
	widened    *lake.DatasetSchema // the dataset's record, to store once committed
	partitions int
	bytes      int64
	// heldBack lists the partitions that made the run held back (see
	// checkShrink): nothing of it was committed.
	heldBack []shrink
	// files maps each owned date to its file (nil: none), for the table
	// format's commit.
	files map[lake.Date]*lake.File
}

// ingest downloads one run, converts its rows into date partitions, writes
// every partition the run owns (data, then manifest), and writes the run's
// commit record last.
func (r *Runner) ingest(ctx context.Context, rc ReportConfig, reportID devcenter.ID, j job, w lake.Window) (runResult, error) {
	run := lake.RunID(j.run.Time)
	res := runResult{commit: lake.Commit{Dataset: rc.Name, ReportID: int64(reportID), Run: run}}
	ds, err := schema.Lookup(rc.Template.View)
	if err != nil {
		return res, err
	}
	body, err := r.open(ctx, reportID, j.run)
	if err != nil {
		return res, err
	}
	defer body.Close()
	live := &liveRun{label: rc.Name + " run " + run}
	r.live = live
	defer func() { r.live = nil }()
	cr, err := devcenter.NewReportReader(countingReader{body, &live.read})
	if err != nil {
		return res, err
	}
	cr.SetMaxRecord(r.Config.Limits.MaxRecordBytes)
	defer cr.ReadAhead()() // runs before the deferred body.Close, which ends a read that hangs
	file := fmt.Sprintf("report %d run %s", reportID, run)

	var layout *schema.Layout
	var leave map[lake.Date]bool // owned dates the file shows it does not cover
	header, err := cr.Read()
	switch {
	case errors.Is(err, io.EOF): // an empty file: no rows for any date
		if res.heldBack, err = r.checkShrink(ctx, rc.Name, run, j, nil, nil); err != nil || len(res.heldBack) > 0 {
			return res, err
		}
	case err != nil:
		return res, fmt.Errorf("%s: read header: %w", file, scrubCSV(err))
	default:
		for i := range header { // its strings share memory with rows the layout must not keep alive
			header[i] = strings.Clone(header[i])
		}
		if layout, err = schema.Bind(ds, header); err != nil {
			return res, fmt.Errorf("%s: %w", file, err)
		}
		if err := r.checkUnknownColumns(file, layout); err != nil {
			return res, err
		}
		if layout.Dated() != rc.Dated() {
			return res, fmt.Errorf("%s: the file's header and the template disagree on %s: nothing of this run is committed", file, schema.DateSource)
		}
		if res.change, res.widened, err = r.checkSchema(ctx, rc.Name, layout); err != nil {
			return res, fmt.Errorf("%s: %w", file, err)
		}
		sp, err := newSpill(r.Config.TempDir, layout)
		if err != nil {
			return res, err
		}
		defer sp.close()
		sp.quarantineCap = r.Config.Limits.QuarantineBytes
		opts := schema.EncoderOptions{
			Compression:  r.Config.Parquet.Compression,
			RowGroupRows: r.Config.Parquet.RowGroupRows,
			Metadata: map[string]string{
				"hdc.dataset": rc.Name, "hdc.report_id": strconv.FormatInt(int64(reportID), 10),
				"hdc.run": run, "hdc.schema_version": schema.Version,
			},
		}
		sp.speculate(ctx, r.Config.Parquet.encoders(), opts)
		rt := newRouter(&res.commit, w, j)
		if err := r.split(ctx, cr, file, layout, sp, rt); err != nil {
			return res, err
		}
		if switched, err := r.learnReading(ctx, rc, run, rt); err != nil || switched {
			if err == nil {
				err = fmt.Errorf("%s: %w", file, errReadingChanged)
			}
			return res, err
		}
		if err := r.putQuarantine(ctx, rc.Name, reportID, run, sp); err != nil {
			return res, err
		}
		if err := r.checkBadRows(file, &res.commit); err != nil {
			return res, err
		}
		r.warnCoverage(rc, run, &res.commit, j)
		leave = r.leftOut(rc, run, rt)
		if res.heldBack, err = r.checkShrink(ctx, rc.Name, run, j, sp, leave); err != nil || len(res.heldBack) > 0 {
			return res, err
		}
		err = sp.encode(ctx, sp.dates(), r.Config.Parquet.encoders(), opts, func(d lake.Date, part *spillPart) error {
			return r.commitOwned(ctx, rc.Name, reportID, run, d, layout, part, &res)
		})
		if err != nil {
			return res, err
		}
	}
	// Owned dates without rows in this run: the run says they have none.
	for d := range j.owns {
		if !slices.Contains(res.commit.Partitions, d.String()) && !leave[d] {
			if err := r.commitOwned(ctx, rc.Name, reportID, run, d, layout, nil, &res); err != nil {
				return res, err
			}
		}
	}
	slices.Sort(res.commit.Partitions)
	if err := r.commitFormat(ctx, &res); err != nil {
		return res, err
	}
	if err := r.fence(ctx); err != nil {
		return res, err
	}
	if res.widened != nil {
		if err := lake.PutJSON(ctx, r.Sink, lake.SchemaKey(rc.Name), res.widened); err != nil {
			return res, fmt.Errorf("write schema record: %w", err)
		}
	}
	if err := lake.PutJSON(ctx, r.Sink, lake.CommitKey(rc.Name, int64(reportID), j.run.Time), res.commit); err != nil {
		return res, err
	}
	r.Log.Info("run committed", "report", rc.Name, "run", run, "partitions", res.partitions,
		"rows", res.commit.Rows, "rows_bad", res.commit.Bad, "rows_superseded", res.commit.Superseded)
	return res, nil
}

// commitOwned commits date d of a run (see commitPartition) and counts it
// in res.
func (r *Runner) commitOwned(ctx context.Context, dataset string, reportID devcenter.ID, run string, d lake.Date, layout *schema.Layout, part *spillPart, res *runResult) error {
	n, f, owned, err := r.commitPartition(ctx, dataset, reportID, run, d, layout, part, res.change)
	if err != nil {
		return fmt.Errorf("partition %s: %w", d, err)
	}
	if owned {
		if res.files == nil {
			res.files = map[lake.Date]*lake.File{}
		}
		res.files[d] = f
	}
	res.commit.Partitions = append(res.commit.Partitions, d.String())
	res.partitions++
	res.bytes += n
	return nil
}

// split reads every record, types it, and routes it to its date's spill
// file (see router). Rows that do not parse are quarantined under their
// failure date, or under the oldest date the run covers (an undated
// report's only date) when the date itself is unreadable; the first error
// is logged by line and column, never by value. A record longer than
// limits.max_record_bytes is quarantined as too long, by its prefix. Three
// goroutines overlap: the download and its decompression (the reader's
// read-ahead), finding the records (readRecords), and typing and spilling
// them (split).
func (r *Runner) split(ctx context.Context, cr *devcenter.RecordReader, file string, layout *schema.Layout, sp *spill, rt *router) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches, free := make(chan *recordBatch, 4), make(chan *recordBatch, 5)
	go readRecords(ctx, cr, batches, free)
	var buf []byte
	var fields []string // of the record being typed, if it came unsplit
	comma, di := cr.Comma(), layout.DateIndex()
	n := 0
	for batch := range batches {
		for _, rec := range batch.recs {
			if n%16384 == 0 && n > 0 { // never a stale "0 rows"
				r.progressRows(n)
			}
			n++
			// A record dropped for its date alone is not typed, nor even
			// split if it came unsplit.
			if rec.unsplit {
				if date, ok := devcenter.Field(rec.raw, comma, di); ok && rt.dropByDate(date) {
					continue
				}
				fields = devcenter.AppendFields(fields[:0], rec.raw, comma)
				rec.fields = fields
			} else {
				pe, bad := badRecord(rec.err)
				switch {
				case errors.Is(rec.err, io.EOF):
					r.progressRows(n - 1) // the run's final count (EOF is not a row)
					return nil
				case bad:
					var prefix []string
					if errors.Is(pe.Err, devcenter.ErrRecordTooLong) && len(rec.fields) > 0 {
						prefix = rec.fields[:len(rec.fields)-1] // the last field is cut short
					}
					if err := r.badRow(rt, file, sp, &schema.FieldError{Line: pe.StartLine, Err: tooLongReason(pe)}, prefix, layout); err != nil {
						return err
					}
					continue
				case rec.err != nil:
					return fmt.Errorf("%s: read: %w", file, scrubCSV(rec.err))
				}
				if di >= 0 && di < len(rec.fields) && rt.dropByDate(rec.fields[di]) {
					continue
				}
			}
			var d int32
			var err error
			buf, d, err = layout.AppendRow(buf[:0], rec.fields, rec.line)
			if err != nil {
				var fe *schema.FieldError
				if !errors.As(err, &fe) {
					return fmt.Errorf("%s: %w", file, err)
				}
				if err := r.badRow(rt, file, sp, fe, rec.fields, layout); err != nil {
					return err
				}
				continue
			}
			date := lake.Date(d)
			if !layout.Dated() {
				date = rt.j.first // the run's own date
			}
			if rt.keep(date) {
				if err := sp.write(date, buf); err != nil {
					return err
				}
				if err := sp.moved(date); err != nil {
					return err
				}
				rt.c.Rows++
			}
		}
		select {
		case free <- batch:
		default:
		}
	}
	return ctx.Err() // the reader stopped early: the context ended
}

// tooLongReason is the quarantine reason of a record the reader could not
// take: its own, or for a record past the maximum, with the lines it
// spanned.
func tooLongReason(pe *csv.ParseError) error {
	if !errors.Is(pe.Err, devcenter.ErrRecordTooLong) {
		return pe.Err
	}
	return fmt.Errorf("%w (lines %d to %d, over limits.max_record_bytes): only its first %d bytes are kept", pe.Err, pe.StartLine, pe.Line, devcenter.RecordPrefix)
}

// router decides, by its failure date, what becomes of each row of a run
// (see keep), and counts in c the rows it does not keep.
type router struct {
	c *lake.Commit
	w lake.Window
	j job
	// oldest and newest are the oldest and newest in-window dates of any
	// row (noDate if none): the file's own word on the days it covers.
	oldest, newest lake.Date
}

func newRouter(c *lake.Commit, w lake.Window, j job) *router {
	return &router{c: c, w: w, j: j, oldest: noDate, newest: noDate}
}

// keep reports whether a row dated d is kept (written, or quarantined if
// bad). Rows of dates outside the window are dropped (c.TooOld). Rows of
// dates outside the run's assumed coverage are counted (c.Uncovered) and
// kept if no newer run covers their date, else dropped. Rows of covered
// dates a newer run owns are dropped (c.Superseded).
func (rt *router) keep(d lake.Date) bool {
	if !rt.w.Contains(d) {
		rt.c.TooOld++
		return false
	}
	if rt.newest == noDate || d < rt.oldest {
		rt.oldest = d
	}
	rt.newest = max(rt.newest, d)
	if d < rt.j.first || d > rt.j.last {
		rt.c.Uncovered++
		return rt.j.keeps[d]
	}
	if !rt.j.owns[d] {
		rt.c.Superseded++
		return false
	}
	return true
}

// dropByDate reports whether a record is dropped for its failure date
// alone (see keep). It decides as split and badRow would after typing the
// whole record, good or bad, when the date parses; a record without a
// readable date is left to them.
func (rt *router) dropByDate(date string) bool {
	d, err := schema.ParseDate(date)
	if err != nil {
		return false
	}
	if rt.keep(lake.Date(d)) {
		rt.undo(lake.Date(d)) // split or badRow counts it again
		return false
	}
	return true
}

// undo takes back keep's count of a kept row of date d.
func (rt *router) undo(d lake.Date) {
	if d < rt.j.first || d > rt.j.last {
		rt.c.Uncovered--
	}
}

// badRecord reports whether err is a CSV error about one record (a bad
// quote, say), after which the reader goes on, rather than the file
// breaking off.
func badRecord(err error) (*csv.ParseError, bool) {
	var pe *csv.ParseError
	if errors.As(err, &pe) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return pe, true
	}
	return nil, false
}

// csvRecord is one read of a report's records: a record and its line, or
// an error (io.EOF last). A record without quotes comes unsplit, as raw
// (see devcenter.RecordReader.Unsplit), so that the reading goroutine
// does not split lines the split goroutine drops for their date.
type csvRecord struct {
	fields  []string
	raw     string
	unsplit bool
	line    int
	err     error
}

// recordBatch is records handed over at once; their fields share one
// slice, reused with the batch.
type recordBatch struct {
	recs   []csvRecord
	fields []string
}

// readBatch is how many records readRecords hands over at once.
const readBatch = 256

// readRecords reads cr into batches until io.EOF or a non-record error,
// which it sends as the last record, then closes out. Batches come from
// free when it has one; a batch sent is not touched again. It stops early,
// without an error record, when ctx ends.
func readRecords(ctx context.Context, cr *devcenter.RecordReader, out chan<- *recordBatch, free <-chan *recordBatch) {
	defer close(out)
	var batch *recordBatch
	for {
		if batch == nil {
			select {
			case batch = <-free:
				batch.recs, batch.fields = batch.recs[:0], batch.fields[:0]
			default:
				batch = &recordBatch{recs: make([]csvRecord, 0, readBatch)}
			}
		}
		var rec csvRecord
		if raw, ok := cr.Unsplit(); ok {
			rec = csvRecord{raw: raw, unsplit: true, line: cr.Line()}
		} else {
			start := len(batch.fields)
			var err error
			batch.fields, err = cr.Append(batch.fields)
			end := len(batch.fields)
			rec = csvRecord{fields: batch.fields[start:end:end], line: cr.Line(), err: err}
		}
		batch.recs = append(batch.recs, rec)
		_, bad := badRecord(rec.err)
		last := rec.err != nil && !bad
		if len(batch.recs) == readBatch || last {
			select {
			case out <- batch:
			case <-ctx.Done():
				return
			}
			batch = nil
		}
		if last {
			return
		}
	}
}

// badRow quarantines a bad record under its failure date if it has a
// readable one it keeps (see router.keep), else under the run's first
// date, and counts it in c.Bad (and c.BadNotKept past the quarantine's
// cap).
func (r *Runner) badRow(rt *router, file string, sp *spill, fe *schema.FieldError, rec []string, layout *schema.Layout) error {
	date := rt.j.first
	if di := layout.DateIndex(); di >= 0 && di < len(rec) {
		if d, err := schema.ParseDate(rec[di]); err == nil {
			if date = lake.Date(d); !rt.keep(date) {
				return nil // too old, or a newer run owns this date and its bad rows
			}
		}
	}
	if !rt.w.Contains(date) { // too old to keep, bad or not
		rt.c.TooOld++
		return nil
	}
	c := rt.c
	c.Bad++
	if c.Bad == 1 {
		r.Log.Warn("bad row quarantined", "file", file, "error", fe.Error())
	}
	kept, err := sp.quarantine(date, fe, rec)
	if !kept && err == nil {
		c.BadNotKept++
	}
	return err
}

// putQuarantine stores the run's bad rows, per date, under
// _hdc/quarantine/<dataset>/date=D/, where the purge ages them out with
// the data.
func (r *Runner) putQuarantine(ctx context.Context, dataset string, reportID devcenter.ID, run string, sp *spill) error {
	if err := sp.finishQuarantine(); err != nil {
		return err
	}
	for d, q := range sp.quarantined {
		if err := r.fence(ctx); err != nil {
			return err
		}
		key := lake.QuarantineKey(dataset, d, int64(reportID), run)
		// A run that keeps failing (too many bad rows, say) is read again
		// every cycle: its unchanged quarantine is not written again.
		if same, err := sameObject(ctx, r.Sink, key, q.f); err != nil || same {
			if err != nil {
				return fmt.Errorf("read quarantine: %w", err)
			}
			continue
		}
		if err := r.Sink.Put(ctx, key, q.f); err != nil {
			return fmt.Errorf("put quarantine: %w", err)
		}
	}
	return nil
}

// checkBadRows fails the run, before anything of it is committed, when the
// share of bad rows is above bad_rows.max_fraction.
func (r *Runner) checkBadRows(file string, c *lake.Commit) error {
	total := c.Rows + c.Bad
	if c.Bad == 0 || float64(c.Bad) <= r.Config.BadRows.MaxFraction*float64(total) {
		return nil
	}
	return fmt.Errorf("%s: %d of %d rows do not parse, above bad_rows.max_fraction %g: nothing of this run is committed (its bad rows are in _hdc/quarantine/)",
		file, c.Bad, total, r.Config.BadRows.MaxFraction)
}

// scrubCSV drops csv.ParseError's wrapping (its text is safe: positions
// only) and keeps the cause.
func scrubCSV(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("line %d: %w", pe.StartLine, pe.Err)
	}
	return err
}

// open downloads a run's file, asking for a fresh link once if the one in
// hand has expired.
func (r *Runner) open(ctx context.Context, reportID devcenter.ID, run devcenter.Run) (io.ReadCloser, error) {
	body, err := r.API.Download(ctx, run.Location)
	if !errors.Is(err, devcenter.ErrLinkExpired) {
		return body, err
	}
	runs, err2 := r.API.ReportData(ctx, reportID, run.Time, run.Time)
	if err2 != nil {
		return nil, fmt.Errorf("refresh expired link: %w", err2)
	}
	for _, fresh := range runs {
		if fresh.Time.Equal(run.Time) && fresh.Location != "" {
			return r.API.Download(ctx, fresh.Location)
		}
	}
	return nil, err
}

// commitPartition makes date d of the dataset hold this run's rows (part,
// or none if part is nil) unless a newer run already wrote it. change is
// the run's compatible schema change, recorded in the manifest. The data
// object is put before the manifest, so a crash in between is redone by the
// next run. It returns the bytes written, and whether the run owns the
// date with its file (nil: no rows).
func (r *Runner) commitPartition(ctx context.Context, dataset string, reportID devcenter.ID, run string, d lake.Date, layout *schema.Layout, part *spillPart, change *lake.SchemaChange) (int64, *lake.File, bool, error) {
	if err := r.fence(ctx); err != nil {
		return 0, nil, false, err
	}
	var old lake.Manifest
	err := lake.GetJSON(ctx, r.Sink, lake.ManifestKey(dataset, d), &old)
	switch {
	case errors.Is(err, sinks.ErrNotFound):
	case err != nil:
		return 0, nil, false, err
	case old.Run > run:
		r.Log.Info("partition kept: a newer run wrote it", "dataset", dataset, "date", d.String())
		return 0, nil, false, nil
	}
	m := lake.Manifest{Dataset: dataset, Date: d.String(), ReportID: int64(reportID), Run: run, SchemaVersion: schema.Version, SchemaChange: change}
	if layout != nil {
		m.Schema = layout.Signature()
	}
	var written int64
	var file *lake.File
	switch {
	case part == nil && r.Format != nil: // the table format drops the date's old file in the run's commit
	case part == nil:
		if err := r.Sink.Delete(ctx, lake.DataKey(dataset, d)); err != nil {
			return 0, nil, false, fmt.Errorf("remove data: %w", err)
		}
	default:
		f, err := checkPart(layout, part, r.dataKey(dataset, d, run))
		if err != nil {
			return 0, nil, false, err
		}
		m.Rows, m.Files, file = f.Rows, []lake.File{f}, &f
		// A table format's purge may have removed the file of a run that
		// never committed, so it is always put again.
		if r.Format != nil || !(old.Run == run && slices.Equal(old.Files, m.Files)) {
			if err := r.Sink.Put(ctx, f.Key, part.f); err != nil {
				return 0, nil, false, fmt.Errorf("put data: %w", err)
			}
			written = f.Bytes
		}
	}
	if old.Run == run && old.Rows == m.Rows && slices.Equal(old.Files, m.Files) && old.Schema == m.Schema && reflect.DeepEqual(old.SchemaChange, m.SchemaChange) {
		return written, file, true, nil
	}
	return written, file, true, lake.PutJSON(ctx, r.Sink, lake.ManifestKey(dataset, d), m)
}

// checkPart verifies a spill file with the independent reader, hashes it,
// and rewinds it for upload.
func checkPart(layout *schema.Layout, part *spillPart, key string) (lake.File, error) {
	rows := part.rows
	if err := layout.Verify(part.f, rows); err != nil {
		return lake.File{}, err
	}
	if _, err := part.f.Seek(0, io.SeekStart); err != nil {
		return lake.File{}, fmt.Errorf("rewind spill file: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, part.f)
	if err != nil {
		return lake.File{}, fmt.Errorf("hash spill file: %w", err)
	}
	if _, err := part.f.Seek(0, io.SeekStart); err != nil {
		return lake.File{}, fmt.Errorf("rewind spill file: %w", err)
	}
	return lake.File{Key: key, Rows: rows, Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
