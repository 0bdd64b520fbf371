package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/hdc-export/hdc-export/pipeline"
)

// cmdApply reconciles the configured templates and schedules with Dev
// Center and prints the plan as a diff: "+" create, "~" update, "="
// unchanged. With --dry-run it changes nothing.
func cmdApply(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "configs/demo.yaml", "config file")
	dryRun := fs.Bool("dry-run", false, "print the plan; change nothing")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	log, err := newLogger(stderr, "text", "warn")
	if err != nil {
		return err
	}
	cfg, env, err := start(ctx, *configPath, getenv, log)
	if err != nil {
		return err
	}
	defer env.close()
	c := newCycler(cfg, env, log, nil)
	var plan []pipeline.Change
	if *dryRun {
		plan, _, err = c.Runner.Reconcile(ctx, true)
	} else {
		plan, err = c.Apply(ctx)
	}
	changes := 0
	for _, ch := range plan {
		fmt.Fprintln(stdout, ch)
		if ch.Op != "=" {
			changes++
		}
	}
	switch {
	case err != nil:
		return err
	case changes == 0:
		fmt.Fprintln(stdout, "no changes")
	case *dryRun:
		fmt.Fprintf(stdout, "%d changes planned (dry run: nothing applied)\n", changes)
	default:
		fmt.Fprintf(stdout, "%d changes applied\n", changes)
	}
	return nil
}
