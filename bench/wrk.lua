-- One wrk script for every benchmark operation; bench/run.py sets the environment:
--   BENCH_OP       get | list | create | assess | mixed | guess | ceiling
--   BENCH_TARGET   rujukan | baseline | ceiling
--   BENCH_TOKENS   file of "AGENCY token" lines (Rujukan only)
--   BENCH_ROWS     file of "id from_agency to_agency" lines (get, assess, mixed), or of
--                  "client_id" lines (guess: wrong secrets for these ids, and unknown ids)
--   BENCH_NIK_BASE first number of this run's block of NIKs (create, mixed)
-- done() prints one line "BENCH_RESULT {json}" that bench/run.py reads.

local op = os.getenv("BENCH_OP")
local target = os.getenv("BENCH_TARGET")
local rujukan = target == "rujukan"
local agencies = { "KEMENSOS", "LPSK", "KEMENHAM" }
local units = {
  KEMENSOS = "SENTRA_HANDAYANI",
  LPSK = "LPSK_RUMAH_AMAN",
  KEMENHAM = "KEMENHAM_PELAYANAN_KOMUNIKASI_MASYARAKAT",
}

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local function split(line)
  local out = {}
  for word in line:gmatch("%S+") do out[#out + 1] = word end
  return out
end

local function read_lines(path)
  local out = {}
  if path then
    for line in io.lines(path) do
      if #line > 0 then out[#out + 1] = split(line) end
    end
  end
  return out
end

local function urlencode(text)
  return (text:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local tokens = {}
local token_turn = {}

local function bearer(agency)
  local list = tokens[agency]
  token_turn[agency] = (token_turn[agency] or 0) % #list + 1
  return "Bearer " .. list[token_turn[agency]]
end

local rows, next_row, stride, nik_number, cursors, list_agency
non2xx = 0

function init(args)
  for _, t in ipairs(read_lines(os.getenv("BENCH_TOKENS"))) do
    tokens[t[1]] = tokens[t[1]] or {}
    table.insert(tokens[t[1]], t[2])
  end
  rows = read_lines(os.getenv("BENCH_ROWS"))
  local threads_total = tonumber(os.getenv("BENCH_THREADS") or "1")
  -- Each thread walks its own share of the rows, so no two requests act on one referral.
  next_row = tid + 1
  stride = threads_total
  nik_number = tonumber(os.getenv("BENCH_NIK_BASE") or "0") + tid * 1000000
  cursors = {}
  list_agency = agencies[tid % 2 + 1]
  math.randomseed(os.time() + tid * 7919)
end

local function take_row()
  local row = rows[next_row]
  next_row = next_row + stride
  if next_row > #rows then next_row = tid + 1 end
  return row
end

local function get_request()
  local row = rows[math.random(#rows)]
  if not rujukan then return wrk.format("GET", "/referrals/" .. row[1]) end
  local agency = row[math.random(2) + 1]
  return wrk.format("GET", "/v1/referrals/" .. row[1], { Authorization = bearer(agency) })
end

local function list_request()
  local cursor = table.remove(cursors)
  local suffix = cursor and ("&cursor=" .. urlencode(cursor)) or ""
  if not rujukan then
    return wrk.format("GET", "/referrals?status=referred&limit=50&to_agency=" .. list_agency .. suffix)
  end
  return wrk.format(
    "GET", "/v1/referrals?direction=incoming&status=referred&limit=50" .. suffix,
    { Authorization = bearer(list_agency) }
  )
end

local function create_request()
  nik_number = nik_number + 1
  local n = nik_number
  local serial = n % 9999 + 1
  local district = math.floor(n / 9999) % 99 + 1
  local regency = math.floor(n / 9999 / 99) % 99 + 1
  local nik = string.format("31%02d%02d450890%04d", regency, district, serial)
  local from = agencies[n % 3 + 1]
  local to = agencies[(n + 1 + n % 2) % 3 + 1]
  local body = string.format([[{%s"to_agency":"%s","subject":{"full_name":"Siti Rahayu Binti Contoh","nik":"%s","birth_date":"1990-08-05","sex":"female","address":"Jl. Melati No. 5, RT 01/RW 02, Jakarta Pusat","region_code":"31.71.01","phone":"+62 812 0000 0000"},"protected_identity":%s,"groups":["KORBAN_KEKERASAN"],"kemenham_groups":[],"case_types":["TPPO"],"urgency":"urgent","summary":"Survivor of trafficking referred for social rehabilitation and psychosocial support; safe placement needed within the week.","consent":{"given":true,"obtained_at":"2026-11-20T09:00:00+07:00","method":"written","obtained_by":"Petugas","purposes":["REFERRAL","ASSESSMENT","SERVICE_DELIVERY"],"given_by":"subject"}}]],
    rujukan and "" or string.format([["from_agency":"%s",]], from),
    to, nik, (n % 3 == 0) and "true" or "false")
  if not rujukan then
    return wrk.format("POST", "/referrals", { ["Content-Type"] = "application/json" }, body)
  end
  return wrk.format("POST", "/v1/referrals", {
    Authorization = bearer(from),
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "bench-" .. n,
  }, body)
end

local function assess_request()
  local row = take_row()
  local body = string.format(
    [[{"needs":["REHABILITASI_SOSIAL","DUKUNGAN_PSIKOSOSIAL"],"approach":"residential","service_unit":"%s","notes":"Needs a safe residential placement near family."}]],
    units[row[3]])
  if not rujukan then
    return wrk.format("POST", "/referrals/" .. row[1] .. "/assess",
      { ["Content-Type"] = "application/json" }, body)
  end
  return wrk.format("POST", "/v1/referrals/" .. row[1] .. "/assess", {
    Authorization = bearer(row[3]),
    ["Content-Type"] = "application/json",
    ["If-Match"] = '"1"',
  }, body)
end

local guesses = 0

-- A stranger's token request: every other one names a real client id, the rest ids that
-- exist nowhere; the secret is always a guess. Each comes from another address (the proxy's
-- X-Forwarded-For), as from a large botnet, so that no failure limit stops it and every
-- secret is checked.
local function guess_request()
  guesses = guesses + 1
  local client_id
  if guesses % 2 == 0 and #rows > 0 then
    client_id = rows[guesses % #rows + 1][1]
  else
    client_id = string.format("lpsk-%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
  end
  local secret = string.format("%08x%08x%08x%08x", math.random(0, 0x7fffffff),
    math.random(0, 0x7fffffff), math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
  local address = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255),
    math.random(1, 254))
  return wrk.format("POST", "/oauth/token",
    { ["Content-Type"] = "application/x-www-form-urlencoded", ["X-Forwarded-For"] = address },
    "grant_type=client_credentials&client_id=" .. client_id .. "&client_secret=" .. secret)
end

local turn = 0

function request()
  if op == "get" then return get_request() end
  if op == "list" then return list_request() end
  if op == "create" then return create_request() end
  if op == "assess" then return assess_request() end
  if op == "guess" then return guess_request() end
  if op == "mixed" then
    turn = turn + 1
    if turn % 2 == 0 then return create_request() end
    return assess_request()
  end
  return wrk.format("GET", "/")
end

function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
  if op == "list" then
    local cursor = body:match('"next_cursor":%s*"([^"]+)"')
    if cursor then cursors[#cursors + 1] = cursor end
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + (thread:get("non2xx") or 0) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
      .. '"max_us":%d,"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, bad, e.connect + e.read + e.write + e.timeout))
end
