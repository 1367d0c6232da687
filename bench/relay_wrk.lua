-- wrk script: every request a new msgid and one of 2,000 customers signing up with "+1".
-- usage: wrk -t1 -c64 -d10s -s bench/relay_wrk.lua http://127.0.0.1:PORT/api/v1/relays/ID/messages
local counter = 0
local thread_id = 0
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
function init(args)
  tid = tid or 0
end
request = function()
  counter = counter + 1
  local body = string.format('{"sender_id":"c%d","sender_name":"c","text":"+1","msgid":"w%d-%d-%d"}',
    counter % 2000, tid, counter, math.random(1, 1000000000))
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. os.getenv("COPILOT_ADMIN_TOKEN")}, body)
end
