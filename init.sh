#!/usr/bin/env bash
# Writes the configuration of N cluster nodes: NODE_1/.cfg … NODE_N/.cfg.
#
# Port scheme (node id i, 1 ≤ i ≤ 500), chosen so that no two ports of any two nodes collide and none
# collides with the services' defaults (bootstrap 45999, nameserver gRPC 45998, nameserver HTTP 9999):
#   control_port = 61000 + i     (61001 …)   control plane, ZeroMQ
#   data_port    = 63000 + i     (63001 …)   data plane, ZeroMQ
#   http_port    =  8000 + i     ( 8001 …)   chat web server, while the node is an input node
#   admin_port   =  9000 + i     ( 9001 …)   /status and /metrics, always
# Control and data ports must lie in 46000–65535; they are kept above 60999 because Linux hands out
# 32768–60999 as source ports of outgoing connections: a node's links to its neighbours could otherwise
# occupy the very port a node started later wants to listen on.
#
# Usage: ./init.sh N [DIR]   (DIR defaults to the current directory)
# Environment: HOST (default 127.0.0.1), BOOTSTRAP (default 127.0.0.1:45999),
#              NAMESERVER (default 127.0.0.1:45998), NAMESERVER_HTTP (default http://127.0.0.1:9999),
#              REPLICATION_FACTOR (default 3: voters the writer keeps, 1–7; DESIGN §4),
#              TLS=1 (HTTPS: see below; NAMESERVER_HTTP then defaults to https://127.0.0.1:9999),
#              NAMESERVERS=k (default 1): k nameservers on loopback, gRPC 45998, 45997, … and HTTP 9999,
#              9998, …; every node registers with each (scripts/cluster.sh runs them all).
# Existing data and logs are kept; configs of nodes above N are removed so `make run-nodes` starts N.
#
# Every config gets the same `cluster_key`, the secret that seals the frames nodes exchange (a node
# with another key is not heard) and signs session cookies, so a user signed in through one input node
# stays signed in on the others. It is generated once per DIR and kept in DIR/.cluster_key (mode 600):
# running init.sh again reuses it and keeps existing sessions valid. scripts/cluster.sh gives
# DIR/.cluster_key to the bootstrap and the nameserver (--cluster-key-file), which accept only
# registrations that prove the key. To rotate it, delete that file, re-run, and restart everything:
# this also ends every session.
#
# With TLS=1 the input nodes and the nameserver serve HTTPS. A local CA is made once per DIR in
# DIR/.tls (ca.pem to trust, ca-key.pem mode 600; reused on later runs, so a browser that trusts it
# keeps trusting the cluster), and every run issues fresh certificates for HOST, 127.0.0.1 and
# localhost: NODE_<i>/tls/{cert,key}.pem, named in the node's config as tls_cert and tls_key, and
# DIR/.tls/nameserver/{cert,key}.pem, which scripts/cluster.sh gives the nameserver. Certificates are
# issued by cluster-certs (built with `cargo build --release -p cluster-tls` when BIN has none).
# A run without TLS=1 removes DIR/.tls/nameserver, so the whole cluster is back on plain HTTP.
set -euo pipefail

readonly MAX_NODES=500

usage() {
    echo "usage: $0 N [DIR]   (1 ≤ N ≤ $MAX_NODES: writes NODE_1/.cfg … NODE_N/.cfg in DIR)" >&2
    exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
n=$1
dir=${2:-.}
[[ $n =~ ^[0-9]+$ ]] || usage
n=$((10#$n))
(( n >= 1 && n <= MAX_NODES )) || usage

host=${HOST:-127.0.0.1}
bootstrap=${BOOTSTRAP:-127.0.0.1:45999}
nameserver=${NAMESERVER:-127.0.0.1:45998}
tls=${TLS:-0}
if [[ $tls == 1 ]]; then
    nameserver_http=${NAMESERVER_HTTP:-https://127.0.0.1:9999}
else
    nameserver_http=${NAMESERVER_HTTP:-http://127.0.0.1:9999}
fi
nameservers=${NAMESERVERS:-1}
if [[ ! $nameservers =~ ^[1-9]$ ]]; then
    echo "$0: NAMESERVERS must be 1 to 9, not '$nameservers'" >&2
    exit 2
fi
# One value, or a TOML list when there are several nameservers (loopback, consecutive ports down).
nameserver_line="\"$nameserver\""
nameserver_http_line="\"$nameserver_http\""
if (( nameservers > 1 )); then
    scheme=${nameserver_http%%://*}
    grpc_list= http_list=
    for ((k = 0; k < nameservers; k++)); do
        grpc_list+="${grpc_list:+, }\"127.0.0.1:$((45998 - k))\""
        http_list+="${http_list:+, }\"$scheme://127.0.0.1:$((9999 - k))\""
    done
    nameserver_line="[$grpc_list]"
    nameserver_http_line="[$http_list]"
fi
replication_factor=${REPLICATION_FACTOR:-3}
if [[ ! $replication_factor =~ ^[1-7]$ ]]; then
    echo "$0: REPLICATION_FACTOR must be 1 to 7, not '$replication_factor'" >&2
    exit 2
fi

mkdir -p "$dir"

key_file="$dir/.cluster_key"
if [[ ! -s $key_file ]]; then
    # 32 random bytes as 64 hex digits; written under umask 077 so the file is created with mode 600.
    key=$(od -An -v -tx1 -N32 /dev/urandom | tr -d ' \n')
    (umask 077 && printf '%s\n' "$key" > "$key_file.tmp" && mv "$key_file.tmp" "$key_file")
    echo "generated the cluster key in $key_file"
fi
cluster_key=$(tr -d '[:space:]' < "$key_file")
if (( ${#cluster_key} < 32 )); then
    echo "$0: $key_file holds a key shorter than 32 characters; delete it to generate a new one" >&2
    exit 2
fi
if [[ ! $cluster_key =~ ^[A-Za-z0-9+/=_.-]+$ ]]; then
    echo "$0: $key_file may only hold letters, digits and + / = _ . -; delete it to generate a new one" >&2
    exit 2
fi

tls_dir="$dir/.tls"
tls_lines=
if [[ $tls == 1 ]]; then
    repo=$(cd "$(dirname "$0")" && pwd)
    certs=${BIN:-$repo/target/release}/cluster-certs
    if [[ ! -x $certs ]]; then
        echo "building cluster-certs (TLS=1) …"
        (cd "$repo" && cargo build --release --quiet -p cluster-tls --bin cluster-certs)
        certs=$repo/target/release/cluster-certs
    fi
    # The nameserver's host, from its URL: https://HOST:PORT/…
    nameserver_host=${nameserver_http#*://}
    nameserver_host=${nameserver_host%%/*}
    nameserver_host=${nameserver_host%:*}
    nameserver_host=${nameserver_host#[}
    nameserver_host=${nameserver_host%]}
    outs=()
    for ((i = 1; i <= n; i++)); do outs+=(--out "$dir/NODE_$i/tls"); done
    "$certs" --ca-dir "$tls_dir" --host "$host" --host 127.0.0.1 --host localhost "${outs[@]}"
    "$certs" --ca-dir "$tls_dir" --host "$nameserver_host" --host 127.0.0.1 --host localhost \
        --out "$tls_dir/nameserver" >/dev/null
    tls_lines=$'tls_cert = "tls/cert.pem"\ntls_key = "tls/key.pem"'
elif [[ -d $tls_dir/nameserver ]]; then
    rm -rf "$tls_dir/nameserver"
    echo "removed $tls_dir/nameserver: the nameserver serves plain HTTP again (TLS=1 brings HTTPS back)"
fi

for ((i = 1; i <= n; i++)); do
    node_dir="$dir/NODE_$i"
    mkdir -p "$node_dir"
    # The config holds the cluster key: readable by its owner only.
    rm -f "$node_dir/.cfg.tmp"
    (umask 077 && cat > "$node_dir/.cfg.tmp") <<CFG
# Node $i. Relative directories are resolved against this file's folder.
id = $i
host = "$host"
control_port = $((61000 + i))
data_port = $((63000 + i))
http_port = $((8000 + i))
admin_port = $((9000 + i))
bootstrap = "$bootstrap"
nameserver = $nameserver_line
nameserver_http = $nameserver_http_line
data_dir = "data"
log_dir = "logs"
cluster_key = "$cluster_key"
replication_factor = $replication_factor
$tls_lines
CFG
    mv "$node_dir/.cfg.tmp" "$node_dir/.cfg"
done

removed=0
for cfg in "$dir"/NODE_*/.cfg; do
    [[ -e $cfg ]] || continue
    id=${cfg%/.cfg}
    id=${id##*/NODE_}
    if [[ $id =~ ^[0-9]+$ ]] && (( 10#$id > n )); then
        rm -f "$cfg"
        removed=$((removed + 1))
    fi
done

echo "$nameservers" > "$dir/.nameservers"
echo "wrote $n node config(s) in $dir: NODE_1 … NODE_$n"
if [[ $tls == 1 ]]; then
    echo "HTTPS: the nodes and the nameserver use certificates of the CA in $tls_dir/ca.pem; trust it in your browser (or pass it to curl --cacert)"
fi
(( removed == 0 )) || echo "removed $removed config(s) of nodes above $n (their data and logs are kept)"
