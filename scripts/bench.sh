#!/usr/bin/env bash
# `make bench`: the comparisons of DESIGN §10 in one run, every raw figure and a Markdown summary written
# to a results directory. See docs/PERFORMANCE.md for what each number means.
#
#   0. Builds the release binaries once (cargo build --release --bins; with BIN elsewhere only this
#      tree's chat-bench and bench-summary: cargo build --release -p chat-bench --bins).
#   1. For each N in NODES (1, 4, 8, 16), one after the other: a fresh cluster in a temporary directory,
#      on ports of its own (a `make up` cluster can keep running), started with init.sh and
#      scripts/cluster.sh (those of SCRIPTS) and the binaries of BIN, until every node is ready under
#      one leader and the writer accepts writes (cluster.sh wait-ready) and the nameserver lists every
#      input node. After IDLE seconds: each node's /status and resident memory (VmRSS). Then RUNS
#      rounds of chat-bench `write`, `read` and `mixed` with CLIENTS clients and a moderate-load
#      `write` with MODERATE_CLIENTS clients, each WARMUP + DURATION seconds. The first run creates the
#      users; later runs reuse them and their sessions (chat-bench --users-file), so the login limit
#      (30 per minute per client address on each input node) is never hit. Every run also measures
#      the CPU time (user + system, /proc/<pid>/stat) of every cluster-node process of the cluster
#      (chat-bench --cpu nodes=…; the bootstrap and nameserver apart, --cpu services=…) over exactly
#      its measured window: chat-bench reads it when its warmup ends and again at its last answer.
#      On the single node (N=1, with HOT=1): the hot paths, RUNS rounds of wrk (CLIENTS connections,
#      WARMUP + DURATION seconds, bench/wrk/hot.lua) against the admin port's /status (the HTTP
#      ceiling), the newest 20 messages of a group and posting a message, each with the node's CPU
#      over it, and sqlite-ceiling (SQLite's own insert rates, WAL and synchronous=FULL, in the
#      cluster's directory: the write ceiling) → chat/n1/hot/.
#      After IDLE seconds more: VmRSS again; teardown.
#   2. control-bench (BIN's, which starts BIN's binaries) over SIZES, CONTROL_RUNS runs each:
#      election time and messages, heal after killing a leaf, an interior node and the leader,
#      writer failover.
#   3. bench-summary: medians (min–max), cluster ÷ single-node ratios, CPU ms per acknowledged write,
#      DESIGN §10 and scaling targets → summary.md.
#
# Knobs (environment), with their defaults (about 13 minutes on 2 cores, build excluded):
#   RUNS=3              chat-bench runs per workload and cluster size
#   DURATION=10         measured seconds per chat-bench run
#   WARMUP=2            unmeasured seconds before each run
#   CLIENTS=16          clients of the write, read and mixed runs
#   MODERATE_CLIENTS=4  clients of the moderate-load write run (the p99 target)
#   NODES=1,4,8,16      cluster sizes for chat-bench; keep 1, the single node the ratios divide by
#   WORKLOADS=write,read,mixed,moderate   the chat-bench runs of each round (none: no chat-bench runs)
#   HOT=1               0 skips the single node's hot paths (wrk against /status, reads and writes,
#                       and sqlite-ceiling; RUNS rounds of DURATION seconds each; needs wrk)
#   SIZES=4,8,16,32     cluster sizes for control-bench; SIZES=none skips it
#   CONTROL_RUNS=5      control-bench runs per size
#   IDLE=5              seconds a cluster idles before its memory is read
#   PORT_BASE=29900     bootstrap PORT_BASE+1, nameserver gRPC +2, HTTP +3; nodes: control 62000+i,
#                       data 64000+i, HTTP 28000+i, admin 28500+i (make up uses 45999/45998/9999 and
#                       61000+i, 63000+i, 8000+i, 9000+i)
#   BIN=target/release  the cluster's binaries (bootstrap, nameserver, cluster-node, control-bench);
#                       another directory, e.g. an older commit's target/release, benches those (A/B)
#                       and builds only this tree's chat-bench and bench-summary, which always come
#                       from target/release
#   SCRIPTS=<checkout>  the directory whose init.sh and scripts/cluster.sh write and run the nodes:
#                       this tree; with BIN elsewhere, BIN/../.. when it has both (the checkout that
#                       built BIN: an older cluster-node refuses config keys it does not know)
#   BUILD=1             0 skips the build (the binaries must exist); CARGO names cargo
#   OUT=target/bench/<UTC time>   results directory; target/bench/latest points at the last one
#   UPDATE_DOC=0        1 pastes summary.md into docs/PERFORMANCE.md, between its results markers
#
# A/B: BIN=/path/to/old/target/release BUILD=0 NODES=1,16 make bench, then the same without BIN.
#
# Results: knobs.env, machine.txt, chat/n<N>/{write,read,mixed,moderate}-<run>.json (chat-bench
# --json, with the CPU seconds of the node processes under cpu.nodes), chat/n1/hot/{status,read,write,
# sqlite}-<run>.json (wrk's summaries with node_cpu_seconds, sqlite-ceiling's), chat/n<N>/status/<id>.json,
# chat/n<N>/rss-{idle,after}.tsv, chat/n<N>/logs/ (each node's stderr.log), control.json and
# control.txt, failures.txt, summary.md.
#
# One `make bench` at a time (the ports are fixed). Ctrl-C stops the running tool and tears the cluster
# down. Requires curl, and wrk for the hot paths.
set -euo pipefail

die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }

# BIN and SCRIPTS as absolute paths (relative ones are taken from where the script was called).
absolute() { (cd "$2" 2>/dev/null && pwd) || die "$1=$2 is not a directory"; }
if [[ -n ${BIN:-} ]]; then BIN=$(absolute BIN "$BIN") || exit 1; fi
if [[ -n ${SCRIPTS:-} ]]; then SCRIPTS=$(absolute SCRIPTS "$SCRIPTS") || exit 1; fi

cd "$(dirname "$0")/.."
readonly ROOT=$PWD
# This tree's chat-bench and bench-summary, whatever BIN is.
readonly TOOLS=$ROOT/target/release
BIN=${BIN:-$TOOLS}
own_binaries=0
[[ $BIN == "$TOOLS" ]] && own_binaries=1
if [[ -z ${SCRIPTS:-} ]]; then
    if ((own_binaries)); then
        SCRIPTS=$ROOT
    elif [[ -x $BIN/../../init.sh && -x $BIN/../../scripts/cluster.sh ]]; then
        SCRIPTS=$(cd "$BIN/../.." && pwd)
    else
        SCRIPTS=$ROOT
        say "warning: $BIN/../.. has no init.sh and scripts/cluster.sh: using this tree's; set SCRIPTS to the checkout that built BIN if its nodes refuse the configs"
    fi
fi
[[ -x $SCRIPTS/init.sh && -x $SCRIPTS/scripts/cluster.sh ]] || die "SCRIPTS=$SCRIPTS has no executable init.sh and scripts/cluster.sh"
readonly SCRIPTS own_binaries

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CLIENTS=${CLIENTS:-16}
MODERATE_CLIENTS=${MODERATE_CLIENTS:-4}
NODES=${NODES:-1,4,8,16}
WORKLOADS=${WORKLOADS:-write,read,mixed,moderate}
HOT=${HOT:-1}
SIZES=${SIZES:-4,8,16,32}
CONTROL_RUNS=${CONTROL_RUNS:-5}
IDLE=${IDLE:-5}
PORT_BASE=${PORT_BASE:-29900}
BUILD=${BUILD:-1}
UPDATE_DOC=${UPDATE_DOC:-0}
OUT=${OUT:-target/bench/$(date -u +%Y%m%dT%H%M%SZ)}

readonly BOOTSTRAP_PORT=$((PORT_BASE + 1)) NAMESERVER_GRPC_PORT=$((PORT_BASE + 2)) NAMESERVER_HTTP_PORT=$((PORT_BASE + 3))
readonly CONTROL_BASE=62000 DATA_BASE=64000 HTTP_BASE=28000 ADMIN_BASE=28500
readonly NAMESERVER_URL=http://127.0.0.1:$NAMESERVER_HTTP_PORT

is_count() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= $2)); }
is_count "$RUNS" 1 || die "RUNS must be a whole number ≥ 1, not '$RUNS'"
is_count "$DURATION" 1 || die "DURATION must be whole seconds ≥ 1, not '$DURATION'"
is_count "$WARMUP" 0 || die "WARMUP must be whole seconds, not '$WARMUP'"
is_count "$CLIENTS" 1 || die "CLIENTS must be ≥ 1, not '$CLIENTS'"
is_count "$MODERATE_CLIENTS" 1 || die "MODERATE_CLIENTS must be ≥ 1, not '$MODERATE_CLIENTS'"
((MODERATE_CLIENTS <= CLIENTS)) || die "MODERATE_CLIENTS ($MODERATE_CLIENTS) must not exceed CLIENTS ($CLIENTS): the moderate run reuses the first users"
is_count "$CONTROL_RUNS" 1 || die "CONTROL_RUNS must be ≥ 1, not '$CONTROL_RUNS'"
is_count "$IDLE" 0 || die "IDLE must be whole seconds, not '$IDLE'"
is_count "$PORT_BASE" 1024 && ((PORT_BASE + 3 < 32768)) || die "PORT_BASE must be 1024–32764 (below the ephemeral ports), not '$PORT_BASE'"
[[ $WORKLOADS == none || $WORKLOADS =~ ^(write|read|mixed|moderate)(,(write|read|mixed|moderate))*$ ]] || die "WORKLOADS must be some of write,read,mixed,moderate (or none), not '$WORKLOADS'"
[[ $WORKLOADS != none ]] || WORKLOADS=
[[ $HOT == 0 || $HOT == 1 ]] || die "HOT must be 0 or 1, not '$HOT'"
[[ $NODES =~ ^[0-9]+(,[0-9]+)*$ ]] || die "NODES must be comma-separated sizes such as 1,4,8, not '$NODES'"
for n in ${NODES//,/ }; do ((n >= 1 && n <= 400)) || die "every size in NODES must be 1–400, not $n"; done
[[ $SIZES == none || $SIZES =~ ^[0-9]+(,[0-9]+)*$ ]] || die "SIZES must be comma-separated sizes such as 4,8,16 (or none), not '$SIZES'"
command -v curl >/dev/null || die "curl is required (apt-get install curl)"

started=$SECONDS
mkdir -p "$OUT/chat"
OUT=$(cd "$OUT" && pwd)
: >"$OUT/failures.txt"
failed() { echo "$*" >>"$OUT/failures.txt"; say "FAILED: $*"; }

# The running tool (chat-bench or control-bench), so an interrupt can stop it, and the cluster to tear
# down. Tools run in the background with `wait`, which a signal interrupts (a foreground child would
# make the trap wait for it).
child=
cluster_dir=
work=$(mktemp -d "${TMPDIR:-/tmp}/chat-bench.XXXXXX")

# run_child LOG WHAT COMMAND...: runs COMMAND with its stdout (WHAT=out) or stdout and stderr (WHAT=all)
# appended to LOG. (Redirecting the call instead would also send this script's own messages there.)
run_child() {
    local log=$1 what=$2
    shift 2
    if [[ $what == all ]]; then
        "$@" >>"$log" 2>&1 &
    else
        "$@" >>"$log" &
    fi
    child=$!
    local rc=0
    wait "$child" || rc=$?
    child=
    return "$rc"
}

cluster() { # cluster COMMAND...: scripts/cluster.sh in the current cluster's directory, on its ports
    BIN=$BIN BOOTSTRAP_ADDR=127.0.0.1:$BOOTSTRAP_PORT NAMESERVER_GRPC=127.0.0.1:$NAMESERVER_GRPC_PORT \
        NAMESERVER_HTTP=127.0.0.1:$NAMESERVER_HTTP_PORT WAIT_SECONDS=60 "$cluster_dir/scripts/cluster.sh" "$@"
}

# Pids of the processes cluster.sh started for the current cluster.
started_pids() {
    cat "$cluster_dir"/.pids/*.pid 2>/dev/null || true
}

# Whether PID still runs one of BIN's binaries (not a reused pid, not a shell before its exec).
runs_ours() {
    local command
    command=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
    [[ $command == "$BIN/"* ]]
}

# cpu_groups N: fills cpu_args with chat-bench's --cpu options: every cluster-node process of the
# current cluster (nodes, the figure per write) and the bootstrap and nameserver (services, apart).
# Only pids cluster.sh started that still run BIN's binaries count. Fails when fewer than N nodes run.
cpu_args=()
cpu_groups() {
    local n=$1 file pid nodes=() services=()
    for file in "$cluster_dir"/.pids/*.pid; do
        [[ -f $file ]] || continue
        pid=$(<"$file")
        [[ $pid =~ ^[0-9]+$ ]] && runs_ours "$pid" || continue
        case ${file##*/} in
            NODE_*) nodes+=("$pid") ;;
            *) services+=("$pid") ;;
        esac
    done
    local IFS=,
    cpu_args=(--cpu "nodes=${nodes[*]}" --cpu "services=${services[*]}")
    ((${#nodes[@]} == n))
}

# Waits (up to 10 s) until every process cluster.sh started runs its binary: cluster.sh recognises its
# processes by their command line, which a loaded machine may not have exec'd yet when it next looks.
wait_for_exec() {
    local pid deadline=$((SECONDS + 10))
    for pid in $(started_pids); do
        until runs_ours "$pid" || ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); do
            sleep 0.05
        done
    done
}

teardown() {
    [[ -n $cluster_dir ]] || return 0
    local results=$1 pids pid
    pids=$(started_pids)
    cluster down >/dev/null 2>&1 || say "tearing down $cluster_dir failed; see its .pids/"
    # Whatever cluster.sh did not stop (it only stops what it recognises) is SIGKILLed, by pid.
    for pid in $pids; do
        if kill -0 "$pid" 2>/dev/null && runs_ours "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if [[ -n $results ]]; then
        mkdir -p "$results/logs"
        for log in "$cluster_dir"/NODE_*/logs/stderr.log "$cluster_dir"/.logs/*.log; do
            [[ -f $log ]] || continue
            local name=${log#"$cluster_dir"/}
            cp "$log" "$results/logs/${name//\//_}"
        done
    fi
    cluster_dir=
}

on_exit() {
    teardown ""
    rm -rf "$work"
}

on_signal() {
    trap - INT TERM
    say "interrupted: stopping and tearing down"
    if [[ -n $child ]]; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    exit 130
}
trap on_exit EXIT
trap on_signal INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until the nameserver lists as many input nodes as there are nodes with an HTTP address.
wait_for_endpoints() {
    local n=$1 deadline=$((SECONDS + 30)) serving listed id
    while :; do
        serving=0
        for ((id = 1; id <= n; id++)); do
            if curl -fsS --max-time 1 "http://127.0.0.1:$((ADMIN_BASE + id))/status" 2>/dev/null | grep -q '"http":"http'; then
                serving=$((serving + 1))
            fi
        done
        listed=$(curl -fsS --max-time 1 "$NAMESERVER_URL/api/endpoints" 2>/dev/null | grep -o '"url"' | wc -l) || listed=0
        ((serving > 0 && serving == listed)) && return 0
        ((SECONDS < deadline)) || { say "the nameserver lists $listed input node(s), $serving serve HTTP"; return 1; }
        sleep 0.2
    done
}

# record_memory N FILE: "<id> <VmRSS kB>" of every node.
record_memory() {
    local n=$1 file=$2 id pid
    : >"$file"
    for ((id = 1; id <= n; id++)); do
        pid=$(cat "$cluster_dir/.pids/NODE_$id.pid" 2>/dev/null) || continue
        awk -v id="$id" '/^VmRSS:/ { print id, $2 }' "/proc/$pid/status" >>"$file" 2>/dev/null || true
    done
}

# start_cluster N: a fresh cluster of N nodes in a new temporary directory, ready and accepting writes.
start_cluster() {
    local n=$1 id cfg port
    cluster_dir=$work/n$n
    mkdir -p "$cluster_dir/scripts"
    # cluster.sh works in the directory above its own: a link to it from the cluster's folder makes it
    # keep pid files, logs and bootstrap state there.
    ln -s "$SCRIPTS/scripts/cluster.sh" "$cluster_dir/scripts/cluster.sh"
    HOST=127.0.0.1 BOOTSTRAP=127.0.0.1:$BOOTSTRAP_PORT NAMESERVER=127.0.0.1:$NAMESERVER_GRPC_PORT \
        NAMESERVER_HTTP=$NAMESERVER_URL "$SCRIPTS/init.sh" "$n" "$cluster_dir" >/dev/null
    for ((id = 1; id <= n; id++)); do
        cfg=$cluster_dir/NODE_$id/.cfg
        sed -i -E -e "s/^control_port = [0-9]+$/control_port = $((CONTROL_BASE + id))/" \
            -e "s/^data_port = [0-9]+$/data_port = $((DATA_BASE + id))/" \
            -e "s/^http_port = [0-9]+$/http_port = $((HTTP_BASE + id))/" \
            -e "s/^admin_port = [0-9]+$/admin_port = $((ADMIN_BASE + id))/" "$cfg"
        grep -q "^admin_port = $((ADMIN_BASE + id))$" "$cfg" || die "$cfg: could not move the node to the bench ports (has init.sh's format changed?)"
    done
    for port in "$BOOTSTRAP_PORT" "$NAMESERVER_GRPC_PORT" "$NAMESERVER_HTTP_PORT" \
        $(for ((id = 1; id <= n; id++)); do echo $((CONTROL_BASE + id)) $((DATA_BASE + id)) $((HTTP_BASE + id)) $((ADMIN_BASE + id)); done); do
        port_in_use "$port" && die "port $port is already in use (another make bench running?)"
    done
    cluster run-bootstrap >/dev/null
    cluster run-nameserver >/dev/null
    cluster run-nodes >/dev/null
    wait_for_exec
    cluster wait-ready >&2 && wait_for_endpoints "$n"
}

# last_result LOG PHASE: the figures of the row that matters in the last table chat-bench printed, and
# for a write run the node processes' CPU per successful write.
last_result() {
    local kind=write
    [[ $2 == read ]] && kind=read
    [[ $2 == mixed ]] && kind=total
    awk -v kind="$kind" '
        /^chat-bench run / { row = ""; cpu = "" }
        $1 == kind { row = sprintf("%s req/s, p50 %s ms, p99 %s ms, %s failed", $5, $6, $8, $4) }
        kind == "write" && $1 == "cpu" && $2 == "nodes:" && match($0, /[0-9.]+ ms per successful write/) {
            cpu = substr($0, RSTART, RLENGTH); sub(/ .*/, "", cpu); cpu = ", node CPU " cpu " ms per write"
        }
        END { printf "%s%s", row, cpu }' "$1"
}

# cpu_seconds PID: user + system CPU seconds of PID so far (all its threads).
cpu_seconds() {
    awk -v tick="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / tick }' "/proc/$1/stat"
}

# wrk_run OUT URL [METHOD COOKIE BODY]: one wrk run of DURATION seconds with CLIENTS connections (after
# WARMUP seconds of the same load, not recorded); its JSON summary (bench/wrk/hot.lua) plus the node's CPU
# seconds over the measured run, in OUT.
wrk_run() {
    local out=$1 url=$2 method=${3:-GET} cookie=${4:-} body=${5:-} pid before after summary
    local -a load=(env WRK_METHOD="$method" WRK_COOKIE="$cookie" WRK_BODY="$body" wrk -t 2 -c "$CLIENTS"
        -s "$ROOT/bench/wrk/hot.lua")
    if ((WARMUP > 0)); then
        run_child "$work/wrk-warmup.log" all "${load[@]}" -d "${WARMUP}s" "$url" || true
    fi
    pid=$(cat "$cluster_dir/.pids/NODE_1.pid")
    before=$(cpu_seconds "$pid")
    : >"$work/wrk.log"
    run_child "$work/wrk.log" all "${load[@]}" -d "${DURATION}s" "$url" || return 1
    after=$(cpu_seconds "$pid")
    summary=$(grep '^{"requests"' "$work/wrk.log" | tail -n 1)
    [[ -n $summary ]] || return 1
    printf '%s\n' "${summary%\}},\"node_cpu_seconds\":$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", a - b }')}" >"$out"
}

# hot_paths RESULTS: the single node's hot paths beside what the machine allows, in the same run
# (docs/PERFORMANCE.md, "Hot paths"): wrk against the admin port's /status (the HTTP ceiling), the
# newest 20 messages of a group (reads), posting a message (writes), and sqlite-ceiling's insert rates
# (the write ceiling), RUNS rounds of each.
hot_paths() {
    local results=$1/hot round cookie group http admin
    mkdir -p "$results"
    command -v wrk >/dev/null || { failed "hot paths: wrk is not installed (apt-get install wrk)"; return 0; }
    if [[ ! -s $cluster_dir/users.json ]]; then
        # No chat-bench run made the users yet (WORKLOADS=none): a short one does.
        run_child "$results/setup.log" all "$TOOLS/chat-bench" --nameserver "$NAMESERVER_URL" --workload read \
            --clients 1 --duration 1s --warmup 0s --users-file "$cluster_dir/users.json" --quiet \
            || { failed "hot paths: chat-bench could not set up a user and a group"; return 0; }
    fi
    cookie=$(sed -n 's/^ *"session": *"\([^"]*\)".*$/\1/p' "$cluster_dir/users.json" | head -n 1)
    group=$(awk '/"groups": \[/ { getline; gsub(/[ ",]/, ""); print; exit }' "$cluster_dir/users.json")
    [[ -n $cookie && -n $group ]] || { failed "hot paths: no session or group in users.json"; return 0; }
    http=http://127.0.0.1:$((HTTP_BASE + 1)) admin=http://127.0.0.1:$((ADMIN_BASE + 1))
    for ((round = 1; round <= RUNS; round++)); do
        wrk_run "$results/status-$round.json" "$admin/status" \
            || failed "hot paths: wrk /status run $round failed (see $work/wrk.log)"
        wrk_run "$results/read-$round.json" "$http/api/groups/$group/messages?limit=20" GET "$cookie" \
            || failed "hot paths: wrk read run $round failed"
        wrk_run "$results/write-$round.json" "$http/api/groups/$group/messages" POST "$cookie" \
            '{"content":"a message of about one hundred characters, posted by wrk again and again by the hot path benchmark"}' \
            || failed "hot paths: wrk write run $round failed"
        run_child "$work/sqlite.log" all "$TOOLS/sqlite-ceiling" "$cluster_dir" --seconds "$DURATION" \
            --json "$results/sqlite-$round.json" || failed "hot paths: sqlite-ceiling run $round failed"
        say "N=1 hot paths run $round/$RUNS: $(hot_line "$results" "$round")"
    done
}

# hot_line RESULTS ROUND: one line of the round's figures.
hot_line() {
    awk -v round="$2" '
        function rate(file,   line, requests, us) {
            if ((getline line < file) <= 0) return "-"
            close(file)
            match(line, /"requests":[0-9]+/); requests = substr(line, RSTART + 11, RLENGTH - 11)
            match(line, /"duration_us":[0-9]+/); us = substr(line, RSTART + 14, RLENGTH - 14)
            return sprintf("%.0f/s", requests / (us / 1e6))
        }
        BEGIN {
            dir = ARGV[1]; ARGV[1] = ""
            sqlite = "-"
            file = dir "/sqlite-" round ".json"
            while ((getline line < file) > 0) if (line ~ /"rows_per_sec"/) { sub(/.*: */, "", line); sub(/,.*/, "", line); sqlite = sprintf("%.0f rows/s", line) }
            printf "status %s, reads %s, writes %s, sqlite batched %s", rate(dir "/status-" round ".json"), rate(dir "/read-" round ".json"), rate(dir "/write-" round ".json"), sqlite
        }' "$1"
}

# bench_cluster N: every chat-bench run against a fresh cluster of N nodes.
bench_cluster() {
    local n=$1 results=$OUT/chat/n$1 round phase workload clients id
    mkdir -p "$results/status"
    say "N=$n: starting a cluster of $n node(s)"
    if ! start_cluster "$n"; then
        failed "N=$n: the cluster did not become ready (see chat/n$n/logs/)"
        teardown "$results"
        return 0
    fi
    sleep "$IDLE"
    for ((id = 1; id <= n; id++)); do
        curl -fsS --max-time 2 "http://127.0.0.1:$((ADMIN_BASE + id))/status" >"$results/status/$id.json" 2>/dev/null \
            || rm -f "$results/status/$id.json"
    done
    record_memory "$n" "$results/rss-idle.tsv"
    say "N=$n: idle VmRSS kB per node: $(awk '{ printf "%s%s", sep, $2; sep=" " }' "$results/rss-idle.tsv")"
    for ((round = 1; round <= RUNS; round++)); do
        for phase in ${WORKLOADS//,/ }; do
            workload=$phase clients=$CLIENTS
            [[ $phase == moderate ]] && workload=write clients=$MODERATE_CLIENTS
            cpu_groups "$n" || failed "N=$n $phase run $round: fewer than $n node processes run: $(printf '%s ' "${cpu_args[@]}")"
            if run_child "$results/chat-bench.log" all "$TOOLS/chat-bench" --nameserver "$NAMESERVER_URL" \
                --workload "$workload" --clients "$clients" --duration "${DURATION}s" --warmup "${WARMUP}s" \
                --users-file "$cluster_dir/users.json" --json "$results/$phase-$round.json" --quiet \
                "${cpu_args[@]}"; then
                say "N=$n $phase ($clients clients) run $round/$RUNS: $(last_result "$results/chat-bench.log" "$phase")"
            else
                failed "N=$n $phase run $round: chat-bench failed (see chat/n$n/chat-bench.log)"
            fi
        done
    done
    if ((n == 1 && HOT)); then
        hot_paths "$results"
    fi
    sleep "$IDLE"
    record_memory "$n" "$results/rss-after.tsv"
    teardown "$results"
}

cat >"$OUT/knobs.env" <<KNOBS
RUNS=$RUNS
DURATION=$DURATION
WARMUP=$WARMUP
CLIENTS=$CLIENTS
MODERATE_CLIENTS=$MODERATE_CLIENTS
NODES=$NODES
WORKLOADS=${WORKLOADS:-none}
HOT=$HOT
SIZES=$SIZES
CONTROL_RUNS=$CONTROL_RUNS
IDLE=$IDLE
KNOBS
if ((!own_binaries)); then
    printf 'BIN=%s\n' "$BIN" >>"$OUT/knobs.env"
fi
if [[ $SCRIPTS != "$ROOT" ]]; then
    printf 'SCRIPTS=%s\n' "$SCRIPTS" >>"$OUT/knobs.env"
fi

{
    echo "cpu:     $(lscpu 2>/dev/null | sed -nE 's/^Model name:[[:space:]]*//p' | head -n1), $(nproc) CPUs online"
    echo "memory:  $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel:  $(uname -sr)"
    echo "rustc:   $(rustc --version 2>/dev/null || echo unknown)"
    echo "commit:  $(GIT_OPTIONAL_LOCKS=0 git rev-parse --short HEAD 2>/dev/null || echo unknown)$(GIT_OPTIONAL_LOCKS=0 git diff --quiet HEAD 2>/dev/null || echo ' with local changes')"
    if ((!own_binaries)); then
        echo "cluster: binaries of $BIN, init.sh and cluster.sh of $SCRIPTS (commit $(GIT_OPTIONAL_LOCKS=0 git -C "$SCRIPTS" rev-parse --short HEAD 2>/dev/null || echo unknown)$(GIT_OPTIONAL_LOCKS=0 git -C "$SCRIPTS" diff --quiet HEAD 2>/dev/null || echo ' with local changes')); chat-bench of the commit above"
    fi
    echo "started: $(date -u +%Y-%m-%dT%H:%M:%SZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"

if [[ $BUILD != 0 ]]; then
    if ((own_binaries)); then
        say "building the release binaries"
        "${CARGO:-cargo}" build --release --bins
    else
        say "building chat-bench and bench-summary (the cluster's binaries are those of $BIN)"
        "${CARGO:-cargo}" build --release -p chat-bench --bins
    fi
fi
for tool in chat-bench bench-summary sqlite-ceiling; do
    [[ -x $TOOLS/$tool ]] || die "$TOOLS/$tool is missing (run with BUILD=1)"
done
for tool in bootstrap nameserver cluster-node; do
    [[ -x $BIN/$tool ]] || die "$BIN/$tool is missing ($( ((own_binaries)) && echo 'run with BUILD=1' || echo 'build that checkout with cargo build --release --bins'))"
done
if [[ $SIZES != none ]]; then
    [[ -x $BIN/control-bench ]] || die "$BIN/control-bench is missing (or set SIZES=none)"
fi
build_done=$SECONDS

for n in ${NODES//,/ }; do
    bench_cluster "$n"
done

if [[ $SIZES != none ]]; then
    say "control-bench: sizes $SIZES, $CONTROL_RUNS run(s) each"
    run_child "$OUT/control.txt" out "$BIN/control-bench" --sizes "$SIZES" --runs "$CONTROL_RUNS" \
        --json "$OUT/control.json" || failed "control-bench failed (see control.txt)"
    cat "$OUT/control.txt" >&2
fi

elapsed=$((SECONDS - build_done))
echo "ended:   $(date -u +%Y-%m-%dT%H:%M:%SZ), load average $(cut -d' ' -f1-3 /proc/loadavg); measuring took $((elapsed / 60)) min $((elapsed % 60)) s (build excluded)" \
    >>"$OUT/machine.txt"
if [[ $(dirname "$OUT") == "$ROOT/target/bench" ]]; then
    ln -sfn "$OUT" "$ROOT/target/bench/latest"
fi

echo
"$TOOLS/bench-summary" "${OUT#"$ROOT"/}"
echo
if [[ $UPDATE_DOC == 1 ]]; then
    # The results section of docs/PERFORMANCE.md lies between two marker comments.
    doc=docs/PERFORMANCE.md
    if grep -q '^<!-- results:begin -->$' "$doc" && grep -q '^<!-- results:end -->$' "$doc"; then
        awk -v summary="$OUT/summary.md" '
            $0 == "<!-- results:begin -->" { print; while ((getline line < summary) > 0) print line; skip = 1; next }
            $0 == "<!-- results:end -->" { skip = 0 }
            !skip' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
        say "replaced the results in $doc with $OUT/summary.md"
    else
        say "$doc has no <!-- results:begin --> / <!-- results:end --> markers: not updated"
    fi
fi
say "results in $OUT (summary.md is the table for docs/PERFORMANCE.md); took $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s"
[[ ! -s $OUT/failures.txt ]] || say "some steps failed: see $OUT/failures.txt"
