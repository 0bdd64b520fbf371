package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/hdc-export/hdc-export/pipeline"
)

// errStale makes `purge --check` exit non-zero.
var errStale = errors.New("objects older than the retention window exist")

// cmdPurge enforces (or, with --dry-run / --check, inspects) retention
// without contacting Dev Center.
func cmdPurge(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("purge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "configs/demo.yaml", "config file")
	dryRun := fs.Bool("dry-run", false, "list what would be deleted; delete nothing")
	check := fs.Bool("check", false, "delete nothing; exit 1 if anything is older than the window")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	log, err := newLogger(stderr, *logFormat, "info")
	if err != nil {
		return err
	}
	cfg, err := LoadConfig(*configPath, getenv)
	if err != nil {
		return usageError{err}
	}
	sink, err := openSink(ctx, cfg.Sink)
	if err != nil {
		return err
	}
	var rep *pipeline.PurgeReport
	if *dryRun || *check {
		runner := &pipeline.Runner{Config: cfg.Pipeline, Sink: sink, Log: log}
		rep, err = runner.Purge(ctx, true)
	} else { // deleting takes the lake's lease, like a cycle
		c := &cycler{cfg: cfg, env: &environment{sink: sink}, log: log}
		rep, err = c.purge(ctx)
	}
	if err != nil {
		return err
	}
	if *dryRun || *check {
		for _, key := range rep.Stale() {
			fmt.Fprintln(stdout, key)
		}
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Fprintln(stderr, string(b))
	if *check && (rep.Objects > 0 || rep.TempFolders > 0) {
		return fmt.Errorf("%w: %d objects before %s, %d stale temp folders (run `hdc-export purge` to delete them)",
			errStale, rep.Objects, rep.WindowStart, rep.TempFolders)
	}
	return nil
}
