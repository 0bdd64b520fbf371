# hdc-export — the two commands a newcomer needs:
#   make run    export the embedded emulator's demo account into ./lake
#   make test   vet, race-enabled unit tests, and the DuckDB end-to-end tests
GO      ?= go
BIN     ?= bin/hdc-export
CONFIG  ?= configs/demo.yaml

.PHONY: run run-minio build test unit long e2e vet lint tidy-check fuzz bench clean rules image iceberg iceberg-long

build:
	$(GO) build -o $(BIN) ./cmd/hdc-export

# Exits 0 when the lake was already up to date too (see README, "Exit codes").
run: build
	$(BIN) run --config $(CONFIG)
	@echo
	@echo "The lake is in ./lake. Try it with DuckDB:"
	@echo "  SELECT date, count(*) AS rows, sum(event_count) AS events"
	@echo "  FROM read_parquet('lake/ihv_driver/**/*.parquet', hive_partitioning = true)"
	@echo "  GROUP BY date ORDER BY date;"

# The demo against a local MinIO server (installs MinIO once; see the README
# for how long a run takes).
run-minio:
	bash scripts/minio-demo.sh

test: vet unit long e2e rules image iceberg-long

# Iceberg tables (issue 18) are linked only with the iceberg build tag.
# iceberg: vet and the quick test (iceberg-go's scan against the Hive rule,
# with purge checks). iceberg-long adds the 120-day retention simulations
# (a folder, MinIO plain and versioned: about 15 minutes), a REST catalog
# over 36 days, and the SIGKILL-in-the-commit crash test; `make test` runs it.
iceberg:
	$(GO) vet -tags iceberg ./cmd/... ./pipeline/ ./internal/lake/...
	$(GO) test -tags iceberg -count=1 -run 'TestIcebergMatchesHive|TestIcebergCatalogConfig|TestIcebergSchemaEvolves|TestIcebergPurgeCatalogPutFails' ./pipeline/
	$(GO) test -tags iceberg -count=1 -run 'TestIcebergSecretsFromEnvironment' ./cmd/hdc-export/

iceberg-long: iceberg
	$(GO) test -tags iceberg -count=1 -timeout 60m -run 'TestIcebergRetention|TestIcebergREST' ./pipeline/
	$(GO) test -tags iceberg -count=1 -timeout 20m -run 'TestIcebergCrash' ./cmd/hdc-export/

vet:
	$(GO) vet ./...
	cd e2e && $(GO) vet ./...

# Race-enabled tests; -short leaves out the long simulations, which the
# race detector slows tenfold (they run without it in `long`).
unit:
	$(GO) test -race -shuffle=on -short -count=1 -timeout 30m ./...

long:
	$(GO) test -count=1 -timeout 30m -run 'Simulated|PeakRSS|TestServe|Crash|Overlap|TestExitSignalDuringMirror|TestRecordReaderTooLongBounded' ./...

e2e:
	cd e2e && $(GO) test -count=1 -timeout 30m ./...

# The Prometheus alert rules and their unit tests (promtool comes with
# Debian's prometheus package).
rules:
	promtool check rules deploy/prometheus/hdc-export.rules.yml
	cd deploy/prometheus && promtool test rules hdc-export.rules.test.yml

# The container image's runtime stage (deploy/Dockerfile), built with
# buildah from a static binary and checked (needs buildah and root).
image:
	$(GO) test -count=1 -run TestImageBuilds ./deploy/

lint: vet
	@test -z "$$(gofmt -l . )" || (gofmt -l . && exit 1)

tidy-check:
	$(GO) mod tidy -diff

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseDate -fuzztime 20s ./schema/
	$(GO) test -run '^$$' -fuzz FuzzParseTimestamp -fuzztime 20s ./schema/
	$(GO) test -run '^$$' -fuzz FuzzPartitionKeyRoundTrip -fuzztime 20s ./pipeline/
	$(GO) test -run '^$$' -fuzz FuzzRowParser -fuzztime 20s ./pipeline/
	$(GO) test -run '^$$' -fuzz FuzzRecordReaderMatchesCSV -fuzztime 20s -fuzzminimizetime 5s ./devcenter/

# hdc-export run (cabs off) against DuckDB's partitioned COPY on the same
# emulator report, each in its own process: wall time, rows/s, MB/s, peak
# RSS and their ratio. BENCH_ARGS="-period Last90Days -rows-per-day 45000"
# makes the 2 GB, 90-day report.
BENCH_ARGS ?= -period Last30Days -rows-per-day 20000 -runs 3
bench: build
	cd e2e && $(GO) build -o ../bin/bench ./cmd/bench
	bin/bench -bin $(BIN) $(BENCH_ARGS)

clean:
	rm -rf bin lake
