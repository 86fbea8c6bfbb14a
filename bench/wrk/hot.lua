-- wrk script of `make bench`'s single-node hot paths (scripts/bench.sh): one request shape from the
-- environment, and a JSON summary on the last line of wrk's output.
--
--   WRK_METHOD   GET (default) or POST
--   WRK_COOKIE   the Cookie header (a saved chat-bench session), if any
--   WRK_BODY     the request body of a POST (sent as application/json)
--
-- Every request is the same: a read of one page, or the same message posted again (each post is a new
-- message; nothing deduplicates a message without a client_id). No response() callback: it would make
-- wrk hand every answer to Lua, and wrk shares the machine with the node it measures. Statuses of 400
-- and above are counted (non_2xx) but not told apart; the node's log says what failed.

wrk.method = os.getenv("WRK_METHOD") or "GET"
local cookie = os.getenv("WRK_COOKIE")
if cookie and cookie ~= "" then
    wrk.headers["Cookie"] = cookie
end
local body = os.getenv("WRK_BODY")
if body and body ~= "" then
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
    local errors = summary.errors
    io.write(string.format(
        '{"requests":%d,"duration_us":%d,"bytes":%d,"non_2xx":%d,' ..
        '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
        '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
        summary.requests, summary.duration, summary.bytes, errors.status,
        errors.connect, errors.read, errors.write, errors.timeout,
        latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
