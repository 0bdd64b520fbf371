package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/hdc-export/hdc-export/pipeline"
)

// cmdStatus prints what the lake holds per dataset: partitions, rows,
// newest run, oldest and newest date, and cabs.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "configs/demo.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	cfg, err := LoadStorageConfig(*configPath, getenv)
	if err != nil {
		return usageError{err}
	}
	sink, err := openSink(ctx, cfg.Sink, nil)
	if err != nil {
		return err
	}
	st, err := pipeline.ReadStatus(ctx, sink, cfg.Pipeline.Retention.Days, time.Now())
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "dataset\tpartitions\trows\toldest date\tnewest date\tnewest run")
	for _, d := range st.Datasets {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", d.Name, d.Partitions, d.Rows, d.OldestDate, d.NewestDate, d.NewestRun)
	}
	fmt.Fprintf(tw, "cabs\t%d dates\t%d files, %d bytes\t%s\t%s\t\n", st.Cabs.Dates, st.Cabs.Files, st.Cabs.Bytes, st.Cabs.OldestDate, st.Cabs.NewestDate)
	_ = tw.Flush()
	fmt.Fprintf(stdout, "retention window starts %s; objects outside it: %d\n", st.WindowStart, st.Stale)
	return nil
}
