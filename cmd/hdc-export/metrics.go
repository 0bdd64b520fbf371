package main

import (
	"fmt"
	"net/http"
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
		"hdc_cycles_total":                   "counter Export cycles by outcome.",
		"hdc_runs_ingested_total":            "counter Report runs ingested.",
		"hdc_rows_written_total":             "counter Rows written to the lake.",
		"hdc_rows_bad_total":                 "counter Rows that did not parse.",
		"hdc_bytes_written_total":            "counter Parquet bytes written.",
		"hdc_objects_purged_total":           "counter Objects deleted by retention.",
		"hdc_errors_total":                   "counter Errors by kind.",
		"hdc_last_success_timestamp_seconds": "gauge Unix time of the last successful cycle.",
		"hdc_oldest_object_age_seconds":      "gauge Age of the oldest dated object in the lake (from the start of its date); alert above the retention window.",
		"hdc_cycle_duration_seconds":         "gauge Duration of the last cycle.",
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
	if d, perr := time.ParseDuration(s.Duration); perr == nil {
		m.values["hdc_cycle_duration_seconds"] = d.Seconds()
	}
	if err == nil {
		m.values["hdc_last_success_timestamp_seconds"] = float64(time.Now().Unix())
	}
	m.setOldest(s.OldestDate)
}

// observePurge records a purge on its own schedule.
func (m *metrics) observePurge(r *pipeline.PurgeReport, err error) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil && !errorsIsLeaseHeld(err) {
		m.add(`hdc_errors_total{kind="purge"}`, 1)
	}
	if r != nil {
		m.add("hdc_objects_purged_total", float64(r.Deleted))
		m.setOldest(r.OldestDate)
	}
}

func (m *metrics) setOldest(date string) {
	if d, err := pipeline.ParseDate(date); err == nil {
		m.values["hdc_oldest_object_age_seconds"] = time.Since(d.Time()).Seconds()
	}
}

// ServeHTTP writes the Prometheus text exposition format.
func (m *metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
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
