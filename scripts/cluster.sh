#!/usr/bin/env bash
# Runs a local cluster in the background: the bootstrap, the nameserver and the nodes configured in
# NODE_*/.cfg. The Makefile targets call this script; it is safe to call any command twice.
#
#   scripts/cluster.sh run-bootstrap | run-nameserver | run-nodes | stop-nodes
#   scripts/cluster.sh start-node ID | kill-node ID
#   scripts/cluster.sh up [N] | down | wait-ready
#   scripts/cluster.sh backup [DIR] | restore FILE [force] | recover ID | remove-node ID [force]
#
# Pid files live in .pids/ (NAME.pid); the services log to .logs/, each node to NODE_<id>/logs/.
# Environment: BIN (default target/release), BOOTSTRAP_ADDR (127.0.0.1:45999),
# NAMESERVER_GRPC (127.0.0.1:45998), NAMESERVER_HTTP (127.0.0.1:9999), NAMESERVERS (how many nameservers;
# default: what init.sh wrote), WAIT_SECONDS (30), DEGREE (3: the
# bootstrap's k, neighbours per new node and live neighbours repair keeps),
# CLUSTER_KEY_FILE (.cluster_key, written by init.sh: the bootstrap and the nameserver accept only
# registrations that prove this key, which every node's config holds), TLS_DIR (.tls: when
# TLS_DIR/nameserver holds cert.pem and key.pem, as `TLS=1 ./init.sh` writes, the nameserver serves
# HTTPS with them).
set -euo pipefail

cd "$(dirname "$0")/.."
readonly BIN=${BIN:-target/release}
readonly BOOTSTRAP_ADDR=${BOOTSTRAP_ADDR:-127.0.0.1:45999}
readonly NAMESERVER_GRPC=${NAMESERVER_GRPC:-127.0.0.1:45998}
readonly NAMESERVER_HTTP=${NAMESERVER_HTTP:-127.0.0.1:9999}
readonly WAIT_SECONDS=${WAIT_SECONDS:-30}
readonly CLUSTER_KEY_FILE=${CLUSTER_KEY_FILE:-.cluster_key}
readonly TLS_DIR=${TLS_DIR:-.tls}
readonly PIDS=.pids LOGS=.logs

die() { echo "cluster: $*" >&2; exit 1; }

# The pid recorded for NAME if that process is still alive and still runs one of our binaries
# (a stale pid file whose number was reused by another program does not count).
live_pid() {
    local file="$PIDS/$1.pid" pid
    [[ -f $file ]] || return 1
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE '(bootstrap|nameserver|cluster-node)' || return 1
    echo "$pid"
}

need_binary() {
    [[ -x $BIN/$1 ]] || die "$BIN/$1 is missing: run 'make build' first"
}

# How many nameservers to run: NAMESERVERS, else what init.sh wrote (.nameservers), else 1. The first
# listens on NAMESERVER_GRPC and NAMESERVER_HTTP, the k-th (k ≥ 2) on 127.0.0.1:45998−(k−1) and
# 127.0.0.1:9999−(k−1), as init.sh writes them into the configs.
nameserver_count() {
    local count=${NAMESERVERS:-}
    [[ -n $count ]] || count=$(cat .nameservers 2>/dev/null || echo 1)
    [[ $count =~ ^[1-9]$ ]] || die "NAMESERVERS must be 1 to 9, not '$count'"
    echo "$count"
}
nameserver_name() { if (($1 == 1)); then echo nameserver; else echo "nameserver$1"; fi; }
nameserver_http() { if (($1 == 1)); then echo "$NAMESERVER_HTTP"; else echo "127.0.0.1:$((9999 - $1 + 1))"; fi; }
nameserver_grpc() { if (($1 == 1)); then echo "$NAMESERVER_GRPC"; else echo "127.0.0.1:$((45998 - $1 + 1))"; fi; }

# Whether the nameserver serves HTTPS: TLS=1 ./init.sh wrote it a certificate.
nameserver_tls() { [[ -f $TLS_DIR/nameserver/cert.pem && -f $TLS_DIR/nameserver/key.pem ]]; }
scheme() { if nameserver_tls; then echo https; else echo http; fi; }

need_cluster_key() {
    [[ -s $CLUSTER_KEY_FILE ]] || die "$CLUSTER_KEY_FILE is missing: run ./init.sh N first (it writes the cluster key)"
}

# start NAME LOGFILE COMMAND...: starts COMMAND in the background unless NAME already runs.
start() {
    local name=$1 log=$2 pid
    shift 2
    if pid=$(live_pid "$name"); then
        echo "$name already running (pid $pid)"
        return 0
    fi
    mkdir -p "$PIDS" "$(dirname "$log")"
    nohup "$@" >>"$log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDS/$name.pid"
    # Until the child has exec'd, its command line is this script's, and live_pid would call it
    # dead: wait (briefly) for the binary, so a wait-ready or down right after sees the process.
    for _ in $(seq 50); do
        live_pid "$name" >/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.02
    done
    echo "started $name (pid $pid, log $log)"
}

# stop NAME SIGNAL: signals NAME, waits up to 10 s for it to exit, then SIGKILLs it.
stop() {
    local name=$1 signal=$2 pid
    if pid=$(live_pid "$name"); then
        kill "-$signal" "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            echo "$name did not stop in 10 s: killed"
        else
            echo "stopped $name"
        fi
    fi
    rm -f "$PIDS/$name.pid"
}

node_ids() {
    local cfg id
    for cfg in NODE_*/.cfg; do
        [[ -e $cfg ]] || continue
        id=${cfg%/.cfg}
        echo "${id#NODE_}"
    done | sort -n
}

cfg_value() { # cfg_value ID KEY
    sed -nE "s/^$2[[:space:]]*=[[:space:]]*\"?([^\"]*)\"?[[:space:]]*$/\1/p" "NODE_$1/.cfg" | head -n1
}

valid_id() {
    [[ ${1:-} =~ ^[0-9]+$ ]] || die "give a node id: ID=n"
    [[ -f NODE_$1/.cfg ]] || die "NODE_$1/.cfg does not exist (run ./init.sh N)"
}

start_node() { # start_node ID [EXTRA ARGS...]
    valid_id "$1"
    need_binary cluster-node
    local id=$1
    shift
    start "NODE_$id" "NODE_$id/logs/stderr.log" "$BIN/cluster-node" "NODE_$id/.cfg" "$@"
}

any_node_running() {
    local id
    for id in $(node_ids); do
        live_pid "NODE_$id" >/dev/null && return 0
    done
    return 1
}

# Waits until node ID's admin port says it accepts writes (WAIT_SECONDS).
wait_accepting() {
    local id=$1 port deadline=$((SECONDS + WAIT_SECONDS))
    port=$(cfg_value "$id" admin_port)
    until status_of 127.0.0.1 "$port" | grep -q '"accepting_writes":true'; do
        live_pid "NODE_$id" >/dev/null || die "NODE_$id exited: see NODE_$id/logs/stderr.log"
        ((SECONDS < deadline)) || die "NODE_$id does not accept writes after ${WAIT_SECONDS}s"
        sleep 0.2
    done
}

status_of() { # status_of HOST PORT: prints the node's /status JSON, fails if it does not answer
    if command -v curl >/dev/null; then
        curl -fsS --max-time 1 "http://$1:$2/status" 2>/dev/null
    else
        (exec 3<>"/dev/tcp/$1/$2" && printf 'GET /status HTTP/1.0\r\nConnection: close\r\n\r\n' >&3 \
            && sed '1,/^\r$/d' <&3) 2>/dev/null
    fi
}

# Waits until every running node answers /status with "ready":true, all naming the same leader, and
# the writer accepts writes (its tree spans a majority of the registered nodes; see docs/FAILOVER.md).
wait_ready() {
    local deadline=$((SECONDS + WAIT_SECONDS)) started=$SECONDS id status pending leaders accepting
    while :; do
        pending=()
        leaders=()
        accepting=0
        for id in $(node_ids); do
            live_pid "NODE_$id" >/dev/null || continue
            status=$(status_of "$(cfg_value "$id" host)" "$(cfg_value "$id" admin_port)") || { pending+=("$id"); continue; }
            [[ $status == *'"ready":true'* ]] || { pending+=("$id"); continue; }
            [[ $status == *'"accepting_writes":true'* ]] && accepting=$((accepting + 1))
            leaders+=("$(sed -nE 's/.*"leader":([0-9]+).*/\1/p' <<<"$status")")
        done
        if ((${#pending[@]} == 0 && ${#leaders[@]} == 0)); then
            die "no node is running (see NODE_<id>/logs/stderr.log)"
        fi
        if ((${#pending[@]} == 0 && accepting == 1)) && [[ $(printf '%s\n' "${leaders[@]}" | sort -u | wc -l) == 1 ]]; then
            break
        fi
        if ((SECONDS >= deadline)); then
            if ((${#pending[@]} > 0)); then
                die "nodes ${pending[*]} not ready within ${WAIT_SECONDS}s (see NODE_<id>/logs/)"
            fi
            if [[ $(printf '%s\n' "${leaders[@]}" | sort -u | wc -l) != 1 ]]; then
                die "the nodes follow different leaders ($(printf '%s\n' "${leaders[@]}" | sort -un | xargs)): the neighbour graph of the running nodes is split"
            fi
            die "the writer does not accept writes within ${WAIT_SECONDS}s: fewer than a majority of the registered nodes run, or a node with newer data is unreachable (see NODE_<id>/logs/)"
        fi
        sleep 0.1
    done
    echo "every node is ready and the writer accepts writes; leader: node ${leaders[0]} (after $((SECONDS - started)) s)"
}

command=${1:-}
shift || true
case $command in
    run-bootstrap)
        need_binary bootstrap
        need_cluster_key
        mkdir -p .state
        start bootstrap "$LOGS/bootstrap.log" "$BIN/bootstrap" --listen "$BOOTSTRAP_ADDR" --state .state/bootstrap.json \
            --cluster-key-file "$CLUSTER_KEY_FILE" --degree "${DEGREE:-3}"
        ;;
    run-nameserver)
        need_binary nameserver
        need_cluster_key
        tls_flags=()
        if nameserver_tls; then
            tls_flags=(--tls-cert "$TLS_DIR/nameserver/cert.pem" --tls-key "$TLS_DIR/nameserver/key.pem")
        fi
        for ((k = 1; k <= $(nameserver_count); k++)); do
            start "$(nameserver_name "$k")" "$LOGS/$(nameserver_name "$k").log" "$BIN/nameserver" \
                --grpc "$(nameserver_grpc "$k")" --http "$(nameserver_http "$k")" \
                --bootstrap "$BOOTSTRAP_ADDR" --cluster-key-file "$CLUSTER_KEY_FILE" "${tls_flags[@]}"
        done
        ;;
    run-nodes)
        ids=$(node_ids)
        [[ -n $ids ]] || die "no NODE_*/.cfg found (run ./init.sh N)"
        for id in $ids; do start_node "$id"; done
        ;;
    start-node) start_node "${1:-}" ;;
    kill-node)
        valid_id "${1:-}"
        if pid=$(live_pid "NODE_$1"); then
            kill -KILL "$pid"
            echo "killed NODE_$1 (pid $pid)"
        else
            echo "NODE_$1 is not running"
        fi
        rm -f "$PIDS/NODE_$1.pid"
        ;;
    stop-nodes)
        for file in "$PIDS"/NODE_*.pid; do
            [[ -e $file ]] || continue
            name=${file##*/}
            stop "${name%.pid}" TERM
        done
        ;;
    wait-ready) wait_ready ;;
    backup)
        need_binary chat-admin
        first=$(node_ids | head -n1)
        [[ -n $first ]] || die "no NODE_*/.cfg found (run ./init.sh N)"
        "$BIN/chat-admin" --config "NODE_$first/.cfg" backup --out "${1:-backups}"
        ;;
    remove-node)
        need_binary chat-admin
        [[ ${1:-} =~ ^[0-9]+$ ]] || die "give the node to remove: ID=n"
        first=$(node_ids | head -n1)
        [[ -n $first ]] || die "no NODE_*/.cfg found (run ./init.sh N)"
        force=()
        [[ ${2:-} == force ]] && force=(--force)
        "$BIN/chat-admin" --config "NODE_$first/.cfg" remove-node "$1" "${force[@]}"
        ;;
    restore)
        file=${1:-}
        [[ -f $file ]] || die "give the backup to restore: FILE=backups/<time>-epoch<E>.sqlite"
        [[ -n $(node_ids) ]] || die "no NODE_*/.cfg found (run ./init.sh N first)"
        ! any_node_running || die "nodes are running: stop them first (make stop-nodes)"
        force=()
        [[ ${2:-} == force ]] && force=(--force)
        "$0" run-bootstrap
        "$0" run-nameserver
        for id in $(node_ids); do start_node "$id" --restore "$file" "${force[@]}"; done
        sleep 1
        refused=0
        for id in $(node_ids); do
            if ! live_pid "NODE_$id" >/dev/null; then
                echo "NODE_$id: $(tail -n1 "NODE_$id/logs/stderr.log")" >&2
                refused=1
            fi
        done
        ((refused == 0)) || die "the restore was refused (a node that holds data needs FORCE=1 to replace it)"
        wait_ready
        echo "restored $file on every node"
        ;;
    recover)
        valid_id "${1:-}"
        echo "stopping every node; NODE_$1 starts alone as the only voter (docs/OPERATIONS.md)"
        "$0" stop-nodes
        start_node "$1" --force-configuration
        wait_accepting "$1"
        echo "NODE_$1 accepts writes; starting the other nodes"
        "$0" run-nodes
        wait_ready
        ;;
    up)
        if [[ -z $(node_ids) ]]; then ./init.sh "${1:-4}"; fi
        "$0" run-bootstrap
        "$0" run-nameserver
        "$0" run-nodes
        wait_ready
        echo
        echo "The chat is at $(scheme)://$NAMESERVER_HTTP/"
        for ((k = 2; k <= $(nameserver_count); k++)); do
            echo "  (and through nameserver $k at $(scheme)://$(nameserver_http "$k")/)"
        done
        echo "The live cluster view is at $(scheme)://$NAMESERVER_HTTP/cluster"
        if [[ $(scheme) == https ]]; then
            echo "(HTTPS with certificates of the local CA $TLS_DIR/ca.pem: trust it in your browser, or curl --cacert $TLS_DIR/ca.pem)"
        fi
        ;;
    down)
        "$0" stop-nodes
        for file in "$PIDS"/nameserver*.pid; do
            [[ -e $file ]] || continue
            name=${file##*/}
            stop "${name%.pid}" TERM
        done
        stop bootstrap TERM
        ;;
    *)
        echo "usage: $0 run-bootstrap|run-nameserver|run-nodes|stop-nodes|start-node ID|kill-node ID|up [N]|down|wait-ready|backup [DIR]|restore FILE [force]|recover ID|remove-node ID [force]" >&2
        exit 2
        ;;
esac
