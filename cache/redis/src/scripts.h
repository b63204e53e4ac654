// The Lua scripts the tier runs (EVAL: Redis keeps each in its script cache,
// so a restarted Redis needs nothing loaded first).
//
// Keys of one cached key:  V = {prefix}:{cache}:{key}        the value
//                          L = {prefix}:{cache}#lock:{key}   the load lock
//                          G = {prefix}:{cache}#gen          bumped by pattern invalidations
//                          K = {prefix}:{cache}#gen:{key}    bumped by this key's invalidations
// A load's generation is "G:K" (missing counts as 0) when its lock was
// taken; its value is stored only if both are unchanged, so a value read
// before an invalidation never lands in Redis after it.

#pragma once

namespace poolscope::cache::detail {

// KEYS V L G K; ARGV token, lock ttl (ms), "1" to ignore a value in V (one
// that did not decode). Returns {1, value}, {2, generation} (the lock is
// ours) or {3, the lock's remaining ms}.
inline constexpr const char* kAcquireScript = R"lua(
if ARGV[3] ~= '1' then
  local v = redis.call('GET', KEYS[1])
  if v then return {1, v} end
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {2, (redis.call('GET', KEYS[3]) or '0') .. ':' .. (redis.call('GET', KEYS[4]) or '0')}
end
return {3, redis.call('PTTL', KEYS[2])}
)lua";

// KEYS V L G K; ARGV token, generation, value, ttl (ms; "0": none).
// Releases the lock if it is still ours, and then stores the value if no
// invalidation came in between. Returns 1 stored, 0 invalidated meanwhile,
// -1 the lock was no longer ours (it expired).
inline constexpr const char* kStoreScript = R"lua(
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[2])
local gen = (redis.call('GET', KEYS[3]) or '0') .. ':' .. (redis.call('GET', KEYS[4]) or '0')
if gen ~= ARGV[2] then return 0 end
if ARGV[4] == '0' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
)lua";

// KEYS L; ARGV token. Compare-and-delete: releases the lock only if ours.
inline constexpr const char* kReleaseScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

// KEYS V K; ARGV channel, message, generation ttl (ms). Invalidates one
// key: bumps its generation (kept long enough to outlive any lock), drops
// the value, tells every process.
inline constexpr const char* kInvalidateKeyScript = R"lua(
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('UNLINK', KEYS[1])
return redis.call('PUBLISH', ARGV[1], ARGV[2])
)lua";

}  // namespace poolscope::cache::detail
