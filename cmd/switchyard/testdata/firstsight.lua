-- Each request evaluates for a session seen for the first time.
local counter = 0
local thread_id = 0
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
function init(args)
  prefix = string.format("%d-%d-", os.time(), tid)
end
request = function()
  counter = counter + 1
  local body = '{"context":{"sessionId":"fs-' .. prefix .. counter .. '"}}'
  return wrk.format("POST", "/ofrep/v1/evaluate/flags/EXAM_MODE", {["Content-Type"] = "application/json"}, body)
end
