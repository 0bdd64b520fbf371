package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hdc-export/hdc-export/pipeline"
)

// Exit codes of `purge` and `purge --check`, for monitoring: each calls
// for a different action.
const (
	exitStale         = 1 // --check: data older than the window exists; `purge` would destroy it
	exitCannotDestroy = 6 // object lock keeps data past the window, or objects cannot be dated or removed: a person must act
	exitCouldNotCheck = 7 // the store could not be read (or cannot show everything it holds): nothing is proven
)

// cmdPurge enforces retention (or, with --dry-run / --check, inspects it)
// with storage access only: it never contacts Dev Center and needs none of
// its credentials, so it can run as a job of its own.
func cmdPurge(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (int, error) {
	fs := flag.NewFlagSet("purge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "configs/demo.yaml", "config file")
	dryRun := fs.Bool("dry-run", false, "list what would be destroyed (keys, Go-quoted); destroy nothing")
	check := fs.Bool("check", false, "destroy nothing, list no keys; exit 0 clean, 1 stale data found, 6 cannot destroy, 7 could not check")
	asJSON := fs.Bool("json", false, "print the report as JSON on stdout")
	mf := metricsFlags(fs)
	logFormat := fs.String("log-format", "text", "log format: text or json")
	detailed := fs.Bool("detailed-exitcode", false, "exit 4 when another runner holds the lease (else 0: that runner purges)")
	if err := fs.Parse(args); err != nil {
		return exitUsage, usageError{err}
	}
	log, err := newLogger(stderr, *logFormat, "info")
	if err != nil {
		return exitUsage, err
	}
	cfg, err := LoadStorageConfig(*configPath, getenv)
	if err != nil {
		return exitUsage, usageError{err}
	}
	m := newMetrics(cfg.Pipeline.Retention.Days)
	defer mf.export(m, "purge", log)
	sink, err := openSink(ctx, cfg.Sink, log)
	if err != nil {
		m.observePurge(nil, err)
		return exitCouldNotCheck, err
	}
	format, err := openFormat(cfg, sink)
	if err != nil {
		m.observePurge(nil, err)
		return exitCouldNotCheck, err
	}
	c := newCycler(cfg, &environment{sink: sink, format: format}, log, m)
	var rep *pipeline.PurgeReport
	if *dryRun || *check {
		rep, err = c.Runner.Purge(ctx, true)
		m.observePurge(rep, err)
	} else { // destroying takes the lake's lease, like a cycle
		rep, err = c.Purge(ctx)
	}
	if errors.Is(err, pipeline.ErrLeaseHeld) {
		log.Info("another runner holds the lake's lease; it purges in its cycle, this purge did nothing", "reason", err.Error())
		return schedulerCode(exitLeaseHeld, *detailed), nil
	}
	if rep != nil {
		// Only a dry run lists keys (cab keys name cabs): a check, which
		// runs unattended and mails its output, reports counts by prefix.
		if *dryRun && !*asJSON {
			for _, key := range rep.Stale() {
				fmt.Fprintln(stdout, strconv.Quote(key))
			}
		}
		b, _ := json.MarshalIndent(rep, "", "  ")
		switch {
		case *asJSON:
			fmt.Fprintln(stdout, string(b))
		case *logFormat == "json": // every stderr line is JSON
			log.Info("purge report", "report", rep)
		default:
			printPurge(stderr, rep)
		}
	}
	return purgeExit(rep, err, *check)
}

// purgeExit maps a purge's or a check's report to its exit code and
// error. check: stale data found is a failure to report, not to fix.
func purgeExit(rep *pipeline.PurgeReport, err error, check bool) (int, error) {
	if rep == nil || !rep.Store.Complete {
		if err == nil {
			err = errors.New("the sink cannot show every object it holds")
		}
		return exitCouldNotCheck, fmt.Errorf("could not check, nothing is proven: %w", err)
	}
	switch v := rep.Judge(); {
	case v == pipeline.VerdictCannotDestroy:
		return exitCannotDestroy, errors.Join(err, fmt.Errorf("cannot destroy: %s", cannotDestroy(rep)))
	case err != nil && check: // whatever the verdict, something was not looked at
		return exitCouldNotCheck, fmt.Errorf("could not check, nothing is proven: %w", err)
	case err != nil:
		return exitFailed, err
	case v == pipeline.VerdictStale && check:
		return exitStale, fmt.Errorf("%d items older than the window start %s, %d incomplete uploads, %d stale temp folders (run `hdc-export purge` to destroy them)",
			rep.Objects, rep.WindowStart, rep.Uploads, rep.TempFolders)
	}
	return exitOK, nil
}

// cannotDestroy says what a purge cannot destroy.
func cannotDestroy(rep *pipeline.PurgeReport) string {
	var parts []string
	if rep.Locked > 0 {
		parts = append(parts, fmt.Sprintf("%d objects locked until %s", rep.Locked, rep.LockedUntil))
	}
	if rep.Unrecognised > 0 {
		parts = append(parts, fmt.Sprintf("%d unrecognised objects (no readable date; remove them by hand)", rep.Unrecognised))
	}
	if rep.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d objects could not be removed", rep.Failed))
	}
	if rep.TempFoldersFailed > 0 {
		parts = append(parts, fmt.Sprintf("%d temp folders could not be removed", rep.TempFoldersFailed))
	}
	return strings.Join(parts, "; ")
}

// printPurge writes a short human summary of a report.
func printPurge(w io.Writer, rep *pipeline.PurgeReport) {
	fmt.Fprintf(w, "retention window starts %s (%s)\n", rep.WindowStart, rep.Judge())
	fmt.Fprintf(w, "store: versioning %q, object lock %v, complete listing %v\n", rep.Store.Versioning, rep.Store.ObjectLock, rep.Store.Complete)
	fmt.Fprintf(w, "scanned: %d objects, %d versions, %d delete markers, %d uploads, %d links\n",
		rep.Scanned.Objects, rep.Scanned.Versions, rep.Scanned.DeleteMarkers, rep.Scanned.Uploads, rep.Scanned.Links)
	fmt.Fprintf(w, "outside the window: %d (destroyed %d), superseded versions: %d (destroyed %d), incomplete uploads: %d (aborted %d)\n",
		rep.Objects, rep.Deleted, rep.Superseded, rep.SupersededDeleted, rep.Uploads, rep.UploadsAborted)
	for _, p := range slices.Sorted(maps.Keys(rep.Prefixes)) {
		fmt.Fprintf(w, "  outside the window: %s (%d)\n", p, rep.Prefixes[p])
	}
	if rep.Locked+rep.Unrecognised+rep.Failed+rep.TempFoldersFailed > 0 {
		fmt.Fprintf(w, "cannot destroy: %s\n", cannotDestroy(rep))
		for _, k := range rep.UnrecognisedKeys {
			fmt.Fprintf(w, "  unrecognised: %s\n", k)
		}
	}
}
