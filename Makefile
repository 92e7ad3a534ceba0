# aurora: the one entry point.
#
#   make            build the patched PostgreSQL (cached), the storage service,
#                   the extension and aurora-compute-init (installed into the
#                   patched server)
#   make run        build against the optimized (release) server, then start a
#                   local cluster (six storage nodes, one compute) in .run/ ;
#                   `make stop` stops it
#   make check      every test suite (what CI runs)
#   make lint       shellcheck over the shell scripts
#   make check-sanitize   the storage service's unit tests under ASan+UBSan,
#                   the threaded ones under TSan
#   make FLAVOUR=release   the same against the optimized server build
#   make soak       long runs kept out of make check: the page oracle
#                   SOAK_RUNS times (10) beside SOAK_LOAD CPU-bound loops (2)
#   make fuzz       the wire decoder fuzz target, for FUZZ_SECONDS
#   make bench      the benchmarks (test/bench/run.sh; BENCH=name... for some),
#                   JSON results in test/bench/results/
#
# The patched PostgreSQL is built once per machine and cached in
# $(AURORA_CACHE), keyed by source version, flavour and patch hash.

export AURORA_CACHE ?= /var/cache/aurora
RUN_DIR        ?= $(CURDIR)/.run
RUN_NODE_PORT  ?= 7101
RUN_PG_PORT    ?= 5440
FUZZ_SECONDS   ?= 30
# benchmarks `make bench` runs (test/bench/NAME.bench.sh); empty: all
BENCH          ?=
# debug (assert-enabled; tests) or release (optimized; benchmarks, docker)
FLAVOUR        ?= debug
# the server make run builds and starts
RUN_FLAVOUR    ?= release

PG_BUILD = bash src/postgres/build.sh

.PHONY: all deps postgres storage extension run stop status \
	check check-unit check-sql check-cluster check-postgres check-sanitize lint soak fuzz bench clean

all: extension

deps:
	@bash src/tools/ensure-packages.sh

postgres: deps
	@$(PG_BUILD) $(FLAVOUR) >/dev/null

storage: deps
	@$(MAKE) -s -C storage_service

extension: postgres storage
	@prefix=$$($(PG_BUILD) $(FLAVOUR)) && \
	$(MAKE) -s -f src/extension.mk PG_CONFIG=$$prefix/bin/pg_config all install >/dev/null && \
	$(MAKE) -s -f src/compute_init/Makefile PG_CONFIG=$$prefix/bin/pg_config all install >/dev/null

# make run serves the optimized server; a clone the server user cannot reach
# runs from a copy it can (src/tools/server-tree.sh).
run:
	@$(MAKE) -s all FLAVOUR=$(RUN_FLAVOUR)
	@prefix=$$($(PG_BUILD) $(RUN_FLAVOUR)) && \
	tree=$$(bash src/tools/server-tree.sh tree) && \
	dir=$$(bash src/tools/server-tree.sh run-dir $(RUN_DIR)) && \
	bash $$tree/src/tools/cluster.sh init $$dir $$prefix $(RUN_NODE_PORT) $(RUN_PG_PORT) && \
	bash $$tree/src/tools/cluster.sh start $$dir $$prefix
	@echo
	@echo "aurora is running ($(RUN_FLAVOUR) server): six storage nodes (a1 a2 | b1 b2 | c1 c2) and a compute on port $(RUN_PG_PORT)."
	@echo "  . $(RUN_DIR)/env && psql -c 'SELECT * FROM aurora.storage_nodes'"
	@echo "  aurora-ctl --cluster $(RUN_DIR)/nodes status    (after sourcing the env file)"
	@echo "  make stop$(if $(filter $(CURDIR)/.run,$(RUN_DIR)),, RUN_DIR=$(RUN_DIR))    stops everything"

stop:
	@bash src/tools/cluster.sh stop $(RUN_DIR)

status:
	@bash src/tools/cluster.sh status $(RUN_DIR)

# Tests always run against the assert-enabled (debug) server.
check:
	@$(MAKE) -s all FLAVOUR=debug
	@bash test/check.sh

check-unit: storage
	@bash test/check.sh unit

check-sql:
	@$(MAKE) -s all FLAVOUR=debug
	@bash test/check.sh sql

check-cluster:
	@$(MAKE) -s all FLAVOUR=debug
	@bash test/check.sh cluster

check-sanitize: storage
	@bash test/check.sh sanitize

lint: deps
	@bash test/check.sh lint

check-postgres: deps
	@bash test/check.sh postgres

soak:
	@$(MAKE) -s all FLAVOUR=debug
	@bash test/check.sh soak

fuzz: deps
	@$(MAKE) -s -C storage_service fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)

# Benchmarks build what they need first; they take the machine for a few
# minutes (run them on a quiet one).
bench: storage
	@bash test/bench/run.sh $(BENCH)

clean:
	@$(MAKE) -s -C storage_service clean
	@rm -f src/*.o src/*.bc storage_service/common/*.o storage_service/common/*.bc aurora.so
	@rm -f src/compute_init/*.o src/compute_init/*.t src/compute_init/aurora-compute-init test/unit/tap.o
	@rm -f test/modules/*/*.o test/modules/*/*.so test/modules/*/*.bc
	@rm -rf results regression.diffs regression.out
