import { script } from './client.js';

/**
 * The Lua scripts that are baton's whole protocol on Redis. Each runs atomically on the server and reads
 * time from the server's own clock (`TIME`), never a client's. A lock is one hash, `<prefix>lock:<key>`:
 *
 * - `owner`, `token`: the holding session and the acquisition's random token, compared by every script
 *   that changes the key, so a late release or renewal never touches a newer holder's key;
 * - `fence`, `value`: the acquisition's fence and published value (`value` absent when none was given);
 * - `exp`: server time (ms) until which the holder is trusted; renewals move it;
 * - `delay`: the holder's lock-delay (ms); the key's own TTL (`PEXPIRE`) is `exp + delay`, so a holder that
 *   stops renewing keeps the key unavailable for the lock-delay after `exp`, and then Redis deletes it;
 * - `until`: server time (ms) before which a release does not free the key (`lockAtLeastFor`);
 * - `rel`: set once released early: the key then only waits out `until` and Redis deletes it;
 * - `at`: server time (ms) of the grant, reported as the holder's `acquiredAt` (absent on keys written by
 *   versions before it: they report none).
 *
 * Fences come from `<prefix>fence`: each grant takes `max(counter + 1, server time in µs)`. The counter
 * only ever rises while it lives; if it is lost (a restart without persistence, a restore of an older
 * snapshot, a failover to a replica that missed writes), the next fence is still above every earlier one
 * as long as fewer than one fence per microsecond was issued on average and the server clock did not go
 * back. Fences stay below 2^53 until the year 2255.
 */

/**
 * Shared prelude. The shebang declares a script that may write (no `no-writes` flag), so a read-only replica
 * refuses every script, reads included (`READONLY`): baton never reads lock state from a replica. Then the
 * server's time in ms and µs, and number formatting without exponents.
 */
const NOW = `#!lua
local t = redis.call('TIME')
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(nowUs / 1000)
local function n(x) return string.format('%.0f', x) end
`;

/**
 * KEYS: lock, fence counter, session. ARGV: owner, token, ttl ms, lock-delay ms, lockAtLeastFor ms,
 * has value ('1' or '0'), value. Returns `{-1}` when the session key is gone, `{0}` when the key is taken
 * (or in its lock-delay or lockAtLeastFor), `{1, fence}` when granted (also for a retry of this very grant).
 */
export const ACQUIRE = `${NOW}
if redis.call('EXISTS', KEYS[3]) == 0 then return {-1} end
local cur = redis.call('HMGET', KEYS[1], 'token', 'fence')
if cur[1] then
  if cur[1] == ARGV[2] then return {1, cur[2]} end
  return {0}
end
local f = tonumber(redis.call('GET', KEYS[2]) or '0') + 1
if f < nowUs then f = nowUs end
redis.call('SET', KEYS[2], n(f))
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'token', ARGV[2], 'fence', n(f), 'exp', n(now + ttl),
  'delay', ARGV[4], 'until', n(now + tonumber(ARGV[5])), 'at', n(now))
if ARGV[6] == '1' then redis.call('HSET', KEYS[1], 'value', ARGV[7]) end
redis.call('PEXPIRE', KEYS[1], ttl + tonumber(ARGV[4]))
return {1, n(f)}
`;

/**
 * KEYS: session, then the session's lock keys. ARGV: ttl ms, then each lock's token. Extends the session
 * key and each lock still held by its token (not released, not past `exp`). Returns `{-1}` when the
 * session key is gone, else `{1, i...}` with the 1-based positions of the locks no longer held.
 */
export const RENEW = `${NOW}
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return {-1} end
local ttl = tonumber(ARGV[1])
local out = {1}
for i = 2, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'token', 'exp', 'delay', 'rel')
  if cur[1] == ARGV[i] and not cur[4] and tonumber(cur[2]) > now then
    redis.call('HSET', KEYS[i], 'exp', n(now + ttl))
    redis.call('PEXPIRE', KEYS[i], ttl + tonumber(cur[3]))
  else
    out[#out + 1] = i - 1
  end
end
return out
`;

/**
 * KEYS: lock. ARGV: token. Releases the lock if this acquisition still holds it: deleted at once, or, before
 * its `until`, kept (marked released) until then. Returns 1 when released, 0 when it was no longer held.
 */
export const RELEASE = `${NOW}
local cur = redis.call('HMGET', KEYS[1], 'token', 'exp', 'until', 'rel')
if cur[1] ~= ARGV[1] or cur[4] or tonumber(cur[2]) <= now then return 0 end
local untilMs = tonumber(cur[3])
if untilMs > now then
  redis.call('HSET', KEYS[1], 'rel', '1', 'exp', n(untilMs))
  redis.call('PEXPIRE', KEYS[1], untilMs - now)
else
  redis.call('DEL', KEYS[1])
end
return 1
`;

/** KEYS: lock. ARGV: token, value. Replaces the published value if still held; 1 when it was, else 0. */
export const PUBLISH = `${NOW}
local cur = redis.call('HMGET', KEYS[1], 'token', 'exp', 'rel')
if cur[1] ~= ARGV[1] or cur[3] or tonumber(cur[2]) <= now then return 0 end
redis.call('HSET', KEYS[1], 'value', ARGV[2])
return 1
`;

/**
 * KEYS: lock keys. Returns, for each key whose holder is still trusted (`exp` not passed), its position
 * (1-based), owner, fence, value (`false` when none), grant time (`false` on keys written before it was
 * stored) and the holder's remaining time (`exp` − now, ms), both on the server's clock.
 */
export const HOLDERS = `${NOW}
local out = {}
for i = 1, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'owner', 'fence', 'exp', 'value', 'at')
  if cur[1] and tonumber(cur[3]) > now then
    out[#out + 1] = {i, cur[1], cur[2], cur[4], cur[5], n(tonumber(cur[3]) - now)}
  end
end
return out
`;

/** KEYS: lock. Deletes it whoever holds it; 1 when a trusted holder held it, else 0. */
export const FORCE_RELEASE = `${NOW}
local exp = redis.call('HGET', KEYS[1], 'exp')
redis.call('DEL', KEYS[1])
if exp and tonumber(exp) > now then return 1 end
return 0
`;

/** Every script with its SHA1. */
export const SCRIPTS = {
  acquire: script(ACQUIRE),
  renew: script(RENEW),
  release: script(RELEASE),
  publish: script(PUBLISH),
  holders: script(HOLDERS),
  forceRelease: script(FORCE_RELEASE),
} as const;
