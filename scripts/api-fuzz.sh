#!/usr/bin/env bash
# Runs schemathesis against a live 3-node cluster with the API's own OpenAPI document
# (/api/openapi.json): every operation, signed in as a registered user, checked for no 5xx, answers
# that match their schema and headers, and documented status codes and content types.
#
# The cluster runs from a scratch folder (configs, data, logs) with the binaries of BIN
# (default target/debug, built by `make test`); it is stopped, and the folder removed, on exit.
# Environment: BIN, API_FUZZ_EXAMPLES (examples per operation, default 50), SCHEMATHESIS (the command,
# default `schemathesis`; `pip install schemathesis` provides it), KEEP=1 keeps the folder.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$repo/target/debug}
examples=${API_FUZZ_EXAMPLES:-50}
schemathesis=${SCHEMATHESIS:-schemathesis}
command -v "$schemathesis" >/dev/null || { echo "api-fuzz: $schemathesis is missing (pip install schemathesis)" >&2; exit 1; }
for binary in bootstrap nameserver cluster-node; do
    [[ -x $bin/$binary ]] || { echo "api-fuzz: $bin/$binary is missing (cargo build --workspace --bins)" >&2; exit 1; }
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/chat-api-fuzz.XXXXXX")
cleanup() {
    (cd "$scratch" && BIN=$bin scripts/cluster.sh down >/dev/null 2>&1) || true
    if [[ ${KEEP:-0} == 1 ]]; then echo "api-fuzz: kept $scratch"; else rm -rf "$scratch"; fi
}
trap cleanup EXIT
cp -r "$repo/scripts" "$repo/init.sh" "$scratch/"
cd "$scratch"
export BIN=$bin
./init.sh 3 >/dev/null
scripts/cluster.sh up 3 >/dev/null

input=$(curl -fsS http://127.0.0.1:9999/api/endpoints | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["url"])')
echo "api-fuzz: testing the API of $input"
json() { curl -fsS -X POST "$input$1" -H 'content-type: application/json' -H "Origin: $input" -c jar -d "$2"; }
tag=$(json /api/register '{"username":"fuzzer","password":"correct horse battery"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["tag"])')
json /api/login "{\"username\":\"fuzzer\",\"tag\":\"$tag\",\"password\":\"correct horse battery\"}" >/dev/null
cookie=$(awk '$6 == "chat_session" { print $7 }' jar)
[[ -n $cookie ]] || { echo "api-fuzz: no session cookie after login" >&2; exit 1; }

# /api/events is a stream that never ends (the event tests cover it). A signed session cannot be
# revoked by the server, so /api/logout does not end the cookie the other operations send.
"$schemathesis" run "$input/api/openapi.json" \
    --header "Cookie: chat_session=$cookie" --header "Origin: $input" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples "$examples" --exclude-path /api/events \
    --seed "${API_FUZZ_SEED:-$RANDOM}"
