-- wrk script for bench/load/run.sh: a mix of what herdd serves in a labeling
-- campaign, on every connection of every thread:
--
--   upload   POST /v1/runs/{run}/annotations   (LINES pairwise lines, ids unique per request)
--   answer   POST /v1/runs/{run}/annotation-requests/{id}:answer   (each pending id once)
--   runs     GET  /v1/runs?page_size=20
--   requests GET  /v1/runs/{run}/annotation-requests?page_size=50[&page_token=...]   (walks the pages)
--   metrics  GET  /metrics
--
-- Environment: HERD_RUN, HERD_TOKEN (an admin token), HERD_IDS (a file of
-- pending request ids, one a line), HERD_THREADS (wrk's -t), HERD_LINES
-- (lines per upload, default 10), HERD_SUMMARY (a file done() writes
-- key=value figures to).
--
-- wrk hands response() no request, and responses of a thread's connections
-- interleave, so a response is classified by its body (each kind answers
-- with a different top-level key). Counts are per thread, collected in
-- done() through the thread objects kept in setup().

local threads = {}
local nthreads = 0

function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end

local run, token, lines_per_upload
local ids = {}
local next_id = 1
local seq = 0   -- uploads made (their ids)
local slot = 0  -- requests made (their place in the mix)
local page_token = nil
-- The mix, one slot per request in turn: 30% uploads, 30% answers,
-- 15% run listings, 15% request listings, 10% metrics.
local mix = { "upload", "answer", "runs", "upload", "answer", "requests", "upload", "answer", "runs", "upload",
              "answer", "requests", "upload", "answer", "metrics", "upload", "answer", "runs", "requests", "metrics" }

-- Per-thread tallies (read by done()).
counts = { upload_ok = 0, lines_ok = 0, lines_dup = 0, answer_ok = 0, runs_ok = 0, requests_ok = 0,
           metrics_ok = 0, status_4xx = 0, status_5xx = 0, unclassified = 0, answers_exhausted = 0,
           upload_sent = 0, answer_sent = 0 }

function init(args)
  run = os.getenv("HERD_RUN")
  token = os.getenv("HERD_TOKEN")
  lines_per_upload = tonumber(os.getenv("HERD_LINES") or "10")
  local n = tonumber(os.getenv("HERD_THREADS") or "1")
  -- This thread's share of the pending ids: every n-th, from its index.
  local f = io.open(os.getenv("HERD_IDS"), "r")
  if f then
    local i = 0
    for line in f:lines() do
      if i % n == tid then table.insert(ids, line) end
      i = i + 1
    end
    f:close()
  end
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Host"] = "herd"
end

-- wrk.format takes the headers given in place of wrk.headers: add ours.
local function with_auth(h)
  for k, v in pairs(wrk.headers) do h[k] = v end
  return h
end

local function upload()
  seq = seq + 1
  local parts = {}
  for k = 1, lines_per_upload do
    local id = string.format("load-t%d-%d-%d", tid, seq, k)
    parts[k] = string.format(
      '{"id":"%s","prompt":"What is %d+%d?","chosen":"%d","rejected":"%d","strength":"better","annotator":"wrk"}',
      id, seq % 10, k % 10, seq % 10 + k % 10, seq % 10 + k % 10 + 1)
  end
  counts.upload_sent = counts.upload_sent + 1
  return wrk.format("POST", "/v1/runs/" .. run .. "/annotations",
                    with_auth({ ["Content-Type"] = "application/x-ndjson" }), table.concat(parts, "\n") .. "\n")
end

function request()
  slot = slot + 1
  local kind = mix[(slot % #mix) + 1]
  if kind == "answer" then
    if next_id > #ids then
      counts.answers_exhausted = counts.answers_exhausted + 1
      kind = "requests"
    else
      local id = ids[next_id]
      next_id = next_id + 1
      counts.answer_sent = counts.answer_sent + 1
      return wrk.format("POST", "/v1/runs/" .. run .. "/annotation-requests/" .. id .. ":answer",
                        with_auth({ ["Content-Type"] = "application/json" }),
                        '{"choice":"a","strength":"better","annotator":"wrk"}')
    end
  end
  if kind == "upload" then return upload() end
  if kind == "runs" then return wrk.format("GET", "/v1/runs?page_size=20") end
  if kind == "metrics" then return wrk.format("GET", "/metrics") end
  local path = "/v1/runs/" .. run .. "/annotation-requests?page_size=50"
  if page_token then path = path .. "&page_token=" .. page_token end
  return wrk.format("GET", path)
end

local function starts(body, prefix)
  return string.sub(body, 1, #prefix) == prefix
end

-- The first error answer of each class, for the report.
samples = {}

function response(status, headers, body)
  if status >= 400 then
    local class = status >= 500 and "status_5xx" or "status_4xx"
    counts[class] = counts[class] + 1
    if samples[class] == nil then samples[class] = status .. " " .. string.gsub(string.sub(body, 1, 300), "\n", " ") end
    return
  end
  if starts(body, '{"accepted":') then
    counts.upload_ok = counts.upload_ok + 1
    counts.lines_ok = counts.lines_ok + tonumber(string.match(body, '"accepted":(%d+)'))
    counts.lines_dup = counts.lines_dup + tonumber(string.match(body, '"duplicates":(%d+)') or "0")
  elseif starts(body, '{"annotation_request":') then
    counts.answer_ok = counts.answer_ok + 1
  elseif starts(body, '{"annotation_requests":') then
    counts.requests_ok = counts.requests_ok + 1
    -- Walk the listing: the next request asks for the next page (or the first again).
    page_token = string.match(body, '"next_page_token":"([^"]+)"')
  elseif starts(body, '{"next_page_token"') or starts(body, '{"runs":') then
    counts.runs_ok = counts.runs_ok + 1
  elseif starts(body, "# HELP") then
    counts.metrics_ok = counts.metrics_ok + 1
  else
    counts.unclassified = counts.unclassified + 1
  end
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for k, v in pairs(c) do total[k] = (total[k] or 0) + v end
  end
  local secs = summary.duration / 1e6
  local out = {
    requests = summary.requests,
    duration_s = string.format("%.1f", secs),
    rps = string.format("%.0f", summary.requests / secs),
    p50_ms = string.format("%.2f", latency:percentile(50) / 1000),
    p90_ms = string.format("%.2f", latency:percentile(90) / 1000),
    p99_ms = string.format("%.2f", latency:percentile(99) / 1000),
    max_ms = string.format("%.2f", latency.max / 1000),
    errors_connect = summary.errors.connect,
    errors_read = summary.errors.read,
    errors_write = summary.errors.write,
    errors_timeout = summary.errors.timeout,
    errors_status = summary.errors.status,
  }
  for k, v in pairs(total) do out[k] = v end
  for _, t in ipairs(threads) do
    for class, text in pairs(t:get("samples")) do out["sample_" .. class] = text end
  end
  local keys = {}
  for k in pairs(out) do table.insert(keys, k) end
  table.sort(keys)
  local f = io.open(os.getenv("HERD_SUMMARY") or "/dev/null", "w")
  io.write("-- mix.lua\n")
  for _, k in ipairs(keys) do
    io.write(string.format("  %-18s %s\n", k, tostring(out[k])))
    if f then f:write(k .. "=" .. tostring(out[k]) .. "\n") end
  end
  if f then f:close() end
end
