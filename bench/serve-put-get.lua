-- wrk script: every other request is a token PUT, the next one a credentials GET
-- with the newest token (what an SDK does on a cold start).
-- Usage: wrk -s bench/serve-put-get.lua http://127.0.0.1:PORT
local token = nil
local put = true
local role = "/latest/meta-data/iam/security-credentials/iamra-test-role"

request = function()
  if put or token == nil then
    put = false
    return wrk.format("PUT", "/latest/api/token",
      { ["X-aws-ec2-metadata-token-ttl-seconds"] = "60" })
  end
  put = true
  return wrk.format("GET", role, { ["X-aws-ec2-metadata-token"] = token })
end

response = function(status, headers, body)
  if status ~= 200 then
    error("unexpected status " .. status)
  end
  if #body == 100 then
    token = body
  end
end
