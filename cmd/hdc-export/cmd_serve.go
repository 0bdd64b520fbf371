package main

import (
	"context"
	"crypto/subtle"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hdc-export/hdc-export/pipeline"
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
	cfg, env, err := start(ctx, *configPath, getenv, log)
	if err != nil {
		return err
	}
	defer env.close()
	m := newMetrics(cfg.Pipeline.Retention.Days)
	c := newCycler(cfg, env, log, m)
	schedule := pipeline.Schedule{Cycle: cfg.Serve.Cycle, Purge: cfg.Serve.Purge}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", m.handler())
	secret := getenv("HDC_CALLBACK_SECRET")
	// The cycle runs on the service's context, not the request's.
	handleCallback(mux, cfg, secret, func(only ...string) bool { return c.Request(ctx, only...) })
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() { _ = srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "cycle", cfg.Serve.Cycle, "purge", cfg.Serve.Purge,
		"callback", secret != "")
	err = c.Serve(ctx, schedule, *runAtStart)
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	return err
}

// handleCallback serves the report-ready callback on mux:
// POST /callback/<secret>?report=<name>. Any other method gets 405 with
// Allow: POST (from ServeMux). request asks for a cycle of the named
// reports (see pipeline.Cycler.Request) and reports whether it was queued
// behind a running cycle; the answer (202) says which.
func handleCallback(mux *http.ServeMux, cfg *Config, secret string, request func(only ...string) (queued bool)) {
	mux.HandleFunc("POST /callback/{secret}", func(w http.ResponseWriter, r *http.Request) {
		if secret == "" || subtle.ConstantTimeCompare([]byte(r.PathValue("secret")), []byte(secret)) != 1 {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		only := callbackReports(cfg, r.URL.Query().Get("report"))
		if len(only) == 0 {
			http.Error(w, "unknown report", http.StatusNotFound)
			return
		}
		queued := request(only...)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusAccepted)
		if queued {
			_, _ = io.WriteString(w, "queued: ingestion runs when the running cycle ends\n")
			return
		}
		_, _ = io.WriteString(w, "started: ingestion is running\n")
	})
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
