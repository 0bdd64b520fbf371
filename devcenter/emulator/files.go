package emulator

import (
	"bytes"
	"compress/gzip"
	"container/list"
	"crypto/md5"
	"encoding/csv"
	"fmt"
	"io"
	"iter"
	"strconv"
	"sync"
)

// fileCacheBudget bounds the bytes of generated report files kept in memory.
const fileCacheBudget = 256 << 20

// fileKey identifies a generated report file. The template revision is part
// of it, so editing a template regenerates files.
type fileKey struct {
	reportID   int
	run        int64 // run time, Unix seconds
	templateID int
	revision   int
}

// fileSpec is everything needed to generate one run's file. Its query
// belongs to a template, which is never modified after creation (an edit
// replaces the template), so a fileSpec is safe to use without locks.
type fileSpec struct {
	key    fileKey
	view   viewID
	query  *query
	period int   // failure dates covered
	runDay int64 // the run's UTC date, days since 1970-01-01
}

// fileExt is the extension of report files: tsv or csv, plus .gz if gzipped.
func (e *Emulator) fileExt() string {
	ext := "tsv"
	if e.opts.Delimiter == ',' {
		ext = "csv"
	}
	if e.opts.Gzip {
		ext += ".gz"
	}
	return ext
}

// renderReport generates a run's file: a header row, then the rows the
// template's query makes of the run's rows (see reportRows and query).
// Files are written with encoding/csv (LF line ends) and gzip-compressed if
// configured; the output is a pure function of the options and spec.
func (e *Emulator) renderReport(spec fileSpec) ([]byte, error) {
	var buf bytes.Buffer
	var out io.Writer = &buf
	var zw *gzip.Writer
	if e.opts.Gzip {
		zw = gzip.NewWriter(&buf)
		out = zw
	}
	w := csv.NewWriter(out)
	w.Comma = e.opts.Delimiter

	if err := w.Write(spec.query.header()); err != nil {
		return nil, fmt.Errorf("writing header of report %d: %w", spec.key.reportID, err)
	}
	if err := spec.query.run(e.reportRows(spec), e.badRows(spec.query.header(), w.Write)); err != nil {
		return nil, fmt.Errorf("writing rows of report %d: %w", spec.key.reportID, err)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("writing report %d: %w", spec.key.reportID, err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("compressing report %d: %w", spec.key.reportID, err)
		}
	}
	return buf.Bytes(), nil
}

// reportRows yields the rows a run sees before the template applies: for
// each covered failure date, oldest first, the first rowsAtAge(age) rows of
// that date, with ReportId set to the report's id. The record is reused
// between iterations.
func (e *Emulator) reportRows(spec fileSpec) iter.Seq[*record] {
	return func(yield func(*record) bool) {
		var row record // fillRow leaves ReportId alone
		row[colReportID] = strconv.Itoa(spec.key.reportID)
		for day := spec.runDay - int64(spec.period); day < spec.runDay; day++ {
			for i := range e.data.rowsAtAge(int(spec.runDay - day)) {
				e.data.fillRow(spec.view, day, i, &row)
				if !yield(&row) {
					return
				}
			}
		}
	}
}

// fileCache keeps generated files so that serving one again costs no
// generation time. It evicts the least recently used files when their total
// size exceeds the budget. It is safe for concurrent use.
type fileCache struct {
	budget int64

	mu    sync.Mutex
	size  int64                     // bytes of the generated files in lru
	lru   *list.List                // of *cachedFile, most recently used first
	index map[fileKey]*list.Element //  into lru
}

// cachedFile is a file being generated or generated. data, md5 and err are
// set before done is closed and never change afterwards.
type cachedFile struct {
	key  fileKey
	done chan struct{}
	data []byte
	md5  [md5.Size]byte
	err  error

	size int64 // guarded by fileCache.mu; counted in fileCache.size once > 0
}

func newFileCache(budget int64) *fileCache {
	return &fileCache{budget: budget, lru: list.New(), index: make(map[fileKey]*list.Element)}
}

// get returns the file for key, calling render only if it is not cached.
// Concurrent calls for the same key wait for one render. A failed render is
// not cached.
func (c *fileCache) get(key fileKey, render func() ([]byte, error)) (*cachedFile, error) {
	c.mu.Lock()
	if el, ok := c.index[key]; ok {
		c.lru.MoveToFront(el)
		f := el.Value.(*cachedFile)
		c.mu.Unlock()
		<-f.done
		return f, f.err
	}
	f := &cachedFile{key: key, done: make(chan struct{})}
	el := c.lru.PushFront(f)
	c.index[key] = el
	c.mu.Unlock()

	f.data, f.err = render()
	f.md5 = md5.Sum(f.data)
	close(f.done)

	c.mu.Lock()
	defer c.mu.Unlock()
	if f.err != nil {
		c.remove(el)
		return f, f.err
	}
	f.size = int64(len(f.data))
	c.size += f.size
	for back := c.lru.Back(); c.size > c.budget && back != nil; {
		prev := back.Prev()
		if old := back.Value.(*cachedFile); old != f && old.size > 0 {
			c.remove(back)
		}
		back = prev
	}
	return f, nil
}

// remove drops el from the cache; c.mu must be held.
func (c *fileCache) remove(el *list.Element) {
	f := el.Value.(*cachedFile)
	c.size -= f.size
	c.lru.Remove(el)
	delete(c.index, f.key)
}
