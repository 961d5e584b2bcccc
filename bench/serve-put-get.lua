-- wrk script: a token PUT, then a credentials GET, in turn on every connection
-- (what an SDK does on a cold start). The requests are built once, in init, so that
-- wrk spends its time sending them rather than in Lua; the GETs carry a token taken
-- before the run (tokens are stateless: any live one costs the server the same).
-- Usage: wrk -s bench/serve-put-get.lua URL -- TOKEN
local requests
local turn = 0

init = function(args)
  local role = "/latest/meta-data/iam/security-credentials/iamra-test-role"
  requests = {
    wrk.format("PUT", "/latest/api/token", { ["X-aws-ec2-metadata-token-ttl-seconds"] = "60" }),
    wrk.format("GET", role, { ["X-aws-ec2-metadata-token"] = args[1] }),
  }
end

request = function()
  turn = turn % 2 + 1
  return requests[turn]
end
