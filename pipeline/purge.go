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
	OldestDate  string         `json:"oldest_date,omitempty"` // oldest dated object seen, before deleting
	stale       []string
}

// Stale returns the keys outside the window, sorted.
func (p *PurgeReport) Stale() []string { return p.stale }

// Purge deletes every object whose "date=" segment is outside the
// retention window (data, cabs, cab index, manifests, commit records,
// quarantine alike) in batches, removes crash-leftover temp folders, and
// appends an audit record if anything was deleted. With dryRun it only
// reports. An interrupted purge is finished by the next one: it keeps no
// state of its own.
func (r *Runner) Purge(ctx context.Context, dryRun bool) (*PurgeReport, error) {
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
	n, err := sweepTemp(r.Config.TempDir, staleTemp, now, !dryRun)
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
	// Data before state: if interrupted, what remains is found again.
	slices.SortStableFunc(rep.stale, func(a, b string) int {
		return boolInt(strings.HasPrefix(a, stateDir+"/")) - boolInt(strings.HasPrefix(b, stateDir+"/"))
	})
	for keys := rep.stale; len(keys) > 0; {
		batch := keys[:min(len(keys), deleteBatch)]
		if err := r.Sink.Delete(ctx, batch...); err != nil {
			return rep, fmt.Errorf("purge: delete: %w", err)
		}
		rep.Deleted += len(batch)
		keys = keys[len(batch):]
	}
	if rep.Deleted > 0 {
		key := fmt.Sprintf("%s/%s-%s.json", auditDir, now.Format("20060102T150405.000000000Z"), safeName(r.Config.RunnerID))
		if err := putJSON(ctx, r.Sink, key, rep); err != nil {
			return rep, fmt.Errorf("purge: audit record: %w", err)
		}
		r.Log.Info("purged objects outside the retention window", "objects", rep.Deleted, "window_start", rep.WindowStart)
	}
	return rep, nil
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

// sweepTemp finds this program's spill folders in dir (default
// os.TempDir()) older than age, removes them if remove is set, and returns
// how many it found. A crash leaves them behind; a live run's folder is
// younger than staleTemp.
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
		if err != nil || now.Sub(info.ModTime()) < age {
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
