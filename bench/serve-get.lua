-- wrk script: GET the IMDS credentials with a token obtained once per thread.
-- Usage: wrk -s bench/serve-get.lua http://127.0.0.1:PORT
local token = nil
local role = "/latest/meta-data/iam/security-credentials/iamra-test-role"

request = function()
  if token == nil then
    return wrk.format("PUT", "/latest/api/token",
      { ["X-aws-ec2-metadata-token-ttl-seconds"] = "21600" })
  end
  return wrk.format("GET", role, { ["X-aws-ec2-metadata-token"] = token })
end

response = function(status, headers, body)
  if token == nil and status == 200 then
    token = body
  elseif status ~= 200 then
    error("unexpected status " .. status)
  end
end
