# Build, run and test the chat cluster. `make up` starts everything in the background; `make down` stops it.
# Everything that runs is driven by scripts/cluster.sh (pid files in .pids/, logs in .logs/ and NODE_*/logs/).

N ?= 4
CARGO ?= cargo
CLUSTER := scripts/cluster.sh

.PHONY: build run-bootstrap run-nameserver run-nodes stop-nodes kill-node start-node up down test bench clean-state

## build: release binaries (bootstrap, nameserver, cluster-node) in target/release
build:
	$(CARGO) build --release --bins

## run-bootstrap: start the bootstrap service in the background
run-bootstrap:
	$(CLUSTER) run-bootstrap

## run-nameserver: start the nameserver in the background (its /cluster page draws the live cluster)
run-nameserver:
	$(CLUSTER) run-nameserver

## run-nodes: start every node that has a NODE_<id>/.cfg
run-nodes:
	$(CLUSTER) run-nodes

## stop-nodes: SIGTERM every node, SIGKILL after 10 s
stop-nodes:
	$(CLUSTER) stop-nodes

## kill-node ID=n: SIGKILL one node
kill-node:
	$(CLUSTER) kill-node $(ID)

## start-node ID=n: start one node (again)
start-node:
	$(CLUSTER) start-node $(ID)

## up [N=4] [NAMESERVERS=1]: build, write N configs if none exist (with NAMESERVERS nameservers), start
##   everything, wait for every node, print the URLs
up: build
	$(CLUSTER) up $(N)

## down: stop the nodes, the nameserver and the bootstrap
down:
	$(CLUSTER) down

## backup [OUT=backups]: a consistent backup from the writer into OUT/<time>-epoch<E>.sqlite, checked,
##   with its content hash printed (chat-admin backup)
.PHONY: backup restore recover remove-node
OUT ?= backups
backup:
	$(CLUSTER) backup $(OUT)

## restore FILE=… [FORCE=1]: start every configured node from the backup FILE (nodes must be stopped;
##   a node that holds data is refused unless FORCE=1)
FORCE ?=
restore:
	$(CLUSTER) restore "$(FILE)" $(if $(FORCE),force,)

## remove-node ID=n [FORCE=1]: take node n out of the cluster for good (out of the voters, a replacement
##   added first; forgotten by the bootstrap); refused while n is alive unless FORCE=1
remove-node:
	$(CLUSTER) remove-node $(ID) $(if $(FORCE),force,)

## recover ID=n: after losing a majority of the voters for good, restart node n (the freshest survivor)
##   as the only voter, then the other nodes (docs/OPERATIONS.md says what can be lost)
recover:
	$(CLUSTER) recover $(ID)

## test: formatting, lints and the whole test suite
test:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) build --workspace --bins
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi

## api-fuzz [API_FUZZ_EXAMPLES=50]: schemathesis against a live 3-node cluster with the API's OpenAPI
##   document (no 5xx, answers and headers match the schema, documented statuses); needs
##   `pip install schemathesis` and the debug binaries (make test builds them); see scripts/api-fuzz.sh
.PHONY: api-fuzz
api-fuzz:
	scripts/api-fuzz.sh

## fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="control_frame data_frame seal_open http_api"] [FUZZ_TARGET_DIR=dir]: run
##   each fuzz target (cargo-fuzz, libFuzzer) for FUZZ_SECONDS; fails if any finds a crash (its input in
##   fuzz/artifacts/); see scripts/fuzz.sh
.PHONY: fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= control_frame data_frame seal_open http_api
FUZZ_TARGET_DIR ?=
fuzz:
	CARGO="$(CARGO)" FUZZ_SECONDS="$(FUZZ_SECONDS)" FUZZ_TARGETS="$(FUZZ_TARGETS)" FUZZ_TARGET_DIR="$(FUZZ_TARGET_DIR)" \
		scripts/fuzz.sh

## bench [RUNS=3 DURATION=10 CLIENTS=16 NODES=1,4,8,16 SIZES=4,8,16,32 BIN=dir ...]: build, load 1-, 4-, 8- and
##   16-node clusters with chat-bench (req/s, p50/p99, CPU of all nodes per acknowledged write), run control-bench,
##   write target/bench/<time>/ with summary.md (knobs: scripts/bench.sh, docs/PERFORMANCE.md); about 13 minutes
##   on 2 cores; its clusters use their own ports, beside make up. A/B: BIN=<old checkout>/target/release BUILD=0
##   benches that commit's binaries with its init.sh and cluster.sh
bench:
	CARGO="$(CARGO)" scripts/bench.sh

## soak [MINUTES=10] [SEED=n] [SKIP=a,b]: random failover scenarios on one 5-node cluster, every step checked
.PHONY: soak
MINUTES ?= 10
SEED ?=
SKIP ?=
soak:
	$(CARGO) build --bins
	$(CARGO) run -p system-tests --bin soak -- --minutes $(MINUTES) $(if $(SEED),--seed $(SEED)) $(if $(SKIP),--skip $(SKIP))

## clean-state: remove node configs, data, logs, pid files and the bootstrap state (after make down)
clean-state:
	rm -rf NODE_* .pids .logs .state
