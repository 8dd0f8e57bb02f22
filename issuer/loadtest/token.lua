-- wrk script: posts the request bodies written by `loadtest -serve FILE`,
-- one per request, each used once (unique jti). Usage:
--   wrk -t2 -c32 -d5s -s issuer/loadtest/token.lua URL -- FILE [BASIC]
local bodies = {}
local n, i = 0, 0
local auth = nil

function init(args)
  for line in io.lines(args[1]) do
    n = n + 1
    bodies[n] = line
  end
  auth = args[2]
  -- each wrk thread takes its own slice of the bodies
  i = (tonumber(wrk.thread:get("id") or 0) or 0) * math.floor(n / 2)
end

function setup(thread)
  thread:set("id", setup_count or 0)
  setup_count = (setup_count or 0) + 1
end

function request()
  i = i + 1
  if i > n then i = 1 end
  local headers = {["Content-Type"] = "application/json"}
  if auth and auth ~= "" then headers["Authorization"] = auth end
  return wrk.format("POST", nil, headers, bodies[i])
end

local failures = 0
function response(status, headers, body)
  if status ~= 200 then failures = failures + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.2fms p99 %.2fms non-2xx %d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))
end
