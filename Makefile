# hdc-export — the two commands a newcomer needs:
#   make run    export the embedded emulator's demo account into ./lake
#   make test   vet, race-enabled unit tests, and the DuckDB end-to-end tests
GO      ?= go
BIN     ?= bin/hdc-export
CONFIG  ?= configs/demo.yaml

.PHONY: run build test unit e2e vet lint tidy-check fuzz clean

build:
	$(GO) build -o $(BIN) ./cmd/hdc-export

run: build
	$(BIN) run --config $(CONFIG)
	@echo
	@echo "The lake is in ./lake. Try it with DuckDB:"
	@echo "  SELECT date, count(*) AS rows, sum(event_count) AS events"
	@echo "  FROM read_parquet('lake/ihv_driver/**/*.parquet', hive_partitioning = true)"
	@echo "  GROUP BY date ORDER BY date;"

test: vet unit e2e

vet:
	$(GO) vet ./...
	cd e2e && $(GO) vet ./...

unit:
	$(GO) test -race -shuffle=on -count=1 ./...

e2e:
	cd e2e && $(GO) test -count=1 ./...

lint: vet
	@test -z "$$(gofmt -l . )" || (gofmt -l . && exit 1)

tidy-check:
	$(GO) mod tidy -diff

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseDate -fuzztime 20s ./schema/
	$(GO) test -run '^$$' -fuzz FuzzParseTimestamp -fuzztime 20s ./schema/
	$(GO) test -run '^$$' -fuzz FuzzPartitionKeyRoundTrip -fuzztime 20s ./pipeline/

clean:
	rm -rf bin lake
