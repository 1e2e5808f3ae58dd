-- Append one outgoing event for a changed position to the partition's stream, trimming
-- entries older than the retention window. Written by the same script as the change.
local function emit(stream_key, min_id, ev_type, sku, location, view, cause)
  local fields = {'type', ev_type, 'sku', sku, 'location', location,
                  'on_hand', view.on_hand, 'held', view.held, 'committed', view.committed,
                  'safety_stock', view.safety, 'available', view.available}
  for k, v in pairs(cause) do
    fields[#fields + 1] = k
    fields[#fields + 1] = v
  end
  return rcall('XADD', stream_key, 'MINID', '~', min_id, '*', unpack(fields))
end
