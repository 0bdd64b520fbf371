package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hdc-export/hdc-export/internal/lake"
	"github.com/hdc-export/hdc-export/internal/version"
	"github.com/hdc-export/hdc-export/pipeline"
)

// metrics keeps the program's Prometheus metrics in a registry of its own:
// the hdc_ metrics (counts and times only, never a device id, a
// CabIdHash or a secret) and, for `serve`'s /metrics, the standard go_ and
// process_ collectors. A nil *metrics ignores updates.
//
// Timestamps, not ages: a gauge of "seconds since" would freeze between
// cycles, so the program exposes when things happened and PromQL computes
// the age (time() - hdc_last_success_timestamp_seconds). Gauges that are
// unknown until something happens (the last success, the last complete
// retention check) are absent until then, so that no alert reads a 0 as a
// date in 1970.
type metrics struct {
	hdc     *prometheus.Registry // hdc_ metrics: written to files and pushed
	runtime *prometheus.Registry // go_ and process_: served only (node_exporter and the Pushgateway have their own)

	cycles       *prometheus.CounterVec // outcome
	runsIngested prometheus.Counter
	rowsWritten  prometheus.Counter
	rowsBad      prometheus.Counter
	bytesWritten prometheus.Counter
	cabs         *prometheus.CounterVec // outcome, reason
	cabBytes     prometheus.Counter
	purged       prometheus.Counter
	purgeItems   *prometheus.CounterVec // outcome, reason
	errors       *prometheus.CounterVec // kind
	checkErrors  prometheus.Counter

	lastSuccess   *prometheus.GaugeVec // no labels: absent until known
	lastCycle     *prometheus.GaugeVec // no labels
	lastOutcome   *prometheus.GaugeVec // outcome: 1 for the last cycle's, 0 for the others
	lastCabs      *prometheus.GaugeVec // outcome, reason: the last cycle's cab counts
	cycleDuration *prometheus.GaugeVec // no labels
	oldest        *prometheus.GaugeVec // no labels

	checkTime    *prometheus.GaugeVec // the gauges of the last complete retention check, no labels
	checkOK      *prometheus.GaugeVec
	staleItems   *prometheus.GaugeVec
	lockedItems  *prometheus.GaugeVec
	unrecognised *prometheus.GaugeVec
	uploads      *prometheus.GaugeVec
}

// Cycle outcomes (label outcome of hdc_cycles_total and
// hdc_last_cycle_outcome).
var cycleOutcomes = []string{"ok", "partial", "failed", "lease_held"}

// newMetrics registers every metric. retentionDays is the configured
// window (hdc_retention_days), 0 if unknown.
func newMetrics(retentionDays int) *metrics {
	m := &metrics{hdc: prometheus.NewRegistry(), runtime: prometheus.NewRegistry()}
	m.runtime.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := promautoFactory{m.hdc}
	info := version.Get()
	f.gauge("hdc_build_info", "Always 1; the labels say which build runs (the version string of `hdc-export version`).",
		"version", "revision", "goversion").WithLabelValues(info.String(), info.Revision, info.GoVersion).Set(1)
	if retentionDays > 0 {
		f.gauge("hdc_retention_days", "The configured retention window in days (retention.days).").WithLabelValues().Set(float64(retentionDays))
	}

	m.cycles = f.counter("hdc_cycles_total", "Export cycles by outcome: ok, partial (some reports failed, others landed), failed, lease_held.", "outcome")
	m.runsIngested = f.counter("hdc_runs_ingested_total", "Report runs ingested.").WithLabelValues()
	m.rowsWritten = f.counter("hdc_rows_written_total", "Rows written to the lake.").WithLabelValues()
	m.rowsBad = f.counter("hdc_rows_bad_total", "Rows that did not parse.").WithLabelValues()
	m.bytesWritten = f.counter("hdc_bytes_written_total", "Parquet bytes written.").WithLabelValues()
	m.cabs = f.counter("hdc_cabs_total", "Cabs by outcome (mirrored, refused, failed, rejected, not_found, skipped_expired, deferred) and reason.", "outcome", "reason")
	m.cabBytes = f.counter("hdc_cab_bytes_total", "Cab bytes mirrored.").WithLabelValues()
	m.purged = f.counter("hdc_objects_purged_total", "Objects outside the retention window destroyed.").WithLabelValues()
	m.purgeItems = f.counter("hdc_purge_items_total", "Items a purge destroyed or had to keep, by reason.", "outcome", "reason")
	m.errors = f.counter("hdc_errors_total", "Errors by kind (cycle, purge).", "kind")
	m.checkErrors = f.counter("hdc_retention_check_errors_total", "Purges or checks that could not read the whole store.").WithLabelValues()

	m.lastSuccess = f.gauge("hdc_last_success_timestamp_seconds", "Unix time of the end of the last cycle that failed nothing; alert on its age.")
	m.lastCycle = f.gauge("hdc_last_cycle_timestamp_seconds", "Unix time of the end of the last cycle, whatever its outcome.")
	m.lastOutcome = f.gauge("hdc_last_cycle_outcome", "1 for the outcome of the last cycle, 0 for the others.", "outcome")
	m.lastCabs = f.gauge("hdc_last_cycle_cabs", "Cabs of the last cycle by outcome and reason (see hdc_cabs_total).", "outcome", "reason")
	m.cycleDuration = f.gauge("hdc_cycle_duration_seconds", "Duration of the last cycle.")
	m.oldest = f.gauge("hdc_oldest_object_date_timestamp_seconds", "Start (UTC midnight) of the oldest date the last purge or check saw in the lake, before it destroyed anything; the age is time() minus this.")

	m.checkTime = f.gauge("hdc_retention_check_timestamp_seconds", "Unix time of the last purge or check that read the whole store; alert when it is older than a day.")
	m.checkOK = f.gauge("hdc_retention_check_ok", "1 if the last purge or check left (or found) nothing older than the window and nothing it cannot destroy or date, else 0.")
	m.staleItems = f.gauge("hdc_retention_stale_items", "Items (objects, versions, delete markers) older than the window left after the last purge or check.")
	m.lockedItems = f.gauge("hdc_retention_locked_items", "Items older than the window that object lock keeps (cannot destroy).")
	m.unrecognised = f.gauge("hdc_retention_unrecognised_items", "Objects under the lake that cannot be dated (a person must look).")
	m.uploads = f.gauge("hdc_retention_incomplete_uploads", "Incomplete multipart uploads of dead writers left after the last purge or check.")

	for _, o := range cycleOutcomes {
		m.cycles.WithLabelValues(o)
	}
	m.errors.WithLabelValues("cycle")
	return m
}

// promautoFactory registers vectors on one registry.
type promautoFactory struct{ reg *prometheus.Registry }

func (f promautoFactory) counter(name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(v)
	return v
}

func (f promautoFactory) gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(v)
	return v
}

// cabCount is one (outcome, reason, n) triple of a cycle's cabs.
type cabCount struct {
	outcome, reason string
	n               int
}

// cabCounts turns a summary's cab counts into (outcome, reason, n)
// triples. reasons (outcome → reason → n; nil when the summary has none)
// splits an outcome's count; what no reason accounts for counts under
// reason "other". Outcomes with no cab are left out.
func cabCounts(s *pipeline.Summary, reasons map[string]map[string]int) []cabCount {
	var out []cabCount
	for _, o := range []struct {
		outcome string
		n       int
	}{
		{"mirrored", s.CabsMirrored},
		{"refused", s.CabsRefused},
		{"failed", s.CabsFailed},
		{"rejected", s.CabsRejected},
		{"not_found", s.CabsNotFound},
		{"skipped_expired", s.CabsSkippedExpired},
		{"deferred", s.CabsDeferred},
	} {
		rest := o.n
		byReason := reasons[o.outcome]
		keys := make([]string, 0, len(byReason))
		for r := range byReason {
			keys = append(keys, r)
		}
		slices.Sort(keys)
		for _, r := range keys {
			if n := byReason[r]; n > 0 {
				out = append(out, cabCount{o.outcome, r, n})
				rest -= n
			}
		}
		if rest > 0 {
			out = append(out, cabCount{o.outcome, "other", rest})
		}
	}
	return out
}

// cycleOutcome classifies a cycle for the outcome label.
func cycleOutcome(s *pipeline.Summary, err error) string {
	switch {
	case errorsIsLeaseHeld(err):
		return "lease_held"
	case err == nil:
		return "ok"
	case s != nil && s.ReportsFailed > 0 && s.RunsIngested > 0:
		return "partial"
	}
	return "failed"
}

// observeCycle records a cycle's summary and error.
func (m *metrics) observeCycle(s *pipeline.Summary, err error) {
	if m == nil {
		return
	}
	outcome := cycleOutcome(s, err)
	m.cycles.WithLabelValues(outcome).Inc()
	if outcome == "lease_held" {
		return // another runner's cycle: nothing of this one to report
	}
	now := float64(time.Now().UnixNano()) / 1e9
	m.lastCycle.WithLabelValues().Set(now)
	for _, o := range cycleOutcomes {
		v := 0.0
		if o == outcome {
			v = 1
		}
		m.lastOutcome.WithLabelValues(o).Set(v)
	}
	if err != nil {
		m.errors.WithLabelValues("cycle").Inc()
	} else {
		m.lastSuccess.WithLabelValues().Set(now)
	}
	if s == nil {
		return
	}
	m.runsIngested.Add(float64(s.RunsIngested))
	m.rowsWritten.Add(float64(s.Rows))
	m.rowsBad.Add(float64(s.RowsBad))
	m.bytesWritten.Add(float64(s.Bytes))
	m.cabBytes.Add(float64(s.CabBytes))
	m.lastCabs.Reset()
	for _, c := range cabCounts(s, nil) {
		m.cabs.WithLabelValues(c.outcome, c.reason).Add(float64(c.n))
		m.lastCabs.WithLabelValues(c.outcome, c.reason).Set(float64(c.n))
	}
	if d, perr := time.ParseDuration(s.Duration); perr == nil {
		m.cycleDuration.WithLabelValues().Set(d.Seconds())
	}
	m.purged.Add(float64(s.ObjectsPurged))
	m.setOldest(s.OldestDate)
	if s.Retention != nil {
		m.purgeOutcomes(s.Retention)
		m.observeRetention(s.Retention)
	}
}

// observePurge records a purge on its own schedule.
func (m *metrics) observePurge(r *pipeline.PurgeReport, err error) {
	if m == nil || errorsIsLeaseHeld(err) {
		return // a cycle is running; it purges too
	}
	if err != nil {
		m.errors.WithLabelValues("purge").Inc()
	}
	if r != nil {
		m.purged.Add(float64(r.Deleted))
		m.purgeOutcomes(r)
		m.setOldest(r.OldestDate)
	}
	m.observeRetention(r)
}

// purgeOutcomes counts what a purge destroyed and what it had to keep, by
// reason.
func (m *metrics) purgeOutcomes(r *pipeline.PurgeReport) {
	for _, c := range []struct {
		outcome, reason string
		n               int
	}{
		{"destroyed", "outside_window", r.Deleted},
		{"destroyed", "superseded", r.SupersededDeleted},
		{"destroyed", "incomplete_upload", r.UploadsAborted},
		{"destroyed", "temp_file", r.TempFiles},
		{"kept", "locked", r.Locked + r.SupersededLocked},
		{"kept", "unrecognised", r.Unrecognised},
		{"kept", "failed", r.Failed + r.TempFoldersFailed},
	} {
		if c.n > 0 {
			m.purgeItems.WithLabelValues(c.outcome, c.reason).Add(float64(c.n))
		}
	}
}

// observeRetention records what a purge or check proved. Only a report of
// a whole store moves the check's gauges; a failed one counts an error
// and leaves them, so that an alert on the timestamp's age also fires when
// checks fail.
func (m *metrics) observeRetention(r *pipeline.PurgeReport) {
	if r == nil || !r.Store.Complete {
		m.checkErrors.Inc()
		return
	}
	m.checkTime.WithLabelValues().Set(float64(r.Time.UnixNano()) / 1e9)
	ok := 0.0
	if r.Judge() == pipeline.VerdictClean {
		ok = 1
	}
	m.checkOK.WithLabelValues().Set(ok)
	m.staleItems.WithLabelValues().Set(float64(max(0, r.Objects-r.Deleted-r.Locked)))
	m.lockedItems.WithLabelValues().Set(float64(r.Locked))
	m.unrecognised.WithLabelValues().Set(float64(r.Unrecognised))
	m.uploads.WithLabelValues().Set(float64(r.Uploads - r.UploadsAborted))
}

func (m *metrics) setOldest(date string) {
	if d, err := lake.ParseDate(date); err == nil {
		m.oldest.WithLabelValues().Set(float64(d.Time().Unix()))
	}
}

// handler serves every metric, the go_ and process_ ones included.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(prometheus.Gatherers{m.runtime, m.hdc}, promhttp.HandlerOpts{})
}

// writeFile writes the hdc_ metrics for node_exporter's textfile
// collector, atomically (a temporary file renamed over path), each series
// labelled command="<command>" so that the files of `run` and `purge`
// never collide. Gauges this process has no value for (see carryForward) keep
// the value of the file it replaces.
func (m *metrics) writeFile(path, command string) error {
	if prev, err := os.Open(path); err == nil {
		m.carryForward(prev)
		prev.Close()
	}
	if err := prometheus.WriteToTextfile(path, labelled{m.hdc, command}); err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	return nil
}

// carryForward sets each carried gauge that has no value from the metrics
// text in prev. A file that does not parse carries nothing.
func (m *metrics) carryForward(prev *os.File) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(prev)
	if err != nil {
		return
	}
	have, err := m.hdc.Gather()
	if err != nil {
		return
	}
	present := map[string]bool{}
	for _, mf := range have {
		present[mf.GetName()] = len(mf.GetMetric()) > 0
	}
	// What the last success and the last complete retention check proved
	// stays true until a newer one.
	carried := map[string]*prometheus.GaugeVec{
		"hdc_last_success_timestamp_seconds":       m.lastSuccess,
		"hdc_oldest_object_date_timestamp_seconds": m.oldest,
		"hdc_retention_check_timestamp_seconds":    m.checkTime,
		"hdc_retention_check_ok":                   m.checkOK,
		"hdc_retention_stale_items":                m.staleItems,
		"hdc_retention_locked_items":               m.lockedItems,
		"hdc_retention_unrecognised_items":         m.unrecognised,
		"hdc_retention_incomplete_uploads":         m.uploads,
	}
	for name, vec := range carried {
		mf := fams[name]
		if present[name] || mf == nil || len(mf.GetMetric()) != 1 || mf.GetMetric()[0].GetGauge() == nil {
			continue
		}
		vec.WithLabelValues().Set(mf.GetMetric()[0].GetGauge().GetValue())
	}
}

// push sends the hdc_ metrics to a Pushgateway, in the group of job and
// command=<command>. It adds (POST): a metric this process has no value
// for (such as the last success, after a failed run) keeps the group's
// previous value.
func (m *metrics) push(url, job, command string) error {
	if err := push.New(url, job).Grouping("command", command).Gatherer(m.hdc).Add(); err != nil {
		return fmt.Errorf("push metrics to %s: %w", url, err)
	}
	return nil
}

// export writes the metrics file and pushes, as the flags ask, and joins
// their errors.
func (m *metrics) export(file, pushURL, job, command string) error {
	var errs []error
	if pushURL != "" { // first: the file's carried values are not this process's to push
		errs = append(errs, m.push(pushURL, job, command))
	}
	if file != "" {
		errs = append(errs, m.writeFile(file, command))
	}
	return errors.Join(errs...)
}

// labelled is a gatherer that adds a command label to every series.
type labelled struct {
	g       prometheus.Gatherer
	command string
}

func (l labelled) Gather() ([]*dto.MetricFamily, error) {
	fams, err := l.g.Gather()
	name := "command"
	for _, mf := range fams {
		for _, s := range mf.GetMetric() {
			s.Label = append(s.Label, &dto.LabelPair{Name: &name, Value: &l.command})
			sort.Slice(s.Label, func(i, j int) bool { return s.Label[i].GetName() < s.Label[j].GetName() })
		}
	}
	return fams, err
}

// exportFlags are the flags of the commands that end after one cycle or
// purge: where their metrics go.
type exportFlags struct {
	file, pushgateway, job *string
}

// metricsFlags adds --metrics-file, --pushgateway and --pushgateway-job.
func metricsFlags(fs *flag.FlagSet) exportFlags {
	return exportFlags{
		file:        fs.String("metrics-file", "", "write the hdc_ metrics to this file, atomically (node_exporter textfile collector)"),
		pushgateway: fs.String("pushgateway", "", "also push the hdc_ metrics to this Pushgateway URL (job --pushgateway-job, grouped by command)"),
		job:         fs.String("pushgateway-job", "hdc-export", "the Pushgateway job label"),
	}
}

// export writes and pushes m as the flags ask. A failure is logged: the
// command's own outcome stands.
func (f exportFlags) export(m *metrics, command string, log *slog.Logger) {
	if err := m.export(*f.file, *f.pushgateway, *f.job, command); err != nil {
		log.Error("export metrics", "error", err.Error())
	}
}
