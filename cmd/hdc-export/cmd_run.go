package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/devcenter/emulator"
	"github.com/hdc-export/hdc-export/pipeline"
	"github.com/hdc-export/hdc-export/sinks"
	"github.com/hdc-export/hdc-export/sinks/local"
	"github.com/hdc-export/hdc-export/sinks/s3"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (int, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "configs/demo.yaml", "config file")
	summaryPath := fs.String("summary-json", "", "also write the summary as JSON to this file")
	wait := fs.Bool("wait", false, "wait for the lease instead of exiting when another runner holds it")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	mf := metricsFlags(fs)
	detailed := fs.Bool("detailed-exitcode", false, "exit 4 when another runner holds the lease and 5 when there was nothing new (else both exit 0)")
	acceptShrink := fs.Bool("accept-shrink", false, "commit runs that empty or sharply shrink partitions an older run filled (limits.max_shrink), which are otherwise held back")
	if err := fs.Parse(args); err != nil {
		return exitUsage, usageError{err}
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return exitUsage, err
	}
	cfg, env, err := start(ctx, *configPath, getenv, log)
	if err != nil {
		return exitFailed, err // run() maps a usageError to exitUsage
	}
	defer env.close()
	if *acceptShrink {
		cfg.Pipeline.Limits.AcceptShrink = true
	}

	m := newMetrics(cfg.Pipeline.Retention.Days)
	c := newCycler(cfg, env, log, m)
	if con, ok := stderr.(*console); ok {
		c.Runner.Progress = con.progress()
		defer con.setProgress("")
	}
	sum, runErr := c.Cycle(ctx, *wait, nil)
	mf.export(m, "run", log)
	if sum != nil {
		if con, ok := stderr.(*console); ok {
			con.setProgress("")
		}
		printSummary(stderr, log, *logFormat, sum)
		if err := writeSummary(stdout, *summaryPath, sum); err != nil {
			return exitFailed, err
		}
	}
	code := interruptedCode(ctx, exitCode(sum, runErr, len(cfg.Pipeline.Reports)), runErr)
	if code == exitLeaseHeld {
		// Not a failure: the runner that holds the lease does the work.
		log.Info("another runner holds the lake's lease; this run did nothing", "reason", runErr.Error())
		runErr = nil
	}
	return schedulerCode(code, *detailed), runErr
}

// printSummary writes the summary to stderr: a table in text mode, a log
// record in JSON mode (so that every stderr line is JSON).
func printSummary(stderr io.Writer, log *slog.Logger, format string, sum *pipeline.Summary) {
	if format == "json" {
		log.Info("cycle summary", "summary", sum)
		return
	}
	printTable(stderr, sum)
	printPartitions(stderr, "partitions changed", sum.Changed)
	printPartitions(stderr, "partitions purged", sum.Purged)
}

// printPartitions lists partitions under a heading, one line per dataset,
// consecutive dates as ranges: "  ihv_driver: 2026-11-06..2026-11-09 2026-11-12".
// Nothing when there are none.
func printPartitions(w io.Writer, heading string, parts []pipeline.Partition) {
	if len(parts) == 0 {
		return
	}
	fmt.Fprintf(w, "%s:\n", heading)
	for i := 0; i < len(parts); {
		var spans []string
		j := i
		for j < len(parts) && parts[j].Dataset == parts[i].Dataset {
			k := j + 1 // parts[j..k) are consecutive dates
			for k < len(parts) && parts[k].Dataset == parts[i].Dataset && nextDay(parts[k-1].Date) == parts[k].Date {
				k++
			}
			if k-j == 1 {
				spans = append(spans, parts[j].Date)
			} else {
				spans = append(spans, parts[j].Date+".."+parts[k-1].Date)
			}
			j = k
		}
		fmt.Fprintf(w, "  %s: %s\n", parts[i].Dataset, strings.Join(spans, " "))
		i = j
	}
}

// nextDay returns the YYYY-MM-DD date after d ("" if d is not one).
func nextDay(d string) string {
	t, err := time.Parse(time.DateOnly, d)
	if err != nil {
		return ""
	}
	return t.AddDate(0, 0, 1).Format(time.DateOnly)
}

// writeSummary prints the summary as JSON on stdout and, if asked, to a
// file (written atomically).
func writeSummary(stdout io.Writer, path string, sum *pipeline.Summary) error {
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	b = append(b, '\n')
	if _, err := stdout.Write(b); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	if path == "" {
		return nil
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return os.Rename(tmp, path)
}

// environment is the wired-up dependencies of a command.
type environment struct {
	client  *devcenter.Client
	sink    sinks.Sink
	format  pipeline.TableFormat // nil: plain Hive files
	closers []func()
}

func (e *environment) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

// setup builds the sink and the Dev Center client, starting the embedded
// emulator if the config asks for it.
// start is the start-up of every command that talks to Dev Center: read
// the config (a usageError if it is bad), warn if others may change it,
// open the sink and the client. The caller closes the environment.
func start(ctx context.Context, configPath string, getenv func(string) string, log *slog.Logger) (*Config, *environment, error) {
	warnIfWritable(log, configPath)
	cfg, err := LoadConfig(configPath, getenv)
	if err != nil {
		return nil, nil, usageError{err}
	}
	env, err := setup(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	return cfg, env, nil
}

func setup(ctx context.Context, cfg *Config, log *slog.Logger) (*environment, error) {
	env := &environment{}
	sink, err := openSink(ctx, cfg.Sink, log)
	if err != nil {
		return nil, err
	}
	env.sink = sink
	if env.format, err = openFormat(cfg, sink); err != nil {
		return nil, err
	}
	dc := cfg.DevCenter.Config
	if cfg.DevCenter.Emulator {
		// The demo's cabs are small (8–32 KiB) so that one `make run`
		// mirrors them all in seconds; a standalone emulator serves
		// realistic sizes.
		addr, stop, err := startEmulator(log, emulator.Options{TenantID: dc.TenantID, ClientID: dc.ClientID, ClientSecret: dc.ClientSecret.Reveal(),
			CabSizeMin: 8 << 10, CabSizeMax: 32 << 10})
		if err != nil {
			return nil, err
		}
		env.closers = append(env.closers, stop)
		dc.BaseURL = "http://" + addr
		dc.TokenURL = "http://" + addr + "/" + dc.TenantID + "/oauth2/token"
		// The emulator serves cab blobs itself: allow its address (http).
		cfg.Pipeline.Cabs.AllowHosts = append(cfg.Pipeline.Cabs.AllowHosts, "http://"+addr)
		log.Info("embedded Dev Center emulator started", "addr", addr)
	}
	if env.client, err = devcenter.New(dc); err != nil {
		env.close()
		return nil, fmt.Errorf("devcenter client: %w", err)
	}
	return env, nil
}

// openSink is the one place that knows every concrete sink. log, if not
// nil, receives the S3 SDK's own messages.
func openSink(ctx context.Context, sc SinkConfig, log *slog.Logger) (sinks.Sink, error) {
	t, err := parseSinkURL(sc.URL)
	if err != nil {
		return nil, usageError{fmt.Errorf("sink.url: %w", err)}
	}
	switch t.scheme {
	case "file":
		return local.New(t.path)
	case "s3":
		if log == nil {
			return s3.New(ctx, sc.s3Config(t))
		}
		return s3.New(ctx, sc.s3Config(t), s3.WithSlog(log))
	}
	return nil, usageError{fmt.Errorf("sink.url: %s sinks are not available in this build", t.scheme)}
}

// startEmulator serves an emulator on a free loopback port.
func startEmulator(log *slog.Logger, opts emulator.Options) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("start emulator: %w", err)
	}
	srv := &http.Server{Handler: emulator.New(opts).Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("embedded emulator stopped", "error", err.Error())
		}
	}()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
