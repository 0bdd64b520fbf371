package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hdc-export/hdc-export/sinks"
)

// deleteBatch is how many keys one Delete call carries (S3's limit).
const deleteBatch = 1000

// auditDir holds the purge audit records. They carry prefixes and counts,
// never row content or full keys, and hold no date segment: an auditor can
// read them long after the data is gone.
const auditDir = stateDir + "/audit/purge"

// PurgeReport is what a purge found and did.
type PurgeReport struct {
	Time        time.Time      `json:"time"`
	Runner      string         `json:"runner"`
	WindowStart string         `json:"window_start"` // oldest date kept
	DryRun      bool           `json:"dry_run"`
	Prefixes    map[string]int `json:"prefixes"` // "<folder>/date=YYYY-MM-DD" → objects
	Objects     int            `json:"objects"`  // objects outside the window
	Deleted     int            `json:"deleted"`
	TempFolders int            `json:"temp_folders"`          // crash-leftover spill folders (removed unless dry run)
	TempFiles   int            `json:"temp_files,omitempty"`  // partial writes of killed puts removed from the sink
	OldestDate  string         `json:"oldest_date,omitempty"` // oldest dated object seen, before deleting
	stale       []string
}

// Stale returns the keys outside the window, sorted.
func (p *PurgeReport) Stale() []string { return p.stale }

// Purge deletes every object whose "date=" segment is outside the
// retention window (data, cabs, cab index, manifests, commit records,
// quarantine alike) in batches, removes crash-leftover temp folders and
// partial writes in the sink, and appends an audit record if anything was
// to be deleted. With dryRun it only reports. An interrupted purge is
// finished by the next one: it keeps no state of its own.
func (r *Runner) Purge(ctx context.Context, dryRun bool) (*PurgeReport, error) {
	since := r.cycleStart
	if since.IsZero() {
		since = time.Now()
	}
	now := r.now()
	w := NewWindow(now, r.Config.Retention.Days)
	rep := &PurgeReport{Time: now, Runner: r.Config.RunnerID, WindowStart: w.First.String(), DryRun: dryRun, Prefixes: map[string]int{}}
	oldest := Date(1 << 30)
	err := r.Sink.List(ctx, "", func(o sinks.Object) error {
		d, ok := KeyDate(o.Key)
		if !ok {
			return nil
		}
		oldest = min(oldest, d)
		if !w.Contains(d) {
			rep.stale = append(rep.stale, o.Key)
			rep.Prefixes[datePrefix(o.Key)]++
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("purge: list: %w", err)
	}
	if oldest != 1<<30 {
		rep.OldestDate = oldest.String()
	}
	rep.Objects = len(rep.stale)
	n, err := sweepIdleTemp(r.Config.TempDir, now, !dryRun)
	rep.TempFolders = n
	if err != nil {
		return rep, fmt.Errorf("purge: %w", err)
	}
	if dryRun {
		return rep, nil
	}
	if err := r.fence(ctx); err != nil {
		return rep, err
	}
	if rep.TempFiles, err = r.sweepSinkTemp(since); err != nil {
		r.Log.Warn("purge: remove leftover partial writes", "error", err.Error())
	}
	// Data before state: if interrupted, what remains is found again.
	slices.SortStableFunc(rep.stale, func(a, b string) int {
		return boolInt(strings.HasPrefix(a, stateDir+"/")) - boolInt(strings.HasPrefix(b, stateDir+"/"))
	})
	if len(rep.stale) == 0 {
		return rep, nil
	}
	// The audit record is written before the first delete (with deleted 0)
	// and again after the last, so that a purge killed in between leaves a
	// record of the prefixes it was deleting; the next purge records what
	// was left.
	key := fmt.Sprintf("%s/%s-%s.json", auditDir, now.Format("20060102T150405.000000000Z"), safeName(r.Config.RunnerID))
	if err := putJSON(ctx, r.Sink, key, rep); err != nil {
		return rep, fmt.Errorf("purge: audit record: %w", err)
	}
	var delErr error
	for keys := rep.stale; len(keys) > 0; {
		batch := keys[:min(len(keys), deleteBatch)]
		if delErr = r.Sink.Delete(ctx, batch...); delErr != nil {
			delErr = fmt.Errorf("purge: delete: %w", delErr)
			break
		}
		rep.Deleted += len(batch)
		keys = keys[len(batch):]
	}
	if rep.Deleted > 0 {
		if err := putJSON(ctx, r.Sink, key, rep); err != nil && delErr == nil {
			return rep, fmt.Errorf("purge: audit record: %w", err)
		}
		r.Log.Info("purged objects outside the retention window", "objects", rep.Deleted, "window_start", rep.WindowStart)
	}
	return rep, delErr
}

// sinkTemp is a sink that keeps partial writes of its own, such as the
// local sink's ".tmp-" files, which a put killed before it finished leaves
// behind.
type sinkTemp interface {
	RemoveTemp(remove func(name string, modTime time.Time) bool) (int, error)
}

// staleSinkTemp is how old a partial write must be before a purge removes
// it when a live writer could still own it.
const staleSinkTemp = time.Hour

// sweepSinkTemp removes the sink's leftover partial writes. Under the lease
// (Fence set) this runner is the lake's only writer and its puts are done,
// so every partial write is a dead writer's, whatever its age. In the lease
// folder, lease contenders write without the lease, and this runner's
// renewals go on: there, only partial writes older than since (when this
// cycle began, after the lease was taken) are a dead writer's, since taking
// a lease takes milliseconds. Doctor's probes, and everything when there is
// no lease, must be staleSinkTemp old. File times are real times, whatever
// r.Now says.
func (r *Runner) sweepSinkTemp(since time.Time) (int, error) {
	st, ok := r.Sink.(sinkTemp)
	if !ok {
		return 0, nil
	}
	now := time.Now()
	return st.RemoveTemp(func(name string, modTime time.Time) bool {
		switch {
		case r.Fence == nil || strings.HasPrefix(name, stateDir+"/doctor/"):
			return now.Sub(modTime) > staleSinkTemp
		case strings.HasPrefix(name, leaseDir):
			return modTime.Before(since)
		}
		return true
	})
}

// datePrefix cuts a key after its "date=" segment:
// "cabs/date=2026-10-01/x.cab" → "cabs/date=2026-10-01".
func datePrefix(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "date=") {
			return strings.TrimSuffix(strings.Join(segs[:i+1], "/"), ".json")
		}
	}
	return key
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// safeName keeps a runner id usable in a key.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
	if s == "" || strings.Trim(s, ".") == "" {
		return "runner"
	}
	return s
}

// claimTemp sweeps the temp folder at the start of a run and returns the
// run's shared lock on it, to hold while the run may have spill folders
// there. A run killed by SIGKILL leaves its spill folders behind and drops
// its lock: if no other runner holds the lock, every spill folder in dir is
// a dead run's and all are removed, whatever their age; otherwise only those
// older than staleTemp. Where the file system cannot lock, no runner gets
// the lock exclusively, so all sweep by age only.
func claimTemp(dir string, now time.Time) (*tempLock, error) {
	l, exclusive, err := lockTemp(dir)
	age := staleTemp
	if err == nil && exclusive {
		age = 0
	}
	_, err = sweepTemp(dir, age, now, true)
	if serr := l.share(); serr != nil {
		l.release()
		l = nil
	}
	return l, err
}

// sweepIdleTemp is the purge's sweep: every spill folder if no runner
// holds the temp folder's lock, else those older than staleTemp.
func sweepIdleTemp(dir string, now time.Time, remove bool) (int, error) {
	l, exclusive, _ := lockTemp(dir)
	defer l.release()
	age := staleTemp
	if exclusive {
		age = 0
	}
	return sweepTemp(dir, age, now, remove)
}

// sweepTemp finds this program's spill folders in dir (default
// os.TempDir()) older than age (all of them if age is 0), removes them if
// remove is set, and returns how many it found. A crash leaves them
// behind; a live run's folder is younger than staleTemp.
func sweepTemp(dir string, age time.Duration, now time.Time, remove bool) (int, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("sweep temp folder: %w", err)
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil || age > 0 && now.Sub(info.ModTime()) < age {
			continue
		}
		if remove {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return n, fmt.Errorf("sweep temp folder: %w", err)
			}
		}
		n++
	}
	return n, nil
}
