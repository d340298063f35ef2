-- GET /incr with existing sessions: the cookie header values listed one per
-- line ("name=value") in the file named by $COOKIES. Each thread steps through
-- the whole list, one cookie per request, from its own starting offset.

local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  local path = os.getenv("COOKIES") or error("COOKIES is not set")
  cookies = {}
  for line in io.lines(path) do
    if line ~= "" then
      cookies[#cookies + 1] = line
    end
  end
  if #cookies == 0 then
    error("no cookies in " .. path)
  end
  -- Spread the threads' starting points over the list (golden-ratio steps).
  i = math.floor(#cookies * ((id * 0.6180339887) % 1))
end

function request()
  i = i % #cookies + 1
  return wrk.format("GET", "/incr", { Cookie = cookies[i] })
end
