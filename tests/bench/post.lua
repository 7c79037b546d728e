-- wrk script for the ingest benchmark: POST one body, optionally with a header carrying the
-- endpoint's token or a precomputed signature, and a unique delivery id per request so a
-- provider-style dedupe never folds two requests into one row. Counts 2xx answers per
-- thread and prints one JSON line at the end for tests/bench/ingest.py to read.
local body = os.getenv("BENCH_BODY") or "{}"
local auth_header = os.getenv("BENCH_AUTH_HEADER")
local auth_value = os.getenv("BENCH_AUTH_VALUE")
local id_header = os.getenv("BENCH_ID_HEADER")
local run_id = os.getenv("BENCH_RUN_ID") or "run"

local threads = {}
counter = 0
ok = 0 -- globals: done() reads them with thread:get
other = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  other = 0
end

function request()
  counter = counter + 1
  local headers = { ["Content-Type"] = "application/json" }
  if auth_header then headers[auth_header] = auth_value end
  if id_header then headers[id_header] = string.format("%s-%d-%d", run_id, tid, counter) end
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local total_ok, total_other = 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_other = total_other + thread:get("other")
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "ok": %d, "other_status": %d, "duration_s": %.3f, "p50_ms": %.2f, "p90_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d}\n',
    summary.requests, total_ok, total_other, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    errors.connect, errors.read, errors.write, errors.timeout))
end
