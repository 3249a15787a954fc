"""The Lua scripts of the Redis store: every change of a job is one script, so Redis runs it whole and alone.

Key layout (``P`` is the queue's prefix in braces, ``{oq}``: every key shares that hash tag, so a queue lives in one
Redis Cluster slot and its scripts may touch any of its keys):

======================== ====== ===================================================================================
key                      type   what
======================== ====== ===================================================================================
``P:seq``                string the last job id (``INCR``)
``P:job:<id>``           hash   the job's fields (timestamps in microseconds since the epoch, JSON for data/result)
``P:ids``                zset   the jobs without a state (imported so), scored by id; listing walks it with the
                                state sets (data of 0.2.0 and earlier holds every job here too: listing reads it alike)
``P:state:<state>``      zset   the jobs in a state, scored by id (counts, listing)
``P:ready``              zset   runnable pending jobs, scored ``priority * 10^15 + id`` (the claim order)
``P:ready:l:<label>``    zset   the same, for the jobs carrying that label (its name in lower case)
``P:ready:t:<type>``     zset   the same, for the jobs of that type
``P:delayed``            zset   pending jobs not runnable before their ``run_at``, scored by it
``P:leases``             zset   processing jobs, scored by lease expiry
``P:done:<state>``       zset   finished jobs of a state, scored by ``updated_at`` (purge)
``P:idem``               hash   idempotency key -> job id
``P:comments:<id>``      list   the job's comments, ``<comment id>:<created µs>:<body>``
``P:cseq``               string the last comment id
``P:settings``           hash   setting key -> JSON
``P:arrivals``           pubsub jobs that may have become runnable: ``{"o": origin, "j": [[id, run_at µs, [labels]]]}``
======================== ====== ===================================================================================

Every script takes the prefix as ``ARGV[1]`` and ``P:seq`` as ``KEYS[1]`` (it routes the call to the queue's slot on
a cluster); the other keys are derived from the prefix inside the script. The clock is Redis's ``TIME``.
"""

from __future__ import annotations

from octoqueue.states import TRANSITIONS, JobState

#: The allowed moves, written once in :data:`octoqueue.states.TRANSITIONS`, as a Lua table.
_ALLOWED = (
    "local ALLOWED = {"
    + ", ".join(
        f"{source.value} = {{" + ", ".join(f"{t.value} = true" for t in sorted(targets)) + "}"
        for source, targets in TRANSITIONS.items()
    )
    + "}\n"
)

#: Every state's name, as a Lua list (the sets ``P:state:<state>``).
_ALL_STATES = "local ALL_STATES = {" + ", ".join(f"'{state.value}'" for state in JobState) + "}\n"

_BASE = r"""
local P = ARGV[1]
-- "{prefix}@<microseconds>": a store made with its own clock (tests moving time) says what time it is.
local GIVEN_NOW = nil
local at = string.find(P, '}@', 1, true)
if at then GIVEN_NOW = tonumber(string.sub(P, at + 2)); P = string.sub(P, 1, at) end
local PRIO = 1000000000000000
local function s(x) return string.format('%.0f', x) end
local function now_us()
  if GIVEN_NOW then return GIVEN_NOW end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function jkey(id) return P .. ':job:' .. id end
local function fields(id)
  local flat = redis.call('HGETALL', jkey(id))
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  return h, flat
end
"""

#: Where a pending job goes: the claim order (``P:ready`` and its label / type sets), or ``P:delayed`` until its
#: ``run_at``. The create script needs only this part of :data:`_PLACING` (each function a script defines is made
#: anew on every call).
_PENDING = r"""
local function ready_keys(h)
  local keys = {P .. ':ready'}
  if h.labels and h.labels ~= '[]' then
    for _, label in ipairs(cjson.decode(h.labels)) do keys[#keys + 1] = P .. ':ready:l:' .. string.lower(label) end
  end
  if h.type then keys[#keys + 1] = P .. ':ready:t:' .. h.type end
  return keys
end
local function make_ready(id, h)
  local score = s(tonumber(h.priority) * PRIO + tonumber(id))
  for _, key in ipairs(ready_keys(h)) do redis.call('ZADD', key, score, id) end
end
local function place_pending(id, h, now)
  redis.call('ZADD', P .. ':state:pending', id, id)
  if h.run_at and tonumber(h.run_at) > now then
    redis.call('ZADD', P .. ':delayed', h.run_at, id)
  else
    make_ready(id, h)
  end
end
"""

_PLACING = (
    _PENDING
    + r"""
-- Take a job out of the indexes of its state / put it in those of its (new) state.
local function unplace(id, h)
  local st = h.state
  if not st then
    redis.call('ZREM', P .. ':ids', id)
    return
  end
  redis.call('ZREM', P .. ':state:' .. st, id)
  if st == 'pending' then
    redis.call('ZREM', P .. ':delayed', id)
    for _, key in ipairs(ready_keys(h)) do redis.call('ZREM', key, id) end
  elseif st == 'processing' then
    redis.call('ZREM', P .. ':leases', id)
  else
    redis.call('ZREM', P .. ':done:' .. st, id)
  end
end
local function place(id, h, now)
  local st = h.state
  if not st then
    redis.call('ZADD', P .. ':ids', id, id)  -- a job without a state is in no state's set
  elseif st == 'pending' then
    place_pending(id, h, now)
  elseif st == 'processing' then
    redis.call('ZADD', P .. ':state:' .. st, id, id)
    redis.call('ZADD', P .. ':leases', h.lease_expires_at or s(now), id)
  else
    redis.call('ZADD', P .. ':state:' .. st, id, id)
    redis.call('ZADD', P .. ':done:' .. st, h.updated_at, id)
  end
end
"""
)

_ARRIVALS = r"""
local arrivals = {}
-- Written as text, not cjson-encoded: the id and run_at are digits, labels the job's JSON list, the origin hex.
local function arrived(id, h)
  arrivals[#arrivals + 1] = '[' .. id .. ',' .. (h.run_at or 'false') .. ',' .. (h.labels or '[]') .. ']'
end
local function announce(origin)
  if #arrivals > 0 then
    redis.call('PUBLISH', P .. ':arrivals', '{"o":"' .. origin .. '","j":[' .. table.concat(arrivals, ',') .. ']}')
  end
end
"""

_COMMON = _BASE + _PLACING + _ARRIVALS

#: ARGV: prefix, origin, then 9 strings per job: title, data (JSON), labels (JSON), type, priority, run_at µs,
#: max_attempts, idempotency key, timeout ('' for none). Returns per job ``{'new', id, now}`` or
#: ``{'old', <the job's fields>}`` (its idempotency key was taken).
CREATE = (
    _BASE
    + _PENDING
    + _ARRIVALS
    + r"""
local now = now_us()
local stamp = s(now)
local out = {}
for i = 3, #ARGV, 9 do
  local key = ARGV[i + 7]
  local existing = false
  if key ~= '' then existing = redis.call('HGET', P .. ':idem', key) end
  if existing and redis.call('EXISTS', jkey(existing)) == 1 then
    local _, flat = fields(existing)
    out[#out + 1] = {'old', flat}
  else
    local id = redis.call('INCR', P .. ':seq')
    local labels, priority, run_at = ARGV[i + 2], ARGV[i + 4], ARGV[i + 5]
    local h = {labels = labels, priority = priority}
    local flat = {'id', s(id), 'title', ARGV[i], 'data', ARGV[i + 1], 'labels', labels, 'state', 'pending', 'open', '1',
                  'priority', priority, 'attempt', '0', 'attempt_base', '0', 'max_attempts', ARGV[i + 6],
                  'created_at', stamp, 'updated_at', stamp, 'comments', '0'}
    local n = #flat
    local kind, timeout = ARGV[i + 3], ARGV[i + 8]
    if kind ~= '' then h.type = kind; flat[n + 1] = 'type'; flat[n + 2] = kind; n = n + 2 end
    if run_at ~= '' then h.run_at = run_at; flat[n + 1] = 'run_at'; flat[n + 2] = run_at; n = n + 2 end
    if key ~= '' then flat[n + 1] = 'idempotency_key'; flat[n + 2] = key; n = n + 2 end
    if timeout ~= '' then flat[n + 1] = 'timeout'; flat[n + 2] = timeout end
    redis.call('HSET', jkey(id), unpack(flat))
    place_pending(id, h, now)
    if key ~= '' then redis.call('HSET', P .. ':idem', key, id) end
    arrived(id, h)
    out[#out + 1] = {'new', id, stamp}
  end
end
announce(ARGV[2])
return out
"""
)

_CLAIM_FUNCTION = r"""
-- claim(now, worker, lease µs, limit, labels (JSON list), types (JSON list or ''), ids (JSON list or ''), labels to
-- exclude (JSON list, lower-case), types to exclude (JSON list)): the claimed jobs' fields, in claim order.
local function claim(now, worker, lease, limit, labels, types_arg, ids_arg, unwanted_labels_arg, unwanted_types_arg)
limit = tonumber(limit)
lease = tonumber(lease)
labels = cjson.decode(labels)
for i, label in ipairs(labels) do labels[i] = string.lower(label) end  -- label names ignore case, as on GitHub
local types = false
if types_arg ~= '' then types = {}; for _, t in ipairs(cjson.decode(types_arg)) do types[t] = true end end
local unwanted_labels, unwanted_types = {}, {}
for _, label in ipairs(cjson.decode(unwanted_labels_arg)) do unwanted_labels[label] = true end
for _, t in ipairs(cjson.decode(unwanted_types_arg)) do unwanted_types[t] = true end
local excluding = next(unwanted_labels) ~= nil or next(unwanted_types) ~= nil
-- Delayed jobs whose time came join the claim order first.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. ':delayed', '-inf', s(now), 'LIMIT', 0, 1000)) do
  redis.call('ZREM', P .. ':delayed', id)
  make_ready(id, (fields(id)))
end
local function fits(id, skip_label)
  for i, label in ipairs(labels) do
    if i ~= skip_label and not redis.call('ZSCORE', P .. ':ready:l:' .. label, id) then return false end
  end
  if types then
    local t = redis.call('HGET', jkey(id), 'type')
    if not t or not types[t] then return false end
  end
  if excluding then
    local t = redis.call('HGET', jkey(id), 'type')
    if t and unwanted_types[t] then return false end
    if next(unwanted_labels) ~= nil then
      for _, label in ipairs(cjson.decode(redis.call('HGET', jkey(id), 'labels') or '[]')) do
        if unwanted_labels[string.lower(label)] then return false end
      end
    end
  end
  return true
end
local chosen = {}
if ids_arg ~= '' then
  local found = {}
  for _, id in ipairs(cjson.decode(ids_arg)) do
    id = s(id)
    local score = redis.call('ZSCORE', P .. ':ready', id)
    if score and fits(id, 0) then found[#found + 1] = {tonumber(score), id} end
  end
  table.sort(found, function(a, b) return a[1] < b[1] end)
  for i = 1, math.min(limit, #found) do chosen[i] = found[i][2] end
elseif #labels > 0 or types or excluding then
  -- Walk the first label's runnable jobs (or, without labels, each type's; without either, all) in claim order.
  local sources = {}
  if #labels > 0 then
    sources[1] = P .. ':ready:l:' .. labels[1]
  elseif types then
    for t, _ in pairs(types) do sources[#sources + 1] = P .. ':ready:t:' .. t end
  else
    sources[1] = P .. ':ready'
  end
  local found = {}
  for _, key in ipairs(sources) do
    local offset, got = 0, 0
    while got < limit do
      local page = redis.call('ZRANGE', key, offset, offset + 99, 'WITHSCORES')
      if #page == 0 then break end
      for i = 1, #page, 2 do
        if got < limit and fits(page[i], 1) then
          found[#found + 1] = {tonumber(page[i + 1]), page[i]}
          got = got + 1
        end
      end
      offset = offset + 100
    end
  end
  table.sort(found, function(a, b) return a[1] < b[1] end)
  for i = 1, math.min(limit, #found) do chosen[i] = found[i][2] end
else
  chosen = redis.call('ZRANGE', P .. ':ready', 0, limit - 1)
end
local out = {}
local until_us = s(now + lease)
for _, id in ipairs(chosen) do
  local h = fields(id)
  unplace(id, h)
  local attempt = redis.call('HINCRBY', jkey(id), 'attempt', 1)
  redis.call('HSET', jkey(id), 'state', 'processing', 'open', '1', 'worker', worker, 'lease_expires_at', until_us,
             'started_at', s(now), 'updated_at', s(now))
  redis.call('ZADD', P .. ':state:processing', id, id)
  redis.call('ZADD', P .. ':leases', until_us, id)
  local _, flat = fields(id)
  out[#out + 1] = flat
end
return out
end
"""

#: ARGV: prefix, worker, lease µs, limit, labels (JSON list), types (JSON list or ''), ids (JSON list or ''), labels
#: and types to exclude (JSON lists).
#: Returns the claimed jobs' fields, in claim order.
CLAIM = (
    _COMMON
    + _CLAIM_FUNCTION
    + "return claim(now_us(), ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9])\n"
)

_TRANSITION_FUNCTION = (
    _ALLOWED
    + r"""
-- transition(now, moves (JSON)): one reply per move (see TRANSITION).
local function transition(now, moves)
local out = {}
for _, move in ipairs(cjson.decode(moves)) do
  local id, expected, target, attempt, set, clear, lease_due = move[1], move[2], move[3], move[4], move[5], move[6],
    move[7]
  id = s(id)
  local h, flat = fields(id)
  if #flat == 0 then
    out[#out + 1] = {'missing'}
  else
    local ok = true
    if expected ~= '' then
      ok = false
      for _, st in ipairs(expected) do if st == h.state then ok = true end end
    end
    if attempt >= 0 and tonumber(h.attempt) ~= attempt then ok = false end
    if h.state then
      if not ALLOWED[h.state][target] then ok = false end
    elseif target ~= 'pending' and target ~= 'failed' and target ~= 'cancelled' then
      ok = false
    end
    if lease_due and not (h.state == 'processing' and tonumber(h.lease_expires_at or '0') <= now) then ok = false end
    if not ok then
      out[#out + 1] = {'refused', flat}
    else
      unplace(id, h)
      local was = h.state
      h.state = target
      h.open = (target == 'pending' or target == 'processing') and '1' or '0'
      h.updated_at = s(now)
      local cleared = {}
      if was == 'processing' and target ~= 'processing' then
        if set.worker == nil then h.worker = nil; cleared[#cleared + 1] = 'worker' end
        if set.lease_expires_at == nil then h.lease_expires_at = nil; cleared[#cleared + 1] = 'lease_expires_at' end
      end
      for _, f in ipairs(clear) do h[f] = nil; cleared[#cleared + 1] = f end
      for f, v in pairs(set) do h[f] = v end
      if #cleared > 0 then redis.call('HDEL', jkey(id), unpack(cleared)) end
      local write = {'state', h.state, 'open', h.open, 'updated_at', h.updated_at}
      for f, v in pairs(set) do write[#write + 1] = f; write[#write + 1] = v end
      redis.call('HSET', jkey(id), unpack(write))
      place(id, h, now)
      if target == 'pending' then arrived(id, h) end
      local _, after = fields(id)
      out[#out + 1] = {'ok', after}
    end
  end
end
return out
end
"""
)

#: ARGV: prefix, origin, moves (JSON list of [id, expected states or '', target, attempt or -1, {field: value},
#: [fields to clear], lease_due]). ``lease_due``: refuse unless the job's lease has expired by Redis's clock.
#: Returns per move ``{'ok', fields}``, ``{'refused', fields}`` (the caller finds out which rule refused it) or
#: ``{'missing'}``.
TRANSITION = (
    _COMMON + _TRANSITION_FUNCTION + "local out = transition(now_us(), ARGV[3])\nannounce(ARGV[2])\nreturn out\n"
)

#: ARGV: prefix, origin, moves (as TRANSITION's), then a claim's worker, lease µs, limit, labels, types, ids (as
#: CLAIM's): the moves, then the claim, on one clock reading. Returns ``{TRANSITION's replies, CLAIM's jobs}``.
TRANSITION_AND_CLAIM = (
    _COMMON
    + _TRANSITION_FUNCTION
    + _CLAIM_FUNCTION
    + r"""
local now = now_us()
local moved = transition(now, ARGV[3])
announce(ARGV[2])
return {moved, claim(now, ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11])}
"""
)

#: ARGV: prefix, limit. The fields of processing jobs whose lease has expired by Redis's clock, oldest lease first,
#: and that clock.
EXPIRED = (
    _COMMON
    + r"""
local now = now_us()
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. ':leases', '-inf', s(now), 'LIMIT', 0, tonumber(ARGV[2]))) do
  local _, flat = fields(id)
  out[#out + 1] = flat
end
return {s(now), out}
"""
)

#: ARGV: prefix, job id, body. Returns ``{comment id, created µs}``, or ``false`` when there is no such job.
COMMENT = (
    _COMMON
    + r"""
local id = ARGV[2]
if redis.call('EXISTS', jkey(id)) == 0 then return false end
local now = now_us()
local cid = redis.call('INCR', P .. ':cseq')
redis.call('RPUSH', P .. ':comments:' .. id, cid .. ':' .. s(now) .. ':' .. ARGV[3])
redis.call('HINCRBY', jkey(id), 'comments', 1)
return {cid, s(now)}
"""
)

#: ARGV: prefix, origin, the job's hash fields (a JSON object of strings, ``id`` included), its new comments (a JSON
#: list of ``<created µs>[,<quoted author>]:<body>`` tails). Writes the job as given, replacing one with its id (its
#: comments stay), appends the comments, keeps ``P:seq`` at or above the id. Returns the job's fields.
IMPORT = (
    _COMMON
    + r"""
local now = now_us()
local h = cjson.decode(ARGV[3])
local id = h.id
local old = fields(id)
unplace(id, old)
if old.idempotency_key and redis.call('HGET', P .. ':idem', old.idempotency_key) == id then
  redis.call('HDEL', P .. ':idem', old.idempotency_key)
end
redis.call('DEL', jkey(id))
for _, tail in ipairs(cjson.decode(ARGV[4])) do
  local cid = redis.call('INCR', P .. ':cseq')
  redis.call('RPUSH', P .. ':comments:' .. id, cid .. ':' .. tail)
end
h.comments = s(redis.call('LLEN', P .. ':comments:' .. id))
local flat = {}
for f, v in pairs(h) do flat[#flat + 1] = f; flat[#flat + 1] = v end
redis.call('HSET', jkey(id), unpack(flat))
place(id, h, now)
if h.idempotency_key then redis.call('HSET', P .. ':idem', h.idempotency_key, id) end
if tonumber(redis.call('GET', P .. ':seq') or '0') < tonumber(id) then redis.call('SET', P .. ':seq', id) end
if h.state == 'pending' then arrived(id, h) end
announce(ARGV[2])
local _, after = fields(id)
return after
"""
)

#: ARGV: prefix, states (JSON list or ''), labels (JSON list), open ('', '0', '1'), after id, limit. Walks the sets
#: of those states (or of every state, and ``P:ids``) together by id from ``after`` and returns up to ``limit + 1``
#: matching jobs' fields.
LIST = (
    _COMMON
    + _ALL_STATES
    + r"""
local states = false
local sources = {P .. ':ids'}
for _, st in ipairs(ALL_STATES) do sources[#sources + 1] = P .. ':state:' .. st end
if ARGV[2] ~= '' then
  states, sources = {}, {}
  for _, st in ipairs(cjson.decode(ARGV[2])) do
    if not states[st] then sources[#sources + 1] = P .. ':state:' .. st end
    states[st] = true
  end
end
local labels, open, after, limit = cjson.decode(ARGV[3]), ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
for i, label in ipairs(labels) do labels[i] = string.lower(label) end
local out = {}
local low = after
local BATCH = 200
while #out <= limit do
  -- The BATCH lowest ids above low of all sources together are among each source's BATCH lowest (a job may be in
  -- P:ids and a state's set both: data written before jobs with a state left P:ids).
  local seen, ids = {}, {}
  for _, source in ipairs(sources) do
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', source, '(' .. s(low), '+inf', 'LIMIT', 0, BATCH)) do
      if not seen[id] then seen[id] = true; ids[#ids + 1] = tonumber(id) end
    end
  end
  if #ids == 0 then break end
  table.sort(ids)
  local last = math.min(#ids, BATCH)
  for k = 1, last do
    if #out <= limit then
      local h, flat = fields(s(ids[k]))
      local ok = #flat > 0 and (not states or (h.state and states[h.state])) and (open == '' or h.open == open)
      if ok and #labels > 0 then
        local have = {}
        for _, label in ipairs(cjson.decode(h.labels or '[]')) do have[string.lower(label)] = true end
        for _, label in ipairs(labels) do if not have[label] then ok = false end end
      end
      if ok then out[#out + 1] = flat end
    end
  end
  low = ids[last]
end
return out
"""
)

#: ARGV: prefix, states (JSON list), older than µs, batch size. Deletes up to one batch of finished jobs per state
#: last updated before then (with their comments and idempotency keys); returns how many.
PURGE = (
    _COMMON
    + r"""
local removed = 0
for _, st in ipairs(cjson.decode(ARGV[2])) do
  local doomed = redis.call('ZRANGEBYSCORE', P .. ':done:' .. st, '-inf', '(' .. ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
  for _, id in ipairs(doomed) do
    local h = fields(id)
    unplace(id, h)
    if h.idempotency_key and redis.call('HGET', P .. ':idem', h.idempotency_key) == id then
      redis.call('HDEL', P .. ':idem', h.idempotency_key)
    end
    redis.call('DEL', jkey(id), P .. ':comments:' .. id)
    redis.call('ZREM', P .. ':ids', id)
    removed = removed + 1
  end
end
return removed
"""
)


#: KEYS: the settings hash. ARGV: field, whether it existed, its value when read, the new value ("" deletes). Writes
#: only when the field still holds what the caller read (compare-and-set); 1 when written, 0 when it changed.
SETTINGS_CAS = r"""
local now = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '1' then
  if now ~= ARGV[3] then return 0 end
elseif now then
  return 0
end
if ARGV[4] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[4]) end
return 1
"""
