-- wrk script: seed-style Send Events bodies (two events) spread over 10,000 customers.
-- Usage: wrk ... -s bench/events.lua URL -- APIKEY SECRETKEY
local api_key, secret_key

function init(args)
  api_key = args[1] or "none"
  secret_key = args[2] or "none"
  math.randomseed(os.time())
end

function request()
  local body = '{"customerId":"cust-' .. math.random(0, 9999) .. '","events":{'
    .. '"write_review":{"product_id":"1653503260","review":"5 Stars Product","rating":5},'
    .. '"place_order":{"order_id":"ORD-' .. math.random(1, 1000000000) .. '",'
    .. '"order_amount":150.75,"currency":"USD","payment_method":"Credit Card"}}}'
  local headers = {
    ["Content-Type"] = "application/json",
    ["apikey"] = api_key,
    ["secretkey"] = secret_key,
  }
  return wrk.format("POST", "/api/v4.0/integrations/events", headers, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,'
      .. '"timeout":%d,"p50_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, summary.duration, errors.status, errors.connect, errors.read,
    errors.write, errors.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
