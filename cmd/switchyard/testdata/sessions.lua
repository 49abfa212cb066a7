-- Each request creates a new session: POST /v1/sessions with a unique ID.
local counter = 0
local thread_id = 0
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
function init(args)
  math.randomseed(os.time() + tid)
  prefix = string.format("%d-%d-", os.time(), tid)
end
request = function()
  counter = counter + 1
  local body = '{"session_id":"surge-' .. prefix .. counter .. '"}'
  return wrk.format("POST", "/v1/sessions", {["Content-Type"] = "application/json"}, body)
end
