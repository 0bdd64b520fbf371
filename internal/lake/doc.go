// Package lake is the lake's layout and its records, as pure code: every
// object key (data, cabs, cab index, and the runner's state under "_hdc/")
// is built and parsed here and nowhere else, together with the retention
// window, and the JSON records the runner keeps beside the data: partition
// manifests, commit records, schema history, report bindings, lease and
// purge audit records. It reads and writes records through sinks.Sink and
// knows nothing of Dev Center requests, Parquet, or the cycle.
package lake
