package main

import (
	"bytes"
	"fmt"
	"github.com/hdc-export/hdc-export/internal/lake"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hdc-export/hdc-export/pipeline"
)

// metrics keeps the service's Prometheus metrics. All names start with
// hdc_. It holds counts and times only. A nil *metrics ignores updates.
type metrics struct {
	mu     sync.Mutex
	values map[string]float64 // series ("name{labels}") → value
	help   map[string]string  // name → "TYPE help"
}

func newMetrics() *metrics {
	m := &metrics{values: map[string]float64{}, help: map[string]string{}}
	for name, h := range map[string]string{
		"hdc_cycles_total":                      "counter Export cycles by outcome.",
		"hdc_runs_ingested_total":               "counter Report runs ingested.",
		"hdc_rows_written_total":                "counter Rows written to the lake.",
		"hdc_rows_bad_total":                    "counter Rows that did not parse.",
		"hdc_bytes_written_total":               "counter Parquet bytes written.",
		"hdc_objects_purged_total":              "counter Objects deleted by retention.",
		"hdc_errors_total":                      "counter Errors by kind.",
		"hdc_last_success_timestamp_seconds":    "gauge Unix time of the last successful cycle.",
		"hdc_oldest_object_age_seconds":         "gauge Age of the oldest dated object in the lake (from the start of its date); alert above the retention window.",
		"hdc_cycle_duration_seconds":            "gauge Duration of the last cycle.",
		"hdc_retention_check_timestamp_seconds": "gauge Unix time of the last purge or check that read the whole store; alert when it is older than a day.",
		"hdc_retention_check_ok":                "gauge 1 if the last purge or check left (or found) nothing older than the window and nothing it cannot destroy or date, else 0.",
		"hdc_retention_stale_items":             "gauge Items (objects, versions, delete markers) older than the window left after the last purge or check.",
		"hdc_retention_locked_items":            "gauge Items older than the window that object lock keeps (cannot destroy).",
		"hdc_retention_unrecognised_items":      "gauge Objects under the lake that cannot be dated (a person must look).",
		"hdc_retention_incomplete_uploads":      "gauge Incomplete multipart uploads of dead writers left after the last purge or check.",
		"hdc_retention_check_errors_total":      "counter Purges or checks that could not read the store.",
		"hdc_runs_held_back_total":              "counter Runs held back because they would empty or sharply shrink partitions an older run filled (limits.max_shrink).",
		"hdc_rows_outside_coverage_total":       "counter Rows dated in the window but outside the days their run is taken to cover.",
		"hdc_rows_bad_not_quarantined_total":    "counter Bad rows past the quarantine's byte cap (counted, not kept).",
	} {
		m.help[name] = h
	}
	m.values[`hdc_cycles_total{outcome="ok"}`] = 0
	m.values[`hdc_errors_total{kind="cycle"}`] = 0
	return m
}

func (m *metrics) add(series string, v float64) { m.values[series] += v }

// observeCycle records a cycle's summary and error.
func (m *metrics) observeCycle(s *pipeline.Summary, err error) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	outcome := "ok"
	switch {
	case errorsIsLeaseHeld(err):
		outcome = "lease_held"
	case err != nil:
		outcome = "failed"
		m.add(`hdc_errors_total{kind="cycle"}`, 1)
	}
	m.add(fmt.Sprintf(`hdc_cycles_total{outcome=%q}`, outcome), 1)
	if s == nil {
		return
	}
	m.add("hdc_runs_ingested_total", float64(s.RunsIngested))
	m.add("hdc_rows_written_total", float64(s.Rows))
	m.add("hdc_rows_bad_total", float64(s.RowsBad))
	m.add("hdc_bytes_written_total", float64(s.Bytes))
	m.add("hdc_objects_purged_total", float64(s.ObjectsPurged))
	m.add("hdc_runs_held_back_total", float64(s.RunsHeldBack))
	m.add("hdc_rows_outside_coverage_total", float64(s.RowsOutsideCoverage))
	m.add("hdc_rows_bad_not_quarantined_total", float64(s.RowsBadNotQuarantined))
	if d, perr := time.ParseDuration(s.Duration); perr == nil {
		m.values["hdc_cycle_duration_seconds"] = d.Seconds()
	}
	if err == nil {
		m.values["hdc_last_success_timestamp_seconds"] = float64(time.Now().Unix())
	}
	m.setOldest(s.OldestDate)
	if s.Retention != nil {
		m.observeRetention(s.Retention)
	}
}

// observePurge records a purge on its own schedule.
func (m *metrics) observePurge(r *pipeline.PurgeReport, err error) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if errorsIsLeaseHeld(err) {
		return // a cycle is running; it purges too
	}
	if err != nil {
		m.add(`hdc_errors_total{kind="purge"}`, 1)
	}
	if r != nil {
		m.add("hdc_objects_purged_total", float64(r.Deleted))
		m.setOldest(r.OldestDate)
	}
	m.observeRetention(r)
}

// observeRetention records what a purge or check proved. Only a report of
// a whole store moves the check's timestamp; a failed one counts an error,
// so that an alert on the timestamp's age also fires when checks fail.
func (m *metrics) observeRetention(r *pipeline.PurgeReport) {
	if r == nil || !r.Store.Complete {
		m.add("hdc_retention_check_errors_total", 1)
		return
	}
	m.values["hdc_retention_check_timestamp_seconds"] = float64(r.Time.Unix())
	ok := 0.0
	if r.Judge() == pipeline.VerdictClean {
		ok = 1
	}
	m.values["hdc_retention_check_ok"] = ok
	m.values["hdc_retention_stale_items"] = float64(max(0, r.Objects-r.Deleted-r.Locked))
	m.values["hdc_retention_locked_items"] = float64(r.Locked)
	m.values["hdc_retention_unrecognised_items"] = float64(r.Unrecognised)
	m.values["hdc_retention_incomplete_uploads"] = float64(r.Uploads - r.UploadsAborted)
}

func (m *metrics) setOldest(date string) {
	if d, err := lake.ParseDate(date); err == nil {
		m.values["hdc_oldest_object_age_seconds"] = time.Since(d.Time()).Seconds()
	}
}

// ServeHTTP writes the Prometheus text exposition format.
func (m *metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.writeTo(w)
}

// writeFile writes the metrics for node_exporter's textfile collector,
// atomically (a temporary file renamed over path).
func (m *metrics) writeFile(path string) error {
	var b bytes.Buffer
	m.writeTo(&b)
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	return nil
}

// writeTo writes the Prometheus text exposition format: every metric
// that has a value, with its help and type.
func (m *metrics) writeTo(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.help))
	for name := range m.help {
		names = append(names, name)
	}
	slices.Sort(names)
	series := make([]string, 0, len(m.values))
	for s := range m.values {
		series = append(series, s)
	}
	slices.Sort(series)
	for _, name := range names {
		typ, help, _ := strings.Cut(m.help[name], " ")
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for _, s := range series {
			if s == name || strings.HasPrefix(s, name+"{") {
				fmt.Fprintf(w, "%s %g\n", s, m.values[s])
			}
		}
	}
}
