package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/sinks"
)

// Optional sink abilities doctor reports on (implemented by the S3 sink).
type (
	createOnlyProber interface {
		ProbeCreateOnly(ctx context.Context) (bool, error)
	}
	lifecycler interface {
		PutLifecycle(ctx context.Context, days int) error
		LifecycleRules(ctx context.Context) ([]string, error)
	}
)

// lifecycleMargin is added to the retention window for the S3 lifecycle
// backstop, so it never expires data the purge would still keep.
const lifecycleMargin = 2

// check is one line of the doctor's report.
type check struct {
	name, status, detail string // status: ok, missing, skip, WARN (cannot prove retention), FAIL
}

// cmdDoctor checks a configured deployment: the sink's abilities and the
// Dev Center credentials. It exits non-zero if a check fails.
func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "configs/demo.yaml", "config file")
	applyLifecycle := fs.Bool("apply-lifecycle", false, "install the S3 lifecycle backstop on the prefix")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	cfg, err := LoadConfig(*configPath, getenv)
	if err != nil {
		return usageError{err}
	}
	doctorRetries(cfg)
	log, _ := newLogger(io.Discard, "text", "error")
	var checks []check
	add := func(name string, err error, ok string) {
		if err != nil {
			checks = append(checks, check{name, "FAIL", err.Error()})
		} else {
			checks = append(checks, check{name, "ok", ok})
		}
	}
	sink, err := openSink(ctx, cfg.Sink, nil)
	add("sink: open "+redactURL(cfg.Sink.URL), err, fmt.Sprint(sink))
	if err == nil {
		checks = append(checks, sinkChecks(ctx, sink, cfg)...)
		if *applyLifecycle {
			days := cfg.Pipeline.Retention.Days + lifecycleMargin
			if lc, ok := sink.(lifecycler); ok {
				add("sink: lifecycle backstop", lc.PutLifecycle(ctx, days),
					fmt.Sprintf("objects expire %d days after writing, noncurrent versions 1 day after they are replaced, expired delete markers are removed, incomplete uploads abort after 1 day", days))
			} else {
				checks = append(checks, check{"sink: lifecycle backstop", "skip", "this sink has no lifecycle rules"})
			}
		}
		checks = append(checks, retentionChecks(ctx, sink, cfg.Pipeline.Retention.Days)...)
	}
	env, err := setup(ctx, cfg, log)
	if err != nil {
		add("devcenter: client", err, "")
	} else {
		defer env.close()
		tpls, err := env.client.ListTemplates(ctx)
		add("devcenter: token and list templates", err, fmt.Sprintf("%d templates", len(tpls)))
		reps, err := env.client.ListReports(ctx)
		add("devcenter: list scheduled reports", err, fmt.Sprintf("%d scheduled reports", len(reps)))
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	failed := 0
	for _, c := range checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.status, c.name, c.detail)
		if c.status == "FAIL" || c.status == "WARN" {
			failed++
		}
	}
	_ = tw.Flush()
	if failed > 0 {
		return fmt.Errorf("%d checks failed", failed)
	}
	return nil
}

// Doctor's retry bounds: a diagnosis reports what does not answer within
// seconds rather than waiting minutes for it (a wrong port, a store or
// API that is down).
const (
	doctorRefusedRetryFor = 2 * time.Second // per S3 request
	doctorAPIAttempts     = 3               // per Dev Center call
	doctorAPIRetryMax     = time.Second
)

// doctorRetries tightens cfg's retries to doctor's bounds, keeping any
// configured value that is tighter already.
func doctorRetries(cfg *Config) {
	if r := &cfg.Sink.S3.RefusedRetryFor; *r >= 0 && (*r == 0 || *r > doctorRefusedRetryFor) {
		*r = doctorRefusedRetryFor
	}
	if a := &cfg.DevCenter.MaxAttempts; *a <= 0 || *a > doctorAPIAttempts {
		*a = doctorAPIAttempts
	}
	if m := &cfg.DevCenter.RetryMax; *m <= 0 || *m > doctorAPIRetryMax {
		*m = doctorAPIRetryMax
	}
}

// sinkChecks writes, reads, lists and deletes probe objects under _hdc/,
// and probes the optional abilities.
func sinkChecks(ctx context.Context, s sinks.Sink, cfg *Config) []check {
	var out []check
	res := func(name string, err error, ok string) {
		if err != nil {
			out = append(out, check{name, "FAIL", err.Error()})
		} else {
			out = append(out, check{name, "ok", ok})
		}
	}
	id := make([]byte, 6)
	_, _ = rand.Read(id)
	prefix := lake.DoctorDir + hex.EncodeToString(id) + "/"
	body := []byte("hdc-export doctor probe\n")
	key := prefix + "probe"
	err := s.Put(ctx, key, bytes.NewReader(body))
	res("sink: write", err, key)
	if err != nil {
		return out
	}
	defer func() { _ = deletePrefix(context.WithoutCancel(ctx), s, prefix) }()
	rc, err := s.Get(ctx, key)
	if err == nil {
		got, rerr := io.ReadAll(rc)
		rc.Close()
		if err = rerr; err == nil && !bytes.Equal(got, body) {
			err = errors.New("read back different bytes")
		}
	}
	res("sink: read", err, "same bytes")
	n := 0
	err = s.List(ctx, prefix, func(sinks.Object) error { n++; return nil })
	if err == nil && n != 1 {
		err = fmt.Errorf("listed %d objects, want 1", n)
	}
	res("sink: list", err, "1 object")

	switch c := s.(type) {
	case createOnlyProber:
		ok, err := c.ProbeCreateOnly(ctx)
		switch {
		case err != nil:
			res("sink: create-only put", err, "")
		case ok:
			out = append(out, check{"sink: create-only put", "ok", "If-None-Match: * is honoured (412 on a taken key)"})
		default:
			out = append(out, check{"sink: create-only put", "missing", "the store ignores conditional writes; run a single runner per lake"})
		}
	case sinks.CreateOnly:
		err := c.PutIfAbsent(ctx, prefix+"lease", bytes.NewReader(body))
		if err == nil {
			if err = c.PutIfAbsent(ctx, prefix+"lease", bytes.NewReader(body)); errors.Is(err, sinks.ErrExists) {
				err = nil
			} else if err == nil {
				err = errors.New("a second create-only put succeeded")
			}
		}
		res("sink: create-only put", err, "second put refused with ErrExists")
	default:
		out = append(out, check{"sink: create-only put", "missing", "not supported by this sink"})
	}

	if t, _ := parseSinkURL(cfg.Sink.URL); t.scheme == "s3" {
		sc := cfg.Sink.s3Config(t)
		size := sc.PartSize
		if size <= 0 {
			size = 8 << 20
		}
		size += 1 << 20
		err := s.Put(ctx, prefix+"multipart", io.LimitReader(zeros{}, size))
		res("sink: multipart upload", err, fmt.Sprintf("%d MiB streamed in parts", size>>20))
		mode := sc.Checksum
		if mode == "" {
			mode = "auto"
		}
		out = append(out, check{"sink: checksum mode", "ok", mode + " (size verified after every upload; sha256 in object metadata)"})
	} else {
		out = append(out, check{"sink: multipart upload", "skip", "not applicable to this sink"})
	}
	err = deletePrefix(ctx, s, prefix)
	if err == nil {
		err = s.List(ctx, prefix, func(o sinks.Object) error { return fmt.Errorf("%s survived delete", o.Key) })
	}
	res("sink: delete", err, "probe objects removed")
	return out
}

func deletePrefix(ctx context.Context, s sinks.Sink, prefix string) error {
	var keys []string
	if err := s.List(ctx, prefix, func(o sinks.Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		return err
	}
	return s.Delete(ctx, keys...)
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// redactURL drops any user info from a URL before it is printed.
func redactURL(raw string) string {
	if i := strings.Index(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			return raw[:j+3] + "…" + raw[i:]
		}
	}
	return raw
}

// retentionChecks reports what decides whether the purge can destroy: the
// store's versioning, object lock and lifecycle rules. Versioning is fine
// (purge removes every version); object lock is a warning, since it keeps
// data past the window whatever the purge does.
func retentionChecks(ctx context.Context, s sinks.Sink, days int) []check {
	inv, ok := s.(sinks.Inventory)
	if !ok {
		return []check{{"sink: retention", "WARN", "the sink cannot show every object it holds; retention cannot be proven"}}
	}
	st, err := inv.Settings(ctx)
	if err != nil {
		return []check{{"sink: versioning and object lock", "FAIL", err.Error()}}
	}
	var out []check
	switch st.Versioning {
	case "":
		out = append(out, check{"sink: versioning", "ok", "off: a delete destroys the object"})
	default:
		out = append(out, check{"sink: versioning", "ok", st.Versioning + ": purge destroys every version and delete marker by version id"})
	}
	switch r := st.DefaultRetention; {
	case r.Mode != "":
		out = append(out, check{"sink: object lock", "WARN", fmt.Sprintf("default retention %s %d days locks every new object: data written near the end of the %d-day window is kept past it, and purge cannot destroy it; remove the bucket's default retention", r.Mode, r.Days, days)})
	case st.ObjectLock:
		out = append(out, check{"sink: object lock", "WARN", "enabled with no default retention: an object locked by another tool cannot be destroyed (purge --check reports it)"})
	default:
		out = append(out, check{"sink: object lock", "ok", "off"})
	}
	if lc, ok := s.(lifecycler); ok {
		rules, err := lc.LifecycleRules(ctx)
		switch {
		case err != nil:
			out = append(out, check{"sink: expiry rules in force", "FAIL", err.Error()})
		case len(rules) == 0:
			out = append(out, check{"sink: expiry rules in force", "ok", "none on the prefix (optional backstop: --apply-lifecycle)"})
		default:
			out = append(out, check{"sink: expiry rules in force", "ok", strings.Join(rules, "; ")})
		}
	}
	return out
}
