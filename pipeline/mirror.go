package pipeline

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/hdc-export/hdc-export/cabmirror"
	"github.com/hdc-export/hdc-export/internal/lake"
)

// Mirror runs the cab mirror stage alone (Run runs it after the exports):
// for each configured dataset and each partition date inside the retention
// window whose manifest changed since it was last fully mirrored, it reads
// the partition's cab references, downloads the cabs not yet in the lake
// and not expired, stores each under CabKey, and rewrites the cab index of
// every date whose cabs changed (see cabmirror).
func (r *Runner) Mirror(ctx context.Context) (*Summary, error) {
	start := r.now()
	sum := &Summary{Started: start}
	w := lake.NewWindow(start, r.Config.Retention.Days)
	sum.WindowStart = w.First.String()
	err := r.mirror(ctx, w, sum)
	sum.Duration = r.now().Sub(start).Round(time.Millisecond).String()
	if err != nil {
		sum.Errors++
	}
	return sum, err
}

// mirror is the stage; it adds its counts to sum. An error does not undo
// what was stored: every cab that landed stays, and the next run continues.
func (r *Runner) mirror(ctx context.Context, w lake.Window, sum *Summary) error {
	res, err := r.cabMirror().Run(ctx, w)
	sum.addCabs(res)
	return err
}

// cabMirror is the cab stage over the runner's client, sink, clock, fence
// and configuration: the reports whose template projects CabIdHash, in
// configuration order.
func (r *Runner) cabMirror() *cabmirror.Mirror {
	var datasets []cabmirror.Dataset
	for _, rc := range r.Config.Reports {
		if slices.ContainsFunc(rc.Template.Projection, func(c string) bool { return strings.EqualFold(c, "CabIdHash") }) {
			datasets = append(datasets, cabmirror.Dataset{Name: rc.Name, View: rc.Template.View})
		}
	}
	return &cabmirror.Mirror{Client: r.API, Sink: r.Sink, Config: r.Config.Cabs, Datasets: datasets,
		Compression: r.Config.Parquet.Compression, MkdirTemp: r.mkdirTemp,
		Log: r.Log, Now: r.Now, Fence: r.Fence, Progress: r.Progress}
}

// mkdirTemp makes a spill folder in Config.TempDir (see mkdirSpill).
func (r *Runner) mkdirTemp() (string, error) { return mkdirSpill(r.Config.TempDir) }
