# Trawl — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
PKGS := ./...
# Local services for `make dev` and the tests.
DEV_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/trawl?sslmode=disable
DEV_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/
TEST_TIMEOUT ?= 20m
SOAK_DURATION ?= 30m
FUZZTIME ?= 1m
# The version stamped into the binaries (`crawler --version`) and the image: git describe, or
# "dev" outside a git checkout. Override with `make build VERSION=v1.2.3`.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/trawlhq/trawl/service.Version=$(VERSION)

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make <target>\n\nTargets:\n"} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the three binaries into ./bin, stamped with VERSION (git describe).
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/crawler ./cmd/processor ./cmd/dashboard

.PHONY: version
version: ## Print the version that build and image stamp (git describe --tags --always --dirty).
	@echo $(VERSION)

.PHONY: image
image: ## Build the Docker image trawl:VERSION with VERSION stamped (for compose, set TRAWL_VERSION to the same).
	docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t trawl:$(VERSION) .

# The packages whose tests run SQL against Postgres: `make test` also runs them on the other
# supported major versions (scripts/test-postgres).
SQL_PKGS := ./store/ ./process/ ./web/ ./recrawl/ ./deadletter/ ./test/testenv/
OTHER_PG_MAJORS ?= 16 17
PG_MAJOR ?= 17

.PHONY: test
test: ## Run every test (unit, integration, end-to-end, bounded chaos) with the race detector, against local Postgres and RabbitMQ; then the SQL tests on Postgres 16 and 17.
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)
	$(GO) test -race -count=1 -tags failpoint ./internal/failpoint/
	@for v in $(OTHER_PG_MAJORS); do scripts/test-postgres $$v -count=1 -timeout $(TEST_TIMEOUT) $(SQL_PKGS) || exit 1; done

.PHONY: test-postgres
test-postgres: ## Run every test against another Postgres major version, PG_MAJOR (default 17), fetched from npm.
	scripts/test-postgres $(PG_MAJOR) -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

.PHONY: chaos
# The full suite runs one scenario at a time: its crawls are three times the bounded suite's, and
# with two at once on a two-core machine the load alone lets 15-second leases expire, which the
# scenarios' refetch bounds (recovery by redelivery, not by lease) rightly count as a failure.
chaos: ## Run the full chaos suite (TRAWL_CHAOS=full: larger crawls, one scenario at a time), print each scenario's figures (refetches, lease expiries, recovery time: each bounded) and write them to docs/DURABILITY.md.
	@set -o pipefail; status=0; TRAWL_CHAOS=full $(GO) test -race -count=1 -p 1 -parallel 1 -timeout 90m -v ./test/private/ ./test/chaos/ \
		| tee chaos.out | grep -E '^(--- |ok|FAIL|PASS)|CHAOS scenario=' || status=$$?; \
	$(GO) tool test2json < chaos.out | $(GO) run ./test/chaos/report -mode full -version $(VERSION) -o docs/DURABILITY.md \
		&& echo "wrote docs/DURABILITY.md" || status=1; exit $$status

.PHONY: mutate
mutate: ## Break each promise in test/mutate/mutations.go in a copy of the repository and check its tests fail (MUTATE_RUN=name, MUTATE_PKGS=regexp).
	@set -o pipefail; $(GO) test -tags mutate -count=1 -v -timeout 120m -run 'TestMutations/$(MUTATE_RUN)' ./test/mutate/ -args -mutate.pkgs='$(MUTATE_PKGS)' \
		| grep -Ev '^=== |level='

.PHONY: soak
soak: ## Soak benchmark, not in CI: crawl for SOAK_DURATION (default 30m), sample RSS, goroutines and queues, flag drift.
	@set -o pipefail; SOAK_DURATION=$(SOAK_DURATION) $(GO) test -count=1 -timeout 0 -v -run '^TestSoak$$' ./test/bench/soak/ | tee soak.out | grep -v 'level='

.PHONY: test-short
test-short: ## Run the fast tests only (skips what needs services when they are down).
	$(GO) test -short -count=1 $(PKGS)

.PHONY: generate
generate: ## Regenerate templ code.
	$(GO) tool templ generate

.PHONY: check
check: ## gofmt, go vet, staticcheck, and a templ diff.
	@out=$$(gofmt -l . | grep -v '^vendor/'); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	@if ls **/*.templ >/dev/null 2>&1 || find . -name '*.templ' | grep -q .; then \
		$(GO) tool templ generate >/dev/null && git diff --exit-code -- '*_templ.go' || { echo "templ output is stale: run make generate"; exit 1; }; fi

.PHONY: fuzz
fuzz: ## Run every fuzz test for FUZZTIME (default 1m) each.
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; done

.PHONY: bench
bench: ## Bare colly vs Trawl end to end, per-stage rates, CPU and RSS (BENCH_PAGES, BENCH_RUNS, ...: docs/PERFORMANCE.md); then a paced host's rate at the server against its goal (90% of per_host_rps).
	TRAWL_BENCH=1 $(GO) test -run '^TestBench$$' -v -count=1 -timeout 90m ./test/bench/
	@set -o pipefail; TRAWL_BENCH=1 $(GO) test -run '^TestPerHostRateAtTheServer$$' -v -count=1 -timeout 20m ./test/e2e/ | grep -E '^(---|ok|FAIL)|per_host_rps|rate at the server'

.PHONY: profile
profile: ## Go CPU and heap profiles of crawler and processor during one 20,000-page Trawl run, with top-25 summaries.
	@set -o pipefail; out="$${BENCH_OUT:-$${TMPDIR:-/tmp}/trawl-bench}"; \
	TRAWL_BENCH=1 BENCH_PAGES=$${BENCH_PAGES:-20000} BENCH_RUNS=1 BENCH_STAGE_RUNS=0 BENCH_PROFILE=1 BENCH_OUT="$$out" \
		$(GO) test -run '^TestBench$$' -v -count=1 -timeout 30m ./test/bench/ | grep -Ev 'level=(INFO|WARN)'; \
	echo; echo "Profiles and summaries in $$out/profiles:"; ls -1 "$$out/profiles"; \
	echo "Browse one with: go tool pprof -http=localhost:0 $$out/profiles/processor.cpu.pprof"

.PHONY: bench-large
bench-large: ## Trawl end to end on a frontier seeded with 1,000,000 URLs and pages (COPY) vs an empty one, with EXPLAIN of dispatch and persist.
	@set -o pipefail; out="$${BENCH_OUT:-$${TMPDIR:-/tmp}/trawl-bench}"; \
	TRAWL_BENCH=1 BENCH_SEED_URLS=$${BENCH_SEED_URLS:-1000000} BENCH_PAGES=$${BENCH_PAGES:-20000} BENCH_RUNS=$${BENCH_RUNS:-3} BENCH_STAGE_RUNS=0 BENCH_OUT="$$out" \
		$(GO) test -run '^TestBench$$' -v -count=1 -timeout 120m ./test/bench/ | grep -Ev 'level=(INFO|WARN)'; \
	echo; echo "Plans: $$out/explain-seeded.txt"

.PHONY: bench-micro
bench-micro: ## Run the Go micro-benchmarks.
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

.PHONY: screenshots
screenshots: ## Take the README's screenshots (docs/screenshot-*.png) in headless Chromium with a crawl running.
	set -o pipefail; TRAWL_SCREENSHOT_DIR=$(CURDIR)/docs $(GO) test -count=1 -run '^TestScreenshots$$' -v ./test/e2e/ | grep -E '^(---|ok|FAIL)|wrote'

.PHONY: dev
dev: build ## Run dashboard, crawler and processor against local Postgres and RabbitMQ (Ctrl-C stops all).
	@psql "$(subst /trawl?,/postgres?,$(DEV_DATABASE_URL))" -tAc "SELECT 1 FROM pg_database WHERE datname = 'trawl'" | grep -q 1 \
		|| psql "$(subst /trawl?,/postgres?,$(DEV_DATABASE_URL))" -c "CREATE DATABASE trawl"
	@export TRAWL_DATABASE_URL="$${TRAWL_DATABASE_URL:-$(DEV_DATABASE_URL)}" TRAWL_AMQP_URL="$${TRAWL_AMQP_URL:-$(DEV_AMQP_URL)}" \
		TRAWL_LOG_FORMAT="$${TRAWL_LOG_FORMAT:-text}"; \
	./$(BIN)/dashboard migrate && \
	trap 'kill $$(jobs -p) 2>/dev/null; wait' INT TERM EXIT; \
	./$(BIN)/dashboard & ./$(BIN)/processor & ./$(BIN)/crawler & \
	echo "Trawl is running: open http://localhost:8080 (Ctrl-C to stop)"; wait

.PHONY: clean
clean: ## Remove build output.
	rm -rf $(BIN)
