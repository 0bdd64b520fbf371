package cabmirror

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // the blob host's integrity checksum, not security
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/internal/retry"
)

// mirrorRun is the shared state of one run's downloads.
type mirrorRun struct {
	mirror *Mirror
	cfg    Config
	allow  *devcenter.HostList
	now    time.Time
	w      lake.Window
	pacer  *retry.Pacer // the cab API's rate limit

	budget int64 // 0 = unlimited
	mu     sync.Mutex
	used   int64
	first  string // the first refusal, for the log (a host, never a path)

	stop     atomic.Bool
	finished atomic.Int64
	streak   atomic.Int64 // failures in a row
	broken   atomic.Bool  // the streak stopped the run
	tripped  func()       // cancels the link calls under way
	// jobDone, if set, is called once for every queued job when it is
	// settled (mirrored, failed or deferred), from any goroutine.
	jobDone func(*cabJob)
}

// settled reports a queued job as settled to jobDone.
func (m *mirrorRun) settled(j *cabJob) {
	if m.jobDone != nil {
		m.jobDone(j)
	}
}

// breakerAfter is how many cabs in a row may fail before the run stops
// asking: the cab API or the blob host is down, and every further cab
// would only spend its full retry budget.
func (m *mirrorRun) breakerAfter() int64 { return int64(max(4, m.cfg.Concurrency)) }

// download fetches the queued cabs in two overlapping stages, each with
// at most Concurrency at work: link fetchers ask the cab API for links
// (within the rate limit) a few cabs ahead, and downloaders stream the
// blobs into the sink. So a download never waits for its link, and the
// cab API sees no more than Concurrency calls at once. Once a limit stops
// the run, the remaining cabs are deferred.
func (m *mirrorRun) download(ctx context.Context, queue []*cabJob) {
	if len(queue) == 0 {
		return
	}
	n := min(m.cfg.Concurrency, len(queue))
	work := make(chan *cabJob)
	linked := make(chan linkedJob, n)
	// Link calls still under way when the breaker trips are cancelled:
	// each would otherwise spend the client's whole retry budget.
	linkCtx, cancelLinks := context.WithCancel(ctx)
	defer cancelLinks()
	m.tripped = cancelLinks
	var fetchers, downloaders sync.WaitGroup
	for range n {
		fetchers.Go(func() {
			for j := range work {
				if m.stop.Load() {
					j.outcome = cabDeferred
					m.settled(j)
					continue
				}
				link, err := m.link(linkCtx, j)
				if err != nil {
					m.settle(ctx, j, err)
					m.finished.Add(1)
					m.settled(j)
					continue
				}
				linked <- linkedJob{j, link}
			}
		})
		downloaders.Go(func() {
			for l := range linked {
				if m.stop.Load() {
					l.job.outcome = cabDeferred
				} else {
					m.fetch(ctx, l.job, l.link)
				}
				m.settled(l.job)
				if done := m.finished.Add(1); done%16 == 0 {
					m.mirror.progress("cabs %d of %d", done, len(queue))
				}
			}
		})
	}
	for _, j := range queue {
		if m.stop.Load() || ctx.Err() != nil {
			j.outcome = cabDeferred
			m.settled(j)
			continue
		}
		work <- j
	}
	close(work)
	fetchers.Wait()
	close(linked)
	downloaders.Wait()
}

// linkedJob is a cab with the link the cab API gave for it.
type linkedJob struct {
	job  *cabJob
	link string
}

// halt stops starting new downloads and wakes calls waiting for the rate
// limit (they fail with retry.ErrStopped).
func (m *mirrorRun) halt() {
	m.stop.Store(true)
	m.pacer.Stop()
}

func (m *mirrorRun) refusal() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.first
}

// reserve takes n bytes of the budget. The first cab of a run is always
// admitted, so progress never stalls on a cab larger than the budget.
func (m *mirrorRun) reserve(n int64) bool {
	if m.budget == 0 {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used > 0 && m.used+n > m.budget {
		return false
	}
	m.used += n
	return true
}

func (m *mirrorRun) release(n int64) {
	if m.budget == 0 {
		return
	}
	m.mu.Lock()
	m.used -= n
	m.mu.Unlock()
}

// fetch downloads one cab from its link into the sink.
func (m *mirrorRun) fetch(ctx context.Context, j *cabJob, link string) {
	body, meta, err := m.open(ctx, j, &link, 0)
	if err != nil {
		m.settle(ctx, j, err)
		return
	}
	if !m.reserve(meta.Size) {
		body.Close()
		j.outcome = cabDeferred
		m.halt()
		return
	}
	rd := &cabReader{m: m, ctx: ctx, job: j, link: link, body: body, size: meta.Size, want: meta.MD5, h: md5.New()}
	key := lake.CabKey(j.ref.date, j.ref.hash)
	err = m.mirror.Sink.Put(ctx, key, rd)
	rd.close()
	switch {
	case rd.err != nil:
		err = rd.err // the reason the Put failed
	case err == nil && !rd.done:
		// A sink must read to EOF; if one did not, what it stored is unverified.
		err = errors.New("the sink stopped reading before the end of the cab")
		if derr := m.mirror.Sink.Delete(context.WithoutCancel(ctx), key); derr != nil {
			err = errors.Join(err, derr)
		}
	}
	if err != nil {
		m.release(meta.Size)
		m.settle(ctx, j, err)
		return
	}
	j.outcome, j.size, j.md5 = cabMirrored, rd.n, rd.h.Sum(nil)
	m.streak.Store(0)
}

// settle classifies a failed download.
func (m *mirrorRun) settle(ctx context.Context, j *cabJob, err error) {
	switch {
	case errors.Is(err, devcenter.ErrHostNotAllowed):
		j.outcome = cabRefused
		m.mu.Lock()
		if m.first == "" {
			m.first = err.Error() // "devcenter: GET scheme://host/…: …": the host only
		}
		m.mu.Unlock()
		// The API points somewhere it must not: stop asking it this run.
		m.halt()
	case errors.Is(err, devcenter.ErrNotFound):
		j.outcome = cabNotFound
	case ctx.Err() != nil, errors.Is(err, retry.ErrStopped), m.broken.Load() && errors.Is(err, context.Canceled):
		j.outcome = cabDeferred // cancelled: by the caller, a limit, or the breaker
	default:
		j.outcome = cabFailed
		j.err = redactCab(fmt.Errorf("cab of %s %s: %w", j.ref.dataset, j.ref.date, err), j.ref)
		if m.streak.Add(1) >= m.breakerAfter() && !m.broken.Swap(true) {
			m.halt()
			m.tripped()
		}
	}
}

// link asks the cab download API for a link, within the rate limit.
func (m *mirrorRun) link(ctx context.Context, j *cabJob) (string, error) {
	if err := m.pacer.Wait(ctx); err != nil {
		return "", err
	}
	return m.mirror.Client.CabLink(ctx, j.ref.endpoint(), j.ref.app, j.ref.raw)
}

// maxLinkRefreshes bounds fresh links asked for one open of a blob that
// answers 403 (an expired or refused signature).
const maxLinkRefreshes = 3

// open opens the blob at offset, getting a fresh link if the one in hand
// has expired.
func (m *mirrorRun) open(ctx context.Context, j *cabJob, link *string, offset int64) (io.ReadCloser, devcenter.CabMeta, error) {
	for refreshes := 0; ; refreshes++ {
		body, meta, err := m.mirror.Client.OpenCab(ctx, *link, offset, m.allow)
		if !errors.Is(err, devcenter.ErrLinkExpired) || refreshes == maxLinkRefreshes {
			return body, meta, err
		}
		fresh, lerr := m.link(ctx, j)
		if lerr != nil {
			return nil, meta, fmt.Errorf("refresh expired link: %w", lerr)
		}
		*link = fresh
	}
}

// Resume limits of one cab download.
const (
	maxCabStalls  = 5   // consecutive interruptions without a byte of progress
	maxCabResumes = 100 // interruptions in all
)

// cabReader is the body handed to Sink.Put: the blob's bytes, resumed with
// Range requests after interruptions, verified as they stream. It fails
// (so the sink stores nothing) instead of returning EOF if the bytes do not
// add up to the size the blob announced or their MD5 differs from the one
// it reported. It is not a Seeker: a sink cannot rewind it.
type cabReader struct {
	m    *mirrorRun
	ctx  context.Context
	job  *cabJob
	link string
	body io.ReadCloser
	size int64
	want []byte // MD5 reported by the blob host; nil if none
	h    hash.Hash

	n       int64 // bytes read so far
	stalls  int
	resumes int
	done    bool  // verified EOF reached
	err     error // sticky failure
}

var (
	errCabTooLong = errors.New("cab body is longer than its announced size")
	errCabMD5     = errors.New("cab MD5 does not match the blob's reported MD5")
)

func (c *cabReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.done {
		return 0, io.EOF
	}
	for {
		if c.body == nil {
			if err := c.resume(); err != nil {
				c.err = err
				return 0, err
			}
		}
		n, err := c.body.Read(p)
		if int64(n) > c.size-c.n {
			c.err = errCabTooLong
			return 0, c.err
		}
		c.n += int64(n)
		c.h.Write(p[:n])
		if n > 0 {
			c.stalls = 0
		}
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, io.EOF) && c.n == c.size:
			c.body.Close()
			c.body = nil
			if c.want != nil && !bytes.Equal(c.h.Sum(nil), c.want) {
				c.err = errCabMD5
				return 0, c.err
			}
			c.done = true
			return n, io.EOF
		}
		// Cut short: a reset, a timeout, or EOF before the announced size.
		if cerr := c.ctx.Err(); cerr != nil {
			c.err = cerr
			return 0, cerr
		}
		c.body.Close()
		c.body = nil
		c.stalls++
		c.resumes++
		if n > 0 {
			return n, nil
		}
	}
}

// resume reopens the blob at the current offset.
func (c *cabReader) resume() error {
	if c.stalls > maxCabStalls || c.resumes > maxCabResumes {
		return fmt.Errorf("download interrupted %d times (%d without progress)", c.resumes, c.stalls)
	}
	if c.stalls > 1 {
		if err := retry.Sleep(c.ctx, time.Duration(c.stalls)*100*time.Millisecond); err != nil {
			return err
		}
	}
	body, meta, err := c.m.open(c.ctx, c.job, &c.link, c.n)
	if err != nil {
		return fmt.Errorf("resume at byte %d: %w", c.n, err)
	}
	switch {
	case meta.Size != c.size:
		body.Close()
		return fmt.Errorf("blob changed size during the download (%d, then %d)", c.size, meta.Size)
	case c.want != nil && meta.MD5 != nil && !bytes.Equal(c.want, meta.MD5):
		body.Close()
		return errors.New("blob changed MD5 during the download")
	case c.want == nil:
		c.want = meta.MD5
	}
	c.body = body
	return nil
}

func (c *cabReader) close() {
	if c.body != nil {
		c.body.Close()
		c.body = nil
	}
}

// redactCab removes the cab's identifiers from err's text (which may quote
// a key, and so a CabIdHash).
func redactCab(err error, ref cabRef) error {
	var pairs []string
	for _, s := range []string{ref.raw, ref.hash, strings.ToUpper(ref.hash)} {
		if s != "" {
			pairs = append(pairs, s, "<cab>")
		}
	}
	return lake.Redact(err, strings.NewReplacer(pairs...))
}
