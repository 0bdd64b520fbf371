package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cmdServe runs the export cycle and the purge on their cron schedules (UTC)
// and serves /healthz, /metrics and the report-ready callback until ctx is
// cancelled (SIGTERM), then finishes cleanly.
func cmdServe(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "configs/demo.yaml", "config file")
	listen := fs.String("listen", "127.0.0.1:9464", "address for /healthz, /metrics and /callback")
	logFormat := fs.String("log-format", "json", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	runAtStart := fs.Bool("run-at-start", true, "run a cycle at start, before the first tick")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	warnIfWritable(log, *configPath)
	cfg, err := LoadConfig(*configPath, getenv)
	if err != nil {
		return usageError{err}
	}
	env, err := setup(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer env.close()
	m := newMetrics()
	c := &cycler{cfg: cfg, env: env, log: log, metrics: m}

	// Jobs run on a context that SIGTERM cancels; the pipeline then stops
	// between objects and the lake stays consistent.
	cycle := func(only ...string) {
		sum, err := c.run(ctx, false, only)
		switch {
		case errors.Is(err, errBusy):
			log.Info("tick skipped: the previous cycle is still running")
		case errors.Is(err, context.Canceled):
		case err != nil:
			log.Error("cycle failed", "error", err.Error(), "exit_code", exitCode(sum, err, len(cfg.Pipeline.Reports)))
		default:
			log.Info("cycle done", "runs_ingested", sum.RunsIngested, "rows", sum.Rows, "purged", sum.ObjectsPurged, "duration", sum.Duration)
		}
	}
	sched := cron.New(cron.WithLocation(time.UTC), cron.WithParser(cronParser))
	if _, err := sched.AddFunc(cfg.Serve.Cycle, func() { cycle() }); err != nil {
		return usageError{fmt.Errorf("serve.cycle: %w", err)}
	}
	if _, err := sched.AddFunc(cfg.Serve.Purge, func() {
		if _, err := c.purge(ctx); err != nil && !errors.Is(err, errBusy) && !errors.Is(err, context.Canceled) {
			log.Error("purge failed", "error", err.Error())
		}
	}); err != nil {
		return usageError{fmt.Errorf("serve.purge: %w", err)}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", m)
	secret := getenv("HDC_CALLBACK_SECRET")
	mux.HandleFunc("/callback/{secret}", func(w http.ResponseWriter, r *http.Request) {
		if secret == "" || subtle.ConstantTimeCompare([]byte(r.PathValue("secret")), []byte(secret)) != 1 {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		only := callbackReports(cfg, r.URL.Query().Get("report"))
		if len(only) == 0 {
			http.Error(w, "unknown report", http.StatusNotFound)
			return
		}
		go cycle(only...)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "ingestion started\n")
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "cycle", cfg.Serve.Cycle, "purge", cfg.Serve.Purge,
		"callback", secret != "")
	sched.Start()
	if *runAtStart {
		go cycle()
	}
	<-ctx.Done()
	log.Info("shutting down")
	stopped := sched.Stop() // no new ticks; running jobs see ctx cancelled
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	select {
	case <-stopped.Done():
	case <-shutdown.Done():
		return errors.New("a cycle did not stop within 10s")
	}
	c.mu.Lock() // wait for a callback-started cycle too
	c.mu.Unlock()
	return nil
}

// callbackReports maps the callback's report parameter (a dataset name or
// a Dev Center report id is not known here, so names only; empty = all) to
// configured report names.
func callbackReports(cfg *Config, name string) []string {
	var out []string
	for _, r := range cfg.Pipeline.Reports {
		if name == "" || strings.EqualFold(r.Name, name) {
			out = append(out, r.Name)
		}
	}
	return out
}
