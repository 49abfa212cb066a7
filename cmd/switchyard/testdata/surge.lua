-- The exam-start surge through the per-client limit: each request makes a new
-- session for a student behind one of many addresses, sent as X-Forwarded-For
-- (start serve with --trusted-proxies 127.0.0.1 so it counts). Arguments after
-- "--": what each request does, "sessions" (POST /v1/sessions, the default) or
-- "firstsight" (an OFREP evaluation naming the new session), and how many
-- students share an address (1, the default: each its own; 2000: a school
-- behind one NAT). Addresses are 10.<thread>.x.y, 65,536 per thread.
local counter = 0
local thread_id = 0
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
function init(args)
  what = args[1] or "sessions"
  per_address = tonumber(args[2] or "1")
  prefix = string.format("%d-%d-", os.time(), tid)
end
request = function()
  counter = counter + 1
  local a = math.floor(counter / per_address) % 65536
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-Forwarded-For"] = string.format("10.%d.%d.%d", tid % 256, math.floor(a / 256), a % 256),
  }
  local id = "surge-" .. prefix .. counter
  if what == "firstsight" then
    return wrk.format("POST", "/ofrep/v1/evaluate/flags/EXAM_MODE", headers, '{"context":{"sessionId":"' .. id .. '"}}')
  end
  return wrk.format("POST", "/v1/sessions", headers, '{"session_id":"' .. id .. '"}')
end
-- Non-2xx answers are the 429s of POST /v1/sessions past a limit; an
-- evaluation is always 200, pinned or not.
function done(summary, latency, requests)
  io.write(string.format("requests: %d, non-2xx answers: %d\n", summary.requests, summary.errors.status))
end
