/* redis.c - the redis backend: several routers and pools in other
 * processes (and machines) share one directory in one redis server.
 *
 * Atomicity: every assignment and state change is one Lua script (EVALSHA;
 * EVAL when the server answers NOSCRIPT, e.g. after SCRIPT FLUSH), so two
 * routers racing for the last idle instance cannot both get it.
 *
 * Time: deadlines (reservation timeout, session TTL) are absolute
 * milliseconds of the redis server's TIME, kept in one sorted set; every
 * directory process runs the sweep script each tick, which moves what is
 * due (reserved -> idle, active -> draining). Plain key TTLs cannot do
 * this: an expiring key cannot change another key's state or tell a pool.
 * Using the server's clock keeps machines with skewed clocks consistent.
 *
 * Changes the directory makes by itself (a reservation back to idle, an
 * expired session, a drain from `airlock ctl` in any process) are appended
 * to a per-pool event list; the process that watches the pool pops it each
 * tick (polling, DIR_REDIS_TICK_MS). A list rather than pub/sub: events
 * made while the pool's process was away are not lost (the list is capped).
 * Pub/sub is the doorbell only: each event and each instance that becomes
 * idle is also PUBLISHed (P bell:NODE, P bell), and every process keeps a
 * second connection SUBSCRIBEd to both on its loop, so that a pool hears a
 * reservation at once, not up to a tick later (a login waits for it), and
 * a waiting assign retries at once. A ring carries nothing: the list stays
 * the truth, and without the doorbell (an ACL without the channels, a lost
 * connection) the tick still picks everything up.
 *
 * Blocking: hiredis's synchronous API on the directory's own thread, with
 * connect and command timeouts (REDIS_TIMEOUT_MS); no other loop ever
 * waits on redis. When redis is unreachable, requests fail at once (an
 * assign with -ENOTCONN, which the directory holds and asks again when it
 * is back, within assign_wait; the others with -EIO), and the connection
 * is retried with a doubling backoff. Reports made during an outage are
 * kept and sent on reconnecting (struct owned).
 *
 * Keys (P is the prefix): P pools (set of pool names), P pool:POOL (set of
 * instance names), P i:POOL:NAME (hash: ep, state, key, since), P k:POOL:KEY
 * (the key's instance), P idle:POOL (set), P dl (sorted set of deadlines,
 * members POOL:NAME), P ev:POOL (list of events; P ev:POOL:NODE for the
 * instances of a process with a node name, so that each machine's pool
 * hears only of its own instances), P alive:NODE (set by the node's sweep,
 * expiring: an idle instance of a node without it is not handed out),
 * P run:POOL (the token of the process without a node name that runs POOL,
 * set by its sweep, expiring),
 * P rid (the last reservation or holder id), P pend:POOL and P c:POOL:CLIENT
 * (sets of the instances reserved, and reserved by one client address: the
 * bounds on reservations not active yet; members that are no longer
 * reserved are dropped when the set is counted, and a client's set expires
 * reserve_timeout after its last reservation). The hash of a reserved instance also has src (the
 * client key) and rid; P hd:POOL:NAME (hash) maps the id of each dir_assign_held() connection that
 * holds it to "TOKEN CLIENT" (its process's token, its client address), dropped when the instance
 * leaves reserved (and expiring); P out:TOKEN (list, expiring) the ids of a process's holders whose
 * place a newcomer took, popped by its sweep; P epoch (random, names the data: another one
 * than a process saw means redis lost it) and P recovering (expiring: keys it does not know
 * wait for their nodes to report again, lua_epoch). Pool names hold no ':'. One redis server,
 * not a cluster (the scripts compute key names).
 *
 * Production (docs/directory.md): AUTH (a password from a file, an ACL
 * user) is the first command on every connection. With sentinels, every
 * (re)connect asks them for the master and checks ROLE; any error, a
 * READONLY answer (the server was demoted) or, asked every second, the
 * sentinels naming another master drops the connection, so the next
 * request asks them again: a failover is followed within the backoff.
 * Redis replicates asynchronously: a write the old master acknowledged can
 * be lost with it, so with min_replicas_acked an assignment or activation
 * is answered only after WAIT saw it on that many replicas (else -EIO: not
 * acknowledged). */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "core/backoff.h"
#include "core/file.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/units.h"
#include "dir/backend.h"
#include "net/endpoint.h"
#include "net/sockdiag.h"

#define DIR_REDIS_TICK_MS 100
/* a node's idle instances are handed out while its sweep (every tick) was
 * seen this recently */
#define NODE_ALIVE_MS "2000"
#define REDIS_TIMEOUT_MS 1000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* a directory that lost its data waits this long for the nodes to report
 * their sessions again: each one that was connected is back within a
 * backoff, a connect and a command; twice that (lua_epoch) */
#define RECOVER_MS (2 * (BACKOFF_MAX_MS + 2 * REDIS_TIMEOUT_MS))
#define COUNT_EVERY_TICKS 10 /* refresh this process's view of the counts */
#define EVENTS_PER_TICK 64
#define WATCHED_MAX 64
#define NAMES_ARGS (4 + WATCHED_MAX) /* names_argv()'s most */
#define BELL_RETRY_MS 10000 /* a doorbell refused: subscribe again after (lost: next tick) */
#define PASSWORD_MAX 512
/* WAIT's own timeout, below REDIS_TIMEOUT_MS so that hiredis hears its answer */
#define WAIT_TIMEOUT_MS 500

/* Shared by the scripts: the server's time in ms, the key helpers and the
 * event push. */
#define LUA_PRELUDE                                                                                \
    "local P = ARGV[1]\n"                                                                          \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                      \
    "local function ikey(pool, name) return P .. 'i:' .. pool .. ':' .. name end\n"                \
    "local function unkey(pool, name, key)\n"                                                      \
    "  if key and key ~= '' then\n"                                                                \
    "    local kk = P .. 'k:' .. pool .. ':' .. key\n"                                             \
    "    if redis.call('GET', kk) == name then redis.call('DEL', kk) end\n"                        \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    /* the holders of a reservation that is no longer one (P hd:POOL:NAME) */                      \
    "local function unhold(pool, name) redis.call('DEL', P .. 'hd:' .. pool .. ':' .. name) end\n" \
    /* an instance that is gone: its key (if it still names it) is free, and so is the */          \
    /* key of its session that ended (skey): assigns waiting for it go on */                       \
    "local function forget(pool, name, key)\n"                                                     \
    "  unkey(pool, name, key)\n"                                                                   \
    "  unhold(pool, name)\n"                                                                       \
    "  local h = redis.call('HMGET', ikey(pool, name), 'skey', 'wkey')\n"                        \
    "  local skey = h[1]\n"                                                                        \
    "  unkey(pool, name, skey)\n"                                                                  \
    "  unkey(pool, name, h[2])\n"                                                                  \
    "  if skey then redis.pcall('PUBLISH', P .. 'bell', '') end\n"                                 \
    "  redis.call('DEL', ikey(pool, name))\n"                                                      \
    "  redis.call('SREM', P .. 'pool:' .. pool, name)\n"                                           \
    "  redis.call('SREM', P .. 'idle:' .. pool, name)\n"                                           \
    "  redis.call('ZREM', P .. 'dl', pool .. ':' .. name)\n"                                       \
    "end\n"                                                                                        \
    "local function bell(ch) redis.pcall('PUBLISH', P .. 'bell' .. ch, '') end\n"                  \
    /* an active session's next deadline: ttl from now, never past the end */                      \
    /* session_max set at its login (field ends); nil: none */                                     \
    "local function deadline(ik, tms)\n"                                                           \
    "  local e = tonumber(redis.call('HGET', ik, 'ends') or '0')\n"                                \
    "  local d = tms > 0 and now + tms or nil\n"                                                   \
    "  if e > 0 and (not d or d > e) then d = e end\n"                                             \
    "  return d\n"                                                                                 \
    "end\n"                                                                                        \
    /* a reservation its client left before the login: it costs a recycle, */                      \
    /* so it counts against the client (max_pending_per_client) until an */                        \
    /* instance of the pool is idle again, or for the reservation's time */                        \
    /* (P ab:POOL:CLIENT by end; P ab:POOL, "CLIENT rid" by age, to repay) */                       \
    "local function abandon(pool, ik)\n"                                                           \
    "  local h = redis.call('HMGET', ik, 'src', 'rms', 'rid')\n"                                   \
    "  if not h[1] or h[1] == '' then return end\n"                                                \
    "  local k, ms, rid = P .. 'ab:' .. pool .. ':' .. h[1], tonumber(h[2] or '0'), h[3] or now\n" \
    "  redis.call('ZADD', k, now + ms, rid)\n"                                                     \
    "  redis.call('PEXPIRE', k, math.max(ms, 1))\n"                                                \
    "  local ak = P .. 'ab:' .. pool\n"                                                            \
    "  redis.call('ZREMRANGEBYSCORE', ak, '-inf', now - ms)\n"                                     \
    "  redis.call('ZADD', ak, now, h[1] .. ' ' .. rid)\n"                                          \
    "end\n"                                                                                        \
    /* a node's name (P alive:NODE), or a pool run without one (P run:POOL), */                    \
    /* held by one process (token) for ms: false when another holds it */                          \
    "local function claim(k, token, ms)\n"                                                         \
    "  local cur = redis.call('GET', k)\n"                                                         \
    "  if cur and cur ~= token then return false end\n"                                            \
    "  redis.call('SET', k, token, 'PX', ms)\n"                                                    \
    "  return true\n"                                                                              \
    "end\n"                                                                                        \
    /* ARGV[2..5] node, token, ms, epoch; ARGV[6..] pools: this process's */                       \
    /* names, its node's, or without one each pool it runs; the first that */                      \
    /* another process holds, or nil */                                                            \
    "local function claim_all()\n"                                                                 \
    "  if ARGV[2] ~= '' then\n"                                                                    \
    "    if claim(P .. 'alive:' .. ARGV[2], ARGV[3], ARGV[4]) then return nil end\n"               \
    "    return 'node ' .. ARGV[2]\n"                                                              \
    "  end\n"                                                                                      \
    "  for i = 6, #ARGV do\n"                                                                      \
    "    if not claim(P .. 'run:' .. ARGV[i], ARGV[3], ARGV[4]) then\n"                            \
    "      return 'pool ' .. ARGV[i] .. ' (run without a node name)'\n"                            \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  return nil\n"                                                                               \
    "end\n"                                                                                        \
    /* an instance goes draining from state was: the key of its active */                          \
    /* session stays its own (skey) until it is stopped, after the store-back */                   \
    "local function ending(pool, name, was, key)\n"                                                \
    "  if was == 'active' and key and key ~= '' then\n"                                            \
    "    redis.call('HSET', ikey(pool, name), 'skey', key)\n"                                      \
    "  else\n"                                                                                     \
    "    unkey(pool, name, key)\n"                                                                 \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "local function event(pool, name, st, key)\n"                                                  \
    "  local h = redis.call('HMGET', ikey(pool, name), 'ep', 'node')\n"                            \
    "  local ep, ev, node = h[1] or '', P .. 'ev:' .. pool, h[2] or ''\n"                          \
    "  if node ~= '' then ev = ev .. ':' .. node end\n"                                            \
    "  redis.call('RPUSH', ev, st .. '\\t' .. name .. '\\t' .. ep .. '\\t' .. (key or ''))\n"      \
    "  redis.call('LTRIM', ev, -10000, -1)\n"                                                      \
    "  bell(':' .. node)\n"                                                                        \
    "end\n"

/* ARGV: prefix, pool, key, reserve_ms, ttl_ms, client ("": none), hold
 * ("1": count a holder), max_pending_per_client, pending_share,
 * DIR_HOLDERS_MAX, token (this process's: a holder it loses is told in
 * P out:TOKEN). Returns
 * {1|0, name, ep, rid, hid} (sticky | reserved; rid and hid 0 when nothing
 * is held),
 * {-1} none idle, {-2} unknown pool, {-3} the client's bound, {-4} the
 * pool's share of pending reservations, {-5} the key's last session is
 * being stored back (its instance drains), or may be on a node that has
 * not reported again to a redis that lost its data (P recovering). */
static const char lua_assign[] = LUA_PRELUDE
    "local pool, key = ARGV[2], ARGV[3]\n"
    "local rms, tms = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local client, hold = ARGV[6], ARGV[7] == '1'\n"
    "local maxpc, share, maxh = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])\n"
    "local token = ARGV[11]\n"
    /* no P epoch: redis lost its data (flushed, restarted empty, a replica
     * without it) and no process noticed yet (its next sweep sets P
     * recovering, lua_epoch); what was reported since, an instance idle,
     * may be handed out while the key's session is on a node not reported
     * again yet: wait, as while recovering */
    "if redis.call('EXISTS', P .. 'epoch') == 0 then return {-5} end\n"
    "if redis.call('SISMEMBER', P .. 'pools', pool) == 0 then return {-2} end\n"
    /* the holders of a reservation before its login: P hd:POOL:NAME, each
     * holder's id to "TOKEN CLIENT" (TOKEN: its process's, 16 characters).
     * Whoever sends the user's name holds it: so that a few addresses
     * cannot take every place and shut the user out, client holds at most
     * maxpc of them, and when all maxh are taken it takes the place of the
     * oldest holder of the address holding the most, if it would still
     * hold fewer; that holder's process pops its id from P out:TOKEN (the
     * sweep) and closes its connection. Returns false when client may not
     * hold it. */
    "local function room(hk)\n"
    "  local hs, by = redis.call('HGETALL', hk), {}\n"
    "  for i = 2, #hs, 2 do\n"
    "    local c = string.sub(hs[i], 18)\n"
    "    by[c] = (by[c] or 0) + 1\n"
    "  end\n"
    "  local mine = by[client] or 0\n"
    "  if client ~= '' and maxpc > 0 and mine >= maxpc then return false end\n"
    "  if #hs / 2 < maxh then return true end\n"
    "  local v, most = 1, 0\n"
    "  for i = 1, #hs, 2 do\n"
    "    local n = by[string.sub(hs[i + 1], 18)]\n"
    "    if n > most or (n == most and tonumber(hs[i]) < tonumber(hs[v])) then\n"
    "      v, most = i, n\n"
    "    end\n"
    "  end\n"
    "  if mine + 1 >= most then return false end\n"
    "  redis.call('HDEL', hk, hs[v])\n"
    "  local ok = P .. 'out:' .. string.sub(hs[v + 1], 1, 16)\n"
    "  redis.call('RPUSH', ok, hs[v])\n"
    "  redis.call('PEXPIRE', ok, math.max(rms, 1000))\n"
    "  return true\n"
    "end\n"
    /* one more holder, from client: its id; the hash lasts as long as the
     * reservation at least (unhold() drops it when it ends) */
    "local function hold_add(hk)\n"
    "  local hid = redis.call('INCR', P .. 'rid')\n"
    "  redis.call('HSET', hk, hid, token .. ' ' .. client)\n"
    "  redis.call('PEXPIRE', hk, math.max(rms, 1))\n"
    "  return hid\n"
    "end\n"
    /* an instance of a node that is alive: a node cut off from redis
     * never hears of a reservation, and its instance would never be
     * provisioned (node '': one machine, always alive) */
    "local function alive(m)\n"
    "  local nd = redis.call('HGET', ikey(pool, m), 'node')\n"
    "  return not nd or nd == '' or redis.call('EXISTS', P .. 'alive:' .. nd) == 1\n"
    "end\n"
    "local kk = P .. 'k:' .. pool .. ':' .. key\n"
    "local name = redis.call('GET', kk)\n"
    "if name then\n"
    "  local ik = ikey(pool, name)\n"
    "  local h = redis.call('HMGET', ik, 'state', 'key', 'skey', 'wkey')\n"
    "  local st = h[1]\n"
    "  if (st == 'reserved' or st == 'active') and h[2] == key then\n"
    "    local rid, hid = 0, 0\n"
    "    local dl = st == 'active' and deadline(ik, tms)\n"
    "    if dl then redis.call('ZADD', P .. 'dl', dl, pool .. ':' .. name) end\n"
    "    if st == 'reserved' and hold then\n"
    "      local hk = P .. 'hd:' .. pool .. ':' .. name\n"
    "      if not room(hk) then return {-3} end\n"
    "      hid = hold_add(hk)\n"
    "      rid = tonumber(redis.call('HGET', ik, 'rid') or '0')\n"
    "    end\n"
    "    return {1, name, redis.call('HGET', ik, 'ep') or '', rid, hid}\n"
    "  end\n"
    /* the key's last session ended and its state is not stored back yet,
     * or its reservation was withdrawn (its clients left) and the pool has
     * not decided yet (a login line it read first makes it the session):
     * wait (for the instance's stop or activation), never hand out the
     * state before it, nor a second instance */
    "  if ((st == 'draining' and h[3] == key) or (st == 'starting' and h[4] == key)) and\n"
    "     alive(name) then\n"
    "    return {-5}\n"
    "  end\n"
    "  redis.call('DEL', kk)\n"
    "end\n"
    /* a redis that lost its data (lua_epoch): the key's session may be on
     * a node that has not reported it again yet; wait for it as for a
     * store-back, never hand out the state before it */
    "if redis.call('EXISTS', P .. 'recovering') == 1 then return {-5} end\n"
    "local idle = P .. 'idle:' .. pool\n"
    "if redis.call('SCARD', idle) == 0 then return {-1} end\n"
    /* counts the members of set still reserved (by src, when given) and
     * drops the others */
    "local function pending(set, src)\n"
    "  local n = 0\n"
    "  for _, m in ipairs(redis.call('SMEMBERS', set)) do\n"
    "    local h = redis.call('HMGET', ikey(pool, m), 'state', 'src')\n"
    "    if h[1] == 'reserved' and (not src or h[2] == src) then n = n + 1\n"
    "    else redis.call('SREM', set, m) end\n"
    "  end\n"
    "  return n\n"
    "end\n"
    "local function abandoned(src)\n"
    "  local k = P .. 'ab:' .. pool .. ':' .. src\n"
    "  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)\n"
    "  return redis.call('ZCARD', k)\n"
    "end\n"
    "local ck = P .. 'c:' .. pool .. ':' .. client\n"
    "if client ~= '' and maxpc > 0 and pending(ck, client) + abandoned(client) >= maxpc then\n"
    "  return {-3}\n"
    "end\n"
    "local pk = P .. 'pend:' .. pool\n"
    "if share < 100 then\n"
    /* a withdrawn reservation holds its instance (recycling) while its
     * charge lasts: clients from many addresses would churn the whole
     * pool, each within its own bound. The share is of the instances a
     * newcomer could have (idle, reserved, recycling), not of those in
     * sessions: else, with a quarter of the pool in sessions,
     * unauthenticated clients could hold all the rest. The members of pk
     * are counted exactly (pending()) only when their number says the
     * bound may be reached: one more pending raises the limit by less */
    "  local ab = redis.call('ZCOUNT', P .. 'ab:' .. pool, now - rms, '+inf')\n"
    "  local free = redis.call('SCARD', idle) + ab\n"
    "  local function over(p) return p + ab >= math.max(1, math.ceil((free + p) * share / 100)) "
    "end\n"
    "  if over(redis.call('SCARD', pk)) and over(pending(pk)) then\n"
    "    return {-4}\n"
    "  end\n"
    "end\n"
    /* one member at a time: SRANDMEMBER with a count answers a small set
     * whole, in the same order every time, so its first would be the same
     * instance (and node) at every assignment */
    "name = nil\n"
    "for _ = 1, 16 do\n"
    "  local m = redis.call('SRANDMEMBER', idle)\n"
    "  if m and alive(m) then name = m break end\n"
    "end\n"
    "if not name then\n"
    "  for _, m in ipairs(redis.call('SMEMBERS', idle)) do\n"
    "    if alive(m) then name = m break end\n"
    "  end\n"
    "end\n"
    "if not name then return {-1} end\n"
    "redis.call('SREM', idle, name)\n"
    "local ik = ikey(pool, name)\n"
    "local rid = redis.call('INCR', P .. 'rid')\n"
    "redis.call('HSET', ik, 'state', 'reserved', 'key', key, 'since', now, 'src', client,\n"
    "           'rid', rid, 'rms', rms)\n"
    "redis.call('SET', kk, name)\n"
    "unhold(pool, name)\n"
    "local hid = hold and hold_add(P .. 'hd:' .. pool .. ':' .. name) or 0\n"
    "redis.call('ZADD', P .. 'dl', now + rms, pool .. ':' .. name)\n"
    "redis.call('SADD', pk, name)\n"
    "if client ~= '' then\n"
    "  redis.call('SADD', ck, name)\n"
    "  redis.call('PEXPIRE', ck, rms)\n"
    "end\n"
    "event(pool, name, 'reserved', key)\n"
    "return {0, name, redis.call('HGET', ik, 'ep') or '', hold and rid or 0, hid}\n";

/* ARGV: prefix, pool, name, key, rid, hid. Drops holder hid of reservation
 * rid (nothing when its place was taken); the last one withdraws it (to
 * starting, until the pool reports again). Returns 1 when withdrawn, else 0. */
static const char lua_release[] = LUA_PRELUDE
    "local pool, name, key, rid = ARGV[2], ARGV[3], ARGV[4], ARGV[5]\n"
    "local ik = ikey(pool, name)\n"
    "local h = redis.call('HMGET', ik, 'state', 'key', 'rid')\n"
    "if h[1] ~= 'reserved' or h[2] ~= key or h[3] ~= rid then return 0 end\n"
    "local hk = P .. 'hd:' .. pool .. ':' .. name\n"
    "if redis.call('HDEL', hk, ARGV[6]) == 0 or redis.call('EXISTS', hk) == 1 then\n"
    "  return 0\n"
    "end\n"
    "abandon(pool, ik)\n"
    "redis.call('HSET', ik, 'state', 'starting', 'key', '', 'since', now, 'wkey', key)\n"
    "redis.call('ZREM', P .. 'dl', pool .. ':' .. name)\n"
    "event(pool, name, 'starting', key)\n"
    "return 1\n";

/* ARGV: prefix, pool, name, state, ep, key, ttl_ms, if_absent
 * ("1": only when redis does not know the instance, for the resync), node
 * (the reporting process's: its events go to the list P ev:POOL:NODE). A pool
 * reports starting, idle, draining and stopped; "active" with its key comes
 * only from the resync of an activation this process made (struct owned),
 * and so does the key of a draining one (the session's that ended). */
static const char lua_report[] =
    LUA_PRELUDE "local pool, name, st, ep, key = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]\n"
                "local tms = tonumber(ARGV[7])\n"
                "local ik, m = ikey(pool, name), pool .. ':' .. name\n"
                "if ARGV[8] == '1' and redis.call('EXISTS', ik) == 1 then return 0 end\n"
                "redis.call('SADD', P .. 'pools', pool)\n"
                "local oldkey = redis.call('HGET', ik, 'key') or ''\n"
                "local was = redis.call('HGET', ik, 'state')\n"
                "if st == 'stopped' then\n"
                "  forget(pool, name, oldkey)\n"
                "  return 0\n"
                "end\n"
                "redis.call('SADD', P .. 'pool:' .. pool, name)\n"
                "unhold(pool, name)\n"
                "if ep ~= '' then redis.call('HSET', ik, 'ep', ep) end\n"
                /* the pool decided on a withdrawn reservation: its key is free */
                "local wk = redis.call('HGET', ik, 'wkey')\n"
                "if wk and wk ~= key then unkey(pool, name, wk) end\n"
                "redis.call('HSET', ik, 'state', st, 'since', now, 'wkey', '', 'node', ARGV[9])\n"
                "if st == 'active' then\n"
                "  if key ~= oldkey then unkey(pool, name, oldkey) end\n"
                "  redis.call('HSET', ik, 'key', key)\n"
                "  redis.call('SET', P .. 'k:' .. pool .. ':' .. key, name)\n"
                "  redis.call('SREM', P .. 'idle:' .. pool, name)\n"
                "  local dl = deadline(ik, tms)\n"
                "  if dl then redis.call('ZADD', P .. 'dl', dl, m)\n"
                "  else redis.call('ZREM', P .. 'dl', m) end\n"
                "  return 0\n"
                "end\n"
                "if st == 'draining' and not was and key ~= '' then\n"
                /* the resync of a session that ended, on a redis that lost
                 * it: the key is held again, unless its user has moved on */
                "  if redis.call('SET', P .. 'k:' .. pool .. ':' .. key, name, 'NX') then\n"
                "    redis.call('HSET', ik, 'skey', key)\n"
                "  end\n"
                "elseif st == 'draining' then\n"
                "  ending(pool, name, was, oldkey)\n"
                "else\n"
                "  unkey(pool, name, oldkey)\n"
                "  unkey(pool, name, redis.call('HGET', ik, 'skey'))\n"
                "  redis.call('HDEL', ik, 'skey')\n"
                "end\n"
                "redis.call('HSET', ik, 'key', '')\n"
                "redis.call('ZREM', P .. 'dl', m)\n"
                "if st == 'idle' then\n"
                /* an instance of the pool is idle: the oldest charge is paid */
                "  local ak = P .. 'ab:' .. pool\n"
                "  local old = redis.call('ZRANGE', ak, 0, 0)[1]\n"
                "  if old then\n"
                "    redis.call('ZREM', ak, old)\n"
                "    local c = string.find(old, ' ', 1, true)\n"
                "    local ck = ak .. ':' .. string.sub(old, 1, c - 1)\n"
                "    redis.call('ZREM', ck, string.sub(old, c + 1))\n"
                "  end\n"
                "end\n"
                "if st == 'idle' and redis.call('HGET', ik, 'ep') then\n"
                "  redis.call('SADD', P .. 'idle:' .. pool, name)\n"
                "  bell('')\n"
                "else\n"
                "  redis.call('SREM', P .. 'idle:' .. pool, name)\n"
                "end\n"
                /* the resync of a reservation, on a redis that lost it: withdrawn
                 * for its key, which waits for the pool's decision (its user's
                 * login line may have come; lua_activate), as any withdrawal */
                "if st == 'starting' and key ~= '' and not was then\n"
                "  redis.call('HSET', ik, 'wkey', key)\n"
                "  redis.call('SET', P .. 'k:' .. pool .. ':' .. key, name, 'NX')\n"
                "  event(pool, name, 'starting', key)\n"
                "end\n"
                "return 0\n";

/* ARGV: prefix, pool, name, key, ttl_ms, max_ms (session_max: the end set
 * when the session begins). The check and the change are one script:
 * between them no assign, sweep or drain of another process can slip in.
 * Returns {0} (active for key now), or {-1, holder} (not reserved nor
 * active for key: refused, nothing changed). */
static const char lua_activate[] =
    LUA_PRELUDE "local pool, name, key = ARGV[2], ARGV[3], ARGV[4]\n"
                "local tms, smax = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
                "local ik, m = ikey(pool, name), pool .. ':' .. name\n"
                "local h = redis.call('HMGET', ik, 'state', 'key', 'wkey')\n"
                "local st, holder = h[1], h[2] or ''\n"
                /* also a reservation withdrawn for key (its clients left) that the pool
                 * has not decided on yet: the login line came before it heard */
                "local withdrawn = st == 'starting' and h[3] == key\n"
                "local ok = withdrawn or ((st == 'reserved' or st == 'active') and holder == key)\n"
                "if not ok or redis.call('GET', P .. 'k:' .. pool .. ':' .. key) ~= name then\n"
                "  return {-1, holder}\n"
                "end\n"
                "if withdrawn then redis.call('HSET', ik, 'key', key, 'wkey', '') end\n"
                "if st ~= 'active' then\n"
                "  local ends = smax > 0 and now + smax or 0\n"
                "  redis.call('HSET', ik, 'state', 'active', 'since', now, 'ends', ends)\n"
                "  unhold(pool, name)\n"
                "end\n"
                "local dl = deadline(ik, tms)\n"
                "if dl then redis.call('ZADD', P .. 'dl', dl, m)\n"
                "else redis.call('ZREM', P .. 'dl', m) end\n"
                "return {0}\n";

/* ARGV: prefix, pool, name. Returns 0, or -1 when there is no such instance. */
static const char lua_drain[] =
    LUA_PRELUDE "local pool, name = ARGV[2], ARGV[3]\n"
                "local ik = ikey(pool, name)\n"
                "if redis.call('EXISTS', ik) == 0 then return -1 end\n"
                "local h = redis.call('HMGET', ik, 'state', 'key')\n"
                "ending(pool, name, h[1], h[2])\n"
                "unhold(pool, name)\n"
                "redis.call('HSET', ik, 'state', 'draining', 'key', '', 'since', now)\n"
                "redis.call('SREM', P .. 'idle:' .. pool, name)\n"
                "redis.call('ZREM', P .. 'dl', pool .. ':' .. name)\n"
                "event(pool, name, 'draining')\n"
                "return 0\n";

/* ARGV: prefix, node, token, alive_ms, epoch, pools... Returns 1 when this
 * process's names (claim_all()) are its own (token) for alive_ms now, or
 * the name another process holds. */
static const char lua_claim[] = LUA_PRELUDE "return claim_all() or 1\n";

/* ARGV: prefix, node, token, alive_ms, epoch, pools... Gives back those of
 * this process's names that it holds (a clean stop: the next process
 * need not wait for them to expire). Returns 0. */
static const char lua_unclaim[] =
    LUA_PRELUDE "local keys = {}\n"
                "if ARGV[2] ~= '' then keys[1] = P .. 'alive:' .. ARGV[2] end\n"
                "for i = 6, #ARGV do keys[#keys + 1] = P .. 'run:' .. ARGV[i] end\n"
                "for _, k in ipairs(keys) do\n"
                "  if redis.call('GET', k) == ARGV[3] then redis.call('DEL', k) end\n"
                "end\n"
                "return 0\n";

/* ARGV: prefix, known, fresh, hold_ms. P epoch names the directory's
 * data: set (to fresh) by the first process that finds none. A process
 * that knew another one (known) reported to a directory that is gone (a
 * redis restarted empty, flushed, or failed over to a replica without the
 * data): the sessions in it come back only as their nodes report them
 * again, each at its own reconnect. Until then, P recovering for hold_ms
 * (from the last such process's connect) makes assigns of keys the
 * directory does not know wait, as for a store-back. Returns the epoch. */
static const char lua_epoch[] =
    LUA_PRELUDE "local k = P .. 'epoch'\n"
                "local cur = redis.call('GET', k)\n"
                "if not cur then\n"
                "  cur = ARGV[3]\n"
                "  redis.call('SET', k, cur)\n"
                "end\n"
                "if ARGV[2] ~= '' and cur ~= ARGV[2] then\n"
                "  redis.call('SET', P .. 'recovering', ARGV[2], 'PX', ARGV[4])\n"
                "end\n"
                "return cur\n";

/* ARGV: prefix, node, token, alive_ms, epoch, pools... Says the node (or
 * each pool run without a node name) is this process's for alive_ms (an
 * error NODEHELD when another process holds one; EPOCH when the directory
 * is no longer the one this process reported to, lua_epoch); moves what is due (nothing
 * becomes idle: a reservation due is withdrawn, its pool recycles the
 * instance). Returns the ids of this process's holders that lost their
 * place since the last sweep (P out:TOKEN). */
static const char lua_sweep[] = LUA_PRELUDE
    "if redis.call('GET', P .. 'epoch') ~= ARGV[5] then\n"
    "  return redis.error_reply('EPOCH the directory lost its data')\n"
    "end\n"
    "local held = claim_all()\n"
    "if held then\n"
    "  return redis.error_reply('NODEHELD ' .. held .. ' is held by another airlock "
    "process')\n"
    "end\n"
    "local due = redis.call('ZRANGEBYSCORE', P .. 'dl', '-inf', now, 'LIMIT', 0, 256)\n"
    "for _, m in ipairs(due) do\n"
    "  redis.call('ZREM', P .. 'dl', m)\n"
    "  local c = string.find(m, ':', 1, true)\n"
    "  local pool, name = string.sub(m, 1, c - 1), string.sub(m, c + 1)\n"
    "  local ik = ikey(pool, name)\n"
    "  local st = redis.call('HGET', ik, 'state')\n"
    /* a reservation that never became active is withdrawn (its */
    /* client may have spoken to the instance: its pool recycles it), */
    /* as when its last holder leaves; an unused session ends */
    "  if st == 'reserved' then\n"
    "    local key = redis.call('HGET', ik, 'key')\n"
    "    abandon(pool, ik)\n"
    "    unhold(pool, name)\n"
    "    redis.call('HSET', ik, 'state', 'starting', 'key', '', 'since', now, 'wkey', key)\n"
    "    event(pool, name, 'starting', key)\n"
    "  elseif st == 'active' then\n"
    "    ending(pool, name, st, redis.call('HGET', ik, 'key'))\n"
    "    redis.call('HSET', ik, 'state', 'draining', 'key', '', 'since', now)\n"
    "    event(pool, name, 'draining')\n"
    "  end\n"
    "end\n"
    "local ok = P .. 'out:' .. ARGV[3]\n"
    "local out = redis.call('LRANGE', ok, 0, -1)\n"
    "redis.call('DEL', ok)\n"
    "return out\n";

/* ARGV: prefix. Returns {pool, name, ep, state, key, since, ...}. */
static const char lua_list[] = LUA_PRELUDE
    "local out = {}\n"
    "for _, pool in ipairs(redis.call('SMEMBERS', P .. 'pools')) do\n"
    "  for _, name in ipairs(redis.call('SMEMBERS', P .. 'pool:' .. pool)) do\n"
    "    local h = redis.call('HMGET', ikey(pool, name), 'ep', 'state', 'key', 'since')\n"
    "    out[#out + 1] = pool\n"
    "    out[#out + 1] = name\n"
    "    for i = 1, 4 do out[#out + 1] = h[i] or '' end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* ARGV: prefix, node[, pool]. Forgets every instance of node (of pool
 * only, when given) as a report of stopped would: the keys they held are
 * free again; returns how many. */
static const char lua_forget[] =
    LUA_PRELUDE "local node, n = ARGV[2], 0\n"
                "local pools = ARGV[3] and {ARGV[3]} or redis.call('SMEMBERS', P .. 'pools')\n"
                "for _, pool in ipairs(pools) do\n"
                "  for _, name in ipairs(redis.call('SMEMBERS', P .. 'pool:' .. pool)) do\n"
                "    local h = redis.call('HMGET', ikey(pool, name), 'node', 'key')\n"
                "    if h[1] == node then\n"
                "      forget(pool, name, h[2])\n"
                "      n = n + 1\n"
                "    end\n"
                "  end\n"
                "  redis.call('DEL', P .. 'ev:' .. pool .. ':' .. node)\n"
                "end\n"
                "return n\n";

enum script {
    S_ASSIGN,
    S_REPORT,
    S_ACTIVATE,
    S_DRAIN,
    S_SWEEP,
    S_LIST,
    S_RELEASE,
    S_FORGET,
    S_CLAIM,
    S_UNCLAIM,
    S_EPOCH,
    S_COUNT
};

static const char *const scripts[S_COUNT] = {
    [S_ASSIGN] = lua_assign,   [S_REPORT] = lua_report, [S_ACTIVATE] = lua_activate,
    [S_DRAIN] = lua_drain,     [S_SWEEP] = lua_sweep,   [S_LIST] = lua_list,
    [S_RELEASE] = lua_release, [S_FORGET] = lua_forget, [S_CLAIM] = lua_claim,
    [S_UNCLAIM] = lua_unclaim, [S_EPOCH] = lua_epoch,
};

/* The last report this process made for one instance, to apply again
 * after an outage: reports that failed (pending) in order, and, for
 * instances that redis lost (a restart without persistence), the last
 * state. An instance redis still knows is left alone: another process may
 * have reserved it since. */
struct owned {
    char pool[DIR_NAME_MAX];
    char name[DIR_NAME_MAX];
    enum dir_state st;
    char ep[ENDPOINT_TEXT_MAX];
    char key[DIR_KEY_MAX]; /* active: its session's; draining: the ended session's */
    /* idle in its last report, and reserved for this key since (an event):
     * on a redis that lost it, the reservation is withdrawn (send_report()) */
    char rkey[DIR_KEY_MAX];
    int pending;
};

struct rds {
    const struct dir_host *host;
    redisContext *c;
    char *password;                     /* NULL: no AUTH */
    char *sentinel_password;            /* NULL: the sentinels are asked without AUTH */
    char master[ENDPOINT_TEXT_MAX + 8]; /* with sentinels: HOST:PORT last connected to */
    struct owned *own;
    size_t n_own, cap_own;
    char sha[S_COUNT][41];
    uint64_t retry_at; /* loop_now() before which no reconnect is tried */
    struct backoff backoff;
    int down_logged; /* log transitions only */
    unsigned ticks;
    int forgot;     /* the node's instances of an earlier run are forgotten */
    char token[17]; /* this process's, in P alive:NODE while it holds the node's name */
    char epoch[17]; /* P epoch of the directory this process reports to ("": none yet) */
    /* without a node name: the pools this process ran (P run:POOL holds
     * token; their instances of an earlier run are forgotten) */
    char claimed[WATCHED_MAX][DIR_NAME_MAX];
    int n_claimed;
    /* the doorbell: a second connection, SUBSCRIBEd, read on the loop */
    redisContext *bell;
    struct io bell_io;
    uint64_t bell_retry_at;
    int bell_logged; /* its refusal was logged: once until it works */
};

static void
bell_close(struct rds *r)
{
    if (r->bell == NULL)
        return;
    io_stop(r->host->loop, &r->bell_io);
    redisFree(r->bell);
    r->bell = NULL;
    r->host->set_doorbell(r->host, 0);
}

static void
disconnect(struct rds *r, const char *why)
{
    char q[256];

    /* why may point into r->c: log before freeing it; quoted, for it may
     * quote redis's words */
    if (!r->down_logged)
        log_warnx("directory: redis unreachable why=\"%s\" (requests fail until it is back)",
                  log_quoted(q, sizeof(q), why));
    r->down_logged = 1;
    r->host->set_up(r->host, 0);
    if (r->c != NULL)
        redisFree(r->c);
    r->c = NULL;
    bell_close(r); /* it follows the main connection to its (new) master */
    r->retry_at = loop_now(r->host->loop) + backoff_next(&r->backoff);
}

static int
load_scripts(struct rds *r)
{
    char q[256];

    for (int s = 0; s < S_COUNT; s++) {
        redisReply *rep = redisCommand(r->c, "SCRIPT LOAD %s", scripts[s]);
        int ok = rep != NULL && rep->type == REDIS_REPLY_STRING && rep->len == 40;
        if (ok)
            memcpy(r->sha[s], rep->str, 41);
        else if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
            log_warnx("directory: redis refused a script why=\"%s\"",
                      log_quoted(q, sizeof(q), rep->str));
        freeReplyObject(rep);
        if (!ok)
            return -EIO;
    }
    return 0;
}

static int send_report(struct rds *r, const struct owned *o, int if_absent);
static int take_pool(struct rds *r, const char *pool);
static redisReply *run(struct rds *r, enum script s, int argc, const char **argv);

/* The arguments of the claim and the sweep: node, token, alive_ms, epoch,
 * then the pools claimed without a node name (only pool, when given).
 * Returns the count. */
static int
names_argv(const struct rds *r, const char *pool, const char **argv)
{
    int n = 0;

    argv[n++] = r->host->conf->node;
    argv[n++] = r->token;
    argv[n++] = NODE_ALIVE_MS;
    argv[n++] = r->epoch;
    if (pool != NULL)
        argv[n++] = pool;
    else
        for (int i = 0; i < r->n_claimed; i++)
            argv[n++] = r->claimed[i];
    return n;
}

/* Holds this process's names (the node's; without one, pool, or every pool
 * claimed). Returns 0, or -EIO (disconnected: another process holds one;
 * this one waits for it as for redis). */
static int
claim(struct rds *r, const char *pool)
{
    const char *argv[NAMES_ARGS];
    redisReply *rep = run(r, S_CLAIM, names_argv(r, pool, argv), argv);

    if (rep == NULL)
        return -EIO;
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 1) {
        freeReplyObject(rep);
        return 0;
    }
    char why[128];
    snprintf(why, sizeof(why), "%s is held by another airlock process",
             rep->type == REDIS_REPLY_STRING ? rep->str : "a name");
    freeReplyObject(rep);
    disconnect(r, why);
    return -EIO;
}

/* Forgets the instances of this node (without one: of pool) that an
 * earlier run reported. Returns 0, or -EIO. */
static int
forget(struct rds *r, const char *pool)
{
    const char *node = r->host->conf->node, *argv[] = {node, pool};
    redisReply *rep = run(r, S_FORGET, pool != NULL ? 2 : 1, argv);

    if (rep == NULL)
        return -EIO;
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
        log_warnx("directory: %s %s: %lld instances of its earlier run forgotten (their "
                  "sessions ended with it)",
                  pool != NULL ? "pool" : "node", pool != NULL ? pool : node, rep->integer);
    freeReplyObject(rep);
    return 0;
}

/* At each connect of a process with a node name: the name is one
 * process's (P alive:NODE holds its token, renewed by each sweep), so a
 * second airlock given the same name (a misconfiguration, or a rolling
 * update that starts the new one before the old one is gone) waits, as if
 * redis were unreachable, until the first one's last sweep is 2 s old;
 * else it would forget the first one's instances in use, and their users
 * would be given a second instance. Then, at the first connect: the
 * instances of that node that redis knows were started by an earlier run
 * of this node's airlock, which is gone, and its instances with it (they
 * die with it): forget them, so that their users get another instance at
 * once rather than at session_ttl. Before resync(), which reports this
 * run's instances. Without a node name, the same for each pool this
 * process runs (take_pool()). Returns 0, or -EIO (disconnected). */
static int
take_node(struct rds *r)
{
    const char *node = r->host->conf->node;

    if (node[0] == '\0') {
        if (r->n_claimed > 0 && claim(r, NULL) != 0)
            return -EIO;
        /* the pools of the reports to be made again, before any is */
        for (size_t i = 0; i < r->n_own; i++)
            if (take_pool(r, r->own[i].pool) != 0)
                return -EIO;
        return 0;
    }
    if (claim(r, NULL) != 0)
        return -EIO;
    if (r->forgot)
        return 0;
    if (forget(r, NULL) != 0)
        return -EIO;
    r->forgot = 1;
    return 0;
}

/* Sets out to 16 random hex digits. Returns 0, or -EIO. */
static int
random_token(char (*out)[17])
{
    uint64_t id;

    if (getrandom(&id, sizeof(id), 0) != sizeof(id))
        return -EIO;
    snprintf(*out, sizeof(*out), "%016llx", (unsigned long long)id);
    return 0;
}

/* At each connect, before any report: the directory's epoch (lua_epoch).
 * A different one than this process last saw means redis lost what this
 * process reported: resync() reports it all again. Returns 0, or -EIO. */
static int
take_epoch(struct rds *r)
{
    char hold[16], fresh[17];
    const char *argv[] = {r->epoch, fresh, hold};

    if (random_token(&fresh) != 0)
        return -EIO;
    snprintf(hold, sizeof(hold), "%d", RECOVER_MS);
    redisReply *rep = run(r, S_EPOCH, 3, argv);
    if (rep == NULL)
        return -EIO;
    int ok = rep->type == REDIS_REPLY_STRING && rep->len == sizeof(r->epoch) - 1;
    if (ok && r->epoch[0] != '\0' && strcmp(r->epoch, rep->str) != 0)
        log_warnx("directory: redis lost the directory's data (restarted empty?): every "
                  "instance is reported again, and keys it does not know wait %d ms for "
                  "their nodes",
                  RECOVER_MS);
    if (ok)
        memcpy(r->epoch, rep->str, sizeof(r->epoch));
    freeReplyObject(rep);
    return ok ? 0 : -EIO;
}

/* Without a node name, the instances of a pool are POOL-N whichever
 * process runs it: two processes running it on one redis would report
 * each other's instances as their own. So a pool run without a node name
 * is one process's, as a node's name is (P run:POOL, renewed by each
 * sweep); at this process's first report of pool (or the first since it
 * last ran none of it: keep_claims()), the pool is claimed and what an
 * earlier run left of it is forgotten (that run is gone, and its instances
 * with it). Returns 0, or -EIO (disconnected). */
static int
take_pool(struct rds *r, const char *pool)
{
    if (r->host->conf->node[0] != '\0')
        return 0;
    for (int i = 0; i < r->n_claimed; i++)
        if (strcmp(r->claimed[i], pool) == 0)
            return 0;
    if (r->n_claimed == WATCHED_MAX) /* never: pools are fewer */
        return 0;
    if (claim(r, pool) != 0 || forget(r, pool) != 0)
        return -EIO;
    snprintf(r->claimed[r->n_claimed++], DIR_NAME_MAX, "%s", pool);
    return 0;
}

/* Applies this process's reports again after (re)connecting; see struct owned. */
static void
resync(struct rds *r)
{
    size_t applied = 0;

    for (size_t i = 0; i < r->n_own && r->c != NULL; i++) {
        struct owned *o = &r->own[i];
        if (send_report(r, o, !o->pending) != 0)
            return;
        o->pending = 0;
        applied++;
        if (o->st == DIR_STOPPED)
            r->own[i--] = r->own[--r->n_own];
    }
    if (applied > 0)
        log_info("directory: %zu instances reported again to redis", applied);
}

/* Connects to host:port over TCP. A server on this machine must not be an
 * instance's: a pool's instance may bind the port of a redis or sentinel
 * that is down (a restart, a crash) and read the password airlock sends,
 * then rewrite the directory. The instances' uids have no account (airlock
 * check), so a server whose socket is of a uid without one is refused
 * before a byte is sent (c->err set, the context kept for its message). */
static redisContext *
dial_tcp(const char *host, int port, struct timeval tv)
{
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    struct passwd pw, *found = NULL;
    char buf[4096];
    uid_t uid;

    /* an account that cannot be read (ERANGE) is one */
    if (c == NULL || c->err != 0 || sockdiag_peer_uid(c->fd, &uid) != 0 || uid == 0 ||
        getpwuid_r(uid, &pw, buf, sizeof(buf), &found) != 0 || found != NULL)
        return c;
    log_warnx("directory: %s:%d is served by uid %u, which has no account (an instance's?): "
              "refused, nothing sent",
              host, port, (unsigned)uid);
    c->err = REDIS_ERR_OTHER;
    snprintf(c->errstr, sizeof(c->errstr),
             "%s:%d refused: served by uid %u, which has no account (an instance's?)", host, port,
             (unsigned)uid);
    return c;
}

static redisContext *
dial(const struct endpoint *ep, struct timeval tv)
{
    if (ep->kind == EP_UNIX)
        return redisConnectUnixWithTimeout(ep->path, tv);
    return dial_tcp(ep->host, (int)ep->port, tv);
}

/* The master a sentinel named (host, port: its words) into host and *port
 * when it is an address or a host name and a port (endpoint_parse()): a
 * sentinel that anyone may command could name anything, and the name goes
 * into log lines (master HOST:PORT). */
static bool
master_parse(const char *h, const char *p, char (*host)[256], int *port)
{
    char text[ENDPOINT_TEXT_MAX];
    struct endpoint ep;
    const char *err;

    if ((size_t)snprintf(text, sizeof(text), strchr(h, ':') != NULL ? "tcp:[%s]:%s" : "tcp:%s:%s",
                         h, p) >= sizeof(text) ||
        endpoint_parse(text, &ep, &err) != PARSE_OK || ep.kind != EP_TCP)
        return false;
    snprintf(*host, sizeof(*host), "%s", ep.host);
    *port = (int)ep.port;
    return true;
}

/* Asks the sentinels in turn for the master's address: 0 with it in
 * host, *port and master (HOST:PORT), or -EIO with why. AUTH first with
 * sentinel_password_file's: whoever may send a sentinel commands can tell
 * it which master to name, and airlock sends that master its password. */
static int
ask_sentinels(struct rds *r, char (*host)[256], int *port, char *master, size_t mlen, char *why,
              size_t wlen)
{
    const struct dir_conf *c = r->host->conf;
    struct timeval tv = {REDIS_TIMEOUT_MS / 1000, (REDIS_TIMEOUT_MS % 1000) * 1000};

    snprintf(why, wlen, "no sentinel answered");
    for (size_t i = 0; i < c->n_sentinels; i++) {
        char ep[ENDPOINT_TEXT_MAX];
        redisContext *s = dial(&c->sentinels[i], tv);
        redisReply *rep = NULL;
        bool refused = false;
        int ok;

        if (s != NULL && s->err == 0) {
            redisSetTimeout(s, tv);
            if (r->sentinel_password != NULL) {
                rep = redisCommand(s, "AUTH %s", r->sentinel_password);
                refused = rep != NULL && rep->type == REDIS_REPLY_ERROR;
            }
            if (!refused) {
                freeReplyObject(rep);
                rep = redisCommand(s, "SENTINEL get-master-addr-by-name %s", c->sentinel_master);
            }
        }
        ok = rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
             rep->element[0]->type == REDIS_REPLY_STRING &&
             rep->element[1]->type == REDIS_REPLY_STRING;
        if (ok && !master_parse(rep->element[0]->str, rep->element[1]->str, host, port)) {
            endpoint_format(&c->sentinels[i], ep, sizeof(ep));
            snprintf(why, wlen, "sentinel %.100s: the master it names is not a host and port", ep);
            ok = 0;
        } else if (ok) {
            snprintf(master, mlen, "%s:%d", *host, *port);
        } else {
            endpoint_format(&c->sentinels[i], ep, sizeof(ep));
            snprintf(why, wlen, "sentinel %.100s: %s%.100s", ep, refused ? "AUTH refused: " : "",
                     s == NULL                        ? "out of memory"
                     : s->err != 0 || !rep            ? s->errstr
                     : rep->type == REDIS_REPLY_ERROR ? rep->str
                                                      : "does not know the master");
        }
        freeReplyObject(rep);
        redisFree(s);
        if (ok)
            return 0;
    }
    return -EIO;
}

/* The first commands on a new connection c to master (HOST:PORT, "" without
 * sentinels): AUTH, and with sentinels, that the server is the master
 * still. Returns 0, or -EIO with why. */
static int
greet(struct rds *r, redisContext *c, const char *master, char *why, size_t wlen)
{
    const struct dir_conf *conf = r->host->conf;
    redisReply *rep;
    int rc = 0;

    if (r->password != NULL) {
        const char *argv[3] = {"AUTH"};
        int n = 1, user = conf->redis_user[0] != '\0';
        if (user)
            argv[n++] = conf->redis_user; /* an ACL user; else the default user */
        argv[n++] = r->password;
        rep = redisCommandArgv(c, n, argv, NULL);
        if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
            /* the server's words (WRONGPASS ...) name no secret */
            snprintf(why, wlen, "AUTH as %s refused: %s", user ? conf->redis_user : "default user",
                     rep ? rep->str : c->errstr);
            rc = -EIO;
        }
        freeReplyObject(rep);
        if (rc != 0)
            return rc;
    }
    if (conf->n_sentinels == 0)
        return 0;
    rep = redisCommand(c, "ROLE");
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(rep->element[0]->str, "master") != 0) {
        snprintf(why, wlen, "%.100s is not the master (yet): %.100s", master,
                 rep == NULL                      ? c->errstr
                 : rep->type == REDIS_REPLY_ERROR ? rep->str
                                                  : "ROLE says otherwise");
        rc = -EIO;
    }
    freeReplyObject(rep);
    return rc;
}

/* Connects to the master (asking the sentinels, when there are any, whose
 * answer goes to master, HOST:PORT) and greets it. Returns the context, or
 * NULL with why. */
static redisContext *
dial_master(struct rds *r, char *master, size_t mlen, char *why, size_t wlen)
{
    const struct dir_conf *conf = r->host->conf;
    struct timeval tv = {REDIS_TIMEOUT_MS / 1000, (REDIS_TIMEOUT_MS % 1000) * 1000};
    redisContext *c;

    master[0] = '\0';
    if (conf->n_sentinels > 0) {
        char host[256];
        int port;
        if (ask_sentinels(r, &host, &port, master, mlen, why, wlen) != 0)
            return NULL;
        c = dial_tcp(host, port, tv);
    } else {
        c = dial(&conf->redis, tv);
    }
    if (c == NULL || c->err != 0) {
        snprintf(why, wlen, "%.120s%s%.120s", master, master[0] ? ": " : "",
                 c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (greet(r, c, master, why, wlen) != 0) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* Returns a connected context, or NULL while redis is away (at most one
 * connect attempt per backoff period). */
static redisContext *
conn(struct rds *r)
{
    const struct dir_conf *c = r->host->conf;
    char why[256], master[sizeof(r->master)];

    if (r->c != NULL)
        return r->c;
    if (loop_now(r->host->loop) < r->retry_at)
        return NULL;
    if ((r->c = dial_master(r, master, sizeof(master), why, sizeof(why))) == NULL) {
        disconnect(r, why);
        return NULL;
    }
    if (c->n_sentinels > 0 && strcmp(master, r->master) != 0) {
        if (r->master[0] != '\0') {
            log_warnx("directory: redis master %s failed over to %s (sentinel master %s)",
                      r->master, master, c->sentinel_master);
            r->host->failed_over(r->host);
        }
        memcpy(r->master, master, sizeof(master));
    }
    if (load_scripts(r) != 0) {
        disconnect(r, "loading the scripts failed");
        return NULL;
    }
    if (take_epoch(r) != 0 || take_node(r) != 0) {
        if (r->c != NULL) /* a script error: not connected until they pass */
            disconnect(r, "the directory's first scripts failed");
        return NULL;
    }
    log_info("directory: connected to redis%s%s", r->master[0] ? " master " : "", r->master);
    r->down_logged = 0;
    r->host->set_up(r->host, 1);
    backoff_reset(&r->backoff);
    resync(r);
    return r->c; /* NULL when the resync lost the connection again */
}

/* With min_replicas_acked: waits until that many replicas have every
 * write made on this connection so far (a failover then keeps them).
 * Returns 0, or -EIO (not acknowledged: the caller answers an error). */
static int
replicated(struct rds *r)
{
    unsigned want = r->host->conf->min_replicas_acked;
    long long got = -1;

    if (want == 0 || r->c == NULL)
        return want == 0 ? 0 : -EIO;
    redisReply *rep = redisCommand(r->c, "WAIT %u %d", want, WAIT_TIMEOUT_MS);
    if (rep == NULL) {
        disconnect(r, r->c->errstr[0] ? r->c->errstr : "no reply");
        return -EIO;
    }
    if (rep->type == REDIS_REPLY_INTEGER)
        got = rep->integer;
    freeReplyObject(rep);
    if (got >= (long long)want)
        return 0;
    log_warnx("directory: a write reached %lld of %u replicas within %d ms: answered as failed",
              got < 0 ? 0 : got, want, WAIT_TIMEOUT_MS);
    return -EIO;
}

/* Runs script s with ARGV prefix + argv[0..argc). Returns the reply (free
 * it), or NULL (-EIO) when redis is away or failed. */
static redisReply *
run(struct rds *r, enum script s, int argc, const char **argv)
{
    const char *args[4 + NAMES_ARGS];
    int n = 0;

    if (argc > (int)(sizeof(args) / sizeof(args[0])) - 4) /* never: the scripts' own counts */
        return NULL;
    if (conn(r) == NULL)
        return NULL;
    args[n++] = "EVALSHA";
    args[n++] = r->sha[s];
    args[n++] = "0";
    args[n++] = r->host->conf->prefix;
    for (int i = 0; i < argc; i++)
        args[n++] = argv[i];
    redisReply *rep = redisCommandArgv(r->c, n, args, NULL);
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(rep);
        args[0] = "EVAL";
        args[1] = scripts[s];
        rep = redisCommandArgv(r->c, n, args, NULL);
        if (load_scripts(r) != 0)
            log_warnx("directory: reloading the redis scripts failed");
    }
    if (rep == NULL) {
        disconnect(r, r->c->errstr[0] ? r->c->errstr : "no reply");
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        char why[160];
        /* a demoted master (a failover the sentinels made while this was
         * connected): ask them again; the node's name taken by another
         * process: wait for it as for redis (take_node()); the data lost
         * (EPOCH): connect again, which reports it all again */
        int again = strstr(rep->str, "READONLY") != NULL || strstr(rep->str, "NODEHELD") != NULL ||
                    strncmp(rep->str, "EPOCH", 5) == 0;
        snprintf(why, sizeof(why), "%s", rep->str);
        freeReplyObject(rep);
        if (again) {
            disconnect(r, why);
        } else {
            log_quotable(why); /* quoted: redis's words */
            log_warnx("directory: redis script error why=\"%s\"", why);
        }
        return NULL;
    }
    return rep;
}

static void
copy_str(char *dst, size_t size, const redisReply *rep)
{
    if (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS)
        snprintf(dst, size, "%.*s", (int)rep->len, rep->str);
    else
        dst[0] = '\0';
}

/* Whether name, an instance's name that redis handed back, is one airlock
 * gives (units_name()): what another is goes into log lines
 * (instance=NAME) unquoted, and is not taken. */
static bool
name_ok(const char *name)
{
    return units_name(name, DIR_NAME_MAX) == 0;
}

/* Copies the string src into dst (size bytes) when it fits; false, dst
 * unspecified, when it does not (nothing is cut short silently). */
static bool
text_set(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);

    if (n >= size)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

static enum dir_state
state_parse(const char *s)
{
    for (int st = 0; st < DIR_STATE_COUNT; st++)
        if (strcmp(s, dir_state_name(st)) == 0)
            return st;
    return DIR_STOPPED;
}

static int
rd_assign(void *be, const char *pool, const char *key, struct dir_claim *cl,
          struct dir_instance *out)
{
    struct rds *r = be;
    const struct dir_conf *c = r->host->conf;
    char rms[16], tms[16], maxpc[16], share[16], maxh[16];
    const char *argv[] = {
        pool,  key,   rms,  tms,     cl->client != NULL ? cl->client : "", cl->hold ? "1" : "0",
        maxpc, share, maxh, r->token};
    int rc = -EIO;

    snprintf(rms, sizeof(rms), "%u", c->reserve_timeout_ms);
    snprintf(tms, sizeof(tms), "%u", c->session_ttl_ms);
    snprintf(maxpc, sizeof(maxpc), "%u", c->max_pending_per_client);
    snprintf(share, sizeof(share), "%u", c->pending_share);
    snprintf(maxh, sizeof(maxh), "%u", DIR_HOLDERS_MAX);
    redisReply *rep = run(r, S_ASSIGN, 10, argv);
    if (rep == NULL)
        return r->c == NULL ? -ENOTCONN : -EIO;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER) {
        long long v = rep->element[0]->integer;
        if (v == -2)
            rc = -ENOENT;
        else if (v == -1)
            rc = -EAGAIN;
        else if (v == -3)
            rc = -EDQUOT;
        else if (v == -4)
            rc = -EBUSY;
        else if (v == -5)
            rc = -EINPROGRESS;
        else if (rep->elements == 5 && rep->element[3]->type == REDIS_REPLY_INTEGER &&
                 rep->element[4]->type == REDIS_REPLY_INTEGER) {
            memset(out, 0, sizeof(*out));
            snprintf(out->pool, sizeof(out->pool), "%s", pool);
            copy_str(out->name, sizeof(out->name), rep->element[1]);
            copy_str(out->endpoint, sizeof(out->endpoint), rep->element[2]);
            snprintf(out->key, sizeof(out->key), "%s", key);
            out->state = DIR_RESERVED;
            cl->rid = (uint64_t)rep->element[3]->integer;
            cl->hid = (uint64_t)rep->element[4]->integer;
            rc = !name_ok(out->name) ? -EIO : v == 1 ? 1 : 0;
        }
    }
    freeReplyObject(rep);
    if (rc >= 0 && replicated(r) != 0)
        return r->c == NULL ? -ENOTCONN : -EIO;
    return rc;
}

static int
rd_release(void *be, const char *pool, const char *name, const char *key, uint64_t rid,
           uint64_t hid)
{
    struct rds *r = be;
    char rids[24], hids[24];
    const char *argv[] = {pool, name, key, rids, hids};
    int rc;

    snprintf(rids, sizeof(rids), "%llu", (unsigned long long)rid);
    snprintf(hids, sizeof(hids), "%llu", (unsigned long long)hid);
    redisReply *rep = run(r, S_RELEASE, 5, argv);
    if (rep == NULL)
        return -EIO;
    rc = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1 ? 1 : 0;
    freeReplyObject(rep);
    return rc;
}

static int
send_report(struct rds *r, const struct owned *o, int if_absent)
{
    const struct dir_conf *c = r->host->conf;
    char tms[16];
    /* reserved since its last report (idle): on a redis that lost it, not
     * idle again, which would give it to another key while its user may be
     * on it, but withdrawn (lua_report); the pool decides, as at any */
    bool withdraw = if_absent && o->st == DIR_IDLE && o->rkey[0] != '\0';
    const char *argv[] = {o->pool,
                          o->name,
                          withdraw ? "starting" : dir_state_name(o->st),
                          o->ep,
                          withdraw ? o->rkey : o->key,
                          tms,
                          if_absent ? "1" : "0",
                          c->node};

    snprintf(tms, sizeof(tms), "%u", c->session_ttl_ms);
    if (take_pool(r, o->pool) != 0)
        return -EIO;
    redisReply *rep = run(r, S_REPORT, 8, argv);
    if (rep == NULL)
        return -EIO;
    freeReplyObject(rep);
    return 0;
}

/* Returns pool/name's entry in the resync table, added when new; NULL on ENOMEM. */
static struct owned *
owned(struct rds *r, const char *pool, const char *name)
{
    for (size_t i = 0; i < r->n_own; i++)
        if (strcmp(r->own[i].pool, pool) == 0 && strcmp(r->own[i].name, name) == 0)
            return &r->own[i];
    if (r->n_own == r->cap_own) {
        size_t cap = r->cap_own ? r->cap_own * 2 : 16;
        struct owned *v = realloc(r->own, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        r->own = v;
        r->cap_own = cap;
    }
    struct owned *o = &r->own[r->n_own++];
    memset(o, 0, sizeof(*o));
    snprintf(o->pool, sizeof(o->pool), "%s", pool);
    snprintf(o->name, sizeof(o->name), "%s", name);
    return o;
}

/* Notes in the resync table a reservation of an instance this process
 * reported idle (ev: an event of its pool), or its withdrawal. */
static void
reserved_since(struct rds *r, const struct dir_instance *ev)
{
    for (size_t i = 0; i < r->n_own; i++) {
        struct owned *o = &r->own[i];
        if (strcmp(o->pool, ev->pool) != 0 || strcmp(o->name, ev->name) != 0)
            continue;
        if (ev->state == DIR_RESERVED && o->st == DIR_IDLE)
            snprintf(o->rkey, sizeof(o->rkey), "%s", ev->key);
        else if (ev->state != DIR_RESERVED)
            o->rkey[0] = '\0';
        return;
    }
}

static int
rd_report(void *be, const char *pool, const char *name, enum dir_state st, const char *ep)
{
    struct rds *r = be;
    struct owned *o = owned(r, pool, name);
    int rc;

    if (o == NULL)
        return -ENOMEM;
    /* the key of a session that ended stays the instance's until it is
     * stopped (lua_report), on a redis that lost it too */
    if (st != DIR_DRAINING || o->st != DIR_ACTIVE)
        o->key[0] = '\0';
    o->rkey[0] = '\0';
    o->st = st;
    if (ep[0] != '\0')
        snprintf(o->ep, sizeof(o->ep), "%s", ep);
    /* when this reconnects, resync() sends the pending ones first, in order */
    if ((rc = send_report(r, o, 0)) != 0) {
        o->pending = 1;
        log_warnx("directory: report pool=%s instance=%s state=%s kept until redis is back", pool,
                  name, dir_state_name(st));
        return rc;
    }
    o->pending = 0;
    if (st == DIR_STOPPED)
        *o = r->own[--r->n_own];
    return 0;
}

static int
rd_activate(void *be, const char *pool, const char *name, const char *key, char *holder)
{
    struct rds *r = be;
    char tms[16], smax[16];
    const char *argv[] = {pool, name, key, tms, smax};
    int rc = -EIO;

    holder[0] = '\0';
    snprintf(tms, sizeof(tms), "%u", r->host->conf->session_ttl_ms);
    snprintf(smax, sizeof(smax), "%u", r->host->conf->session_max_ms);
    redisReply *rep = run(r, S_ACTIVATE, 5, argv);
    if (rep == NULL)
        return r->c == NULL ? -ENOTCONN : -EIO;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER) {
        rc = rep->element[0]->integer == 0 ? 0 : -EPERM;
        if (rc != 0 && rep->elements == 2)
            copy_str(holder, DIR_KEY_MAX, rep->element[1]);
        if (holder[0] != '\0' && units_key(holder) != 0)
            holder[0] = '\0'; /* not a key: not named (pool.c logs it) */
    }
    freeReplyObject(rep);
    if (rc == 0 && replicated(r) != 0)
        return r->c == NULL ? -ENOTCONN : -EIO;
    struct owned *o = rc == 0 ? owned(r, pool, name) : NULL;
    if (o != NULL) {
        /* what the resync restores on a redis that lost it */
        o->st = DIR_ACTIVE;
        snprintf(o->key, sizeof(o->key), "%s", key);
        o->rkey[0] = '\0';
    }
    return rc;
}

static long
parse_list(const redisReply *rep, struct dir_instance **out)
{
    size_t n = rep->type == REDIS_REPLY_ARRAY ? rep->elements / 6 : 0;
    char st[16], since[24];

    *out = calloc(n ? n : 1, sizeof(**out));
    if (*out == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct dir_instance *in = &(*out)[i];
        redisReply **e = &rep->element[i * 6];
        copy_str(in->pool, sizeof(in->pool), e[0]);
        copy_str(in->name, sizeof(in->name), e[1]);
        copy_str(in->endpoint, sizeof(in->endpoint), e[2]);
        copy_str(st, sizeof(st), e[3]);
        copy_str(in->key, sizeof(in->key), e[4]);
        copy_str(since, sizeof(since), e[5]);
        in->state = state_parse(st);
        in->since_ms = strtoull(since, NULL, 10);
    }
    return (long)n;
}

static long
rd_list(void *be, struct dir_instance **out)
{
    struct rds *r = be;
    redisReply *rep = run(r, S_LIST, 0, NULL);
    long n;

    if (rep == NULL)
        return r->c == NULL ? -ENOTCONN : -EIO;
    n = parse_list(rep, out);
    freeReplyObject(rep);
    if (n >= 0) {
        unsigned long counts[DIR_STATE_COUNT] = {0};
        for (long i = 0; i < n; i++)
            counts[(*out)[i].state]++;
        r->host->set_counts(r->host, counts);
    }
    return n;
}

static int
rd_drain(void *be, const char *pool, const char *name)
{
    struct rds *r = be;
    const char *argv[] = {pool, name};
    redisReply *rep = run(r, S_DRAIN, 2, argv);
    int rc;

    if (rep == NULL)
        return r->c == NULL ? -ENOTCONN : -EIO;
    rc = rep->type == REDIS_REPLY_INTEGER && rep->integer == 0 ? 0 : -ENOENT;
    freeReplyObject(rep);
    return rc;
}

/* Pops pool's events and hands them to its watcher, as one batch (a
 * reservation withdrawn in the same batch never reaches the pool).
 * Returns how many. */
static size_t
pop_events(struct rds *r, const char *pool)
{
    struct dir_instance *batch = calloc(EVENTS_PER_TICK, sizeof(*batch));
    char key[DIR_PREFIX_MAX + DIR_NAME_MAX + DIR_NODE_MAX + 8];
    size_t n = 0;

    if (batch == NULL) {
        log_warnx("directory: out of memory popping the events of pool %s", pool);
        return 0; /* they stay in the list until the next tick */
    }
    const char *node = r->host->conf->node;
    if ((size_t)snprintf(key, sizeof(key), "%sev:%s%s%s", r->host->conf->prefix, pool,
                         node[0] != '\0' ? ":" : "",
                         node) >= sizeof(key)) { /* cannot be: prefix and pool name are bounded */
        free(batch);
        return 0;
    }
    redisReply *rep = redisCommand(r->c, "LPOP %s %d", key, EVENTS_PER_TICK);
    if (rep == NULL) {
        free(batch);
        disconnect(r, r->c->errstr[0] ? r->c->errstr : "no reply");
        return 0;
    }
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements && n < EVENTS_PER_TICK;
         i++) {
        struct dir_instance in = {0};
        char line[DIR_NAME_MAX + ENDPOINT_TEXT_MAX + DIR_KEY_MAX + 32];
        copy_str(line, sizeof(line), rep->element[i]);
        /* STATE \t NAME \t ENDPOINT [\t KEY] */
        char *name = strchr(line, '\t'), *ep = name ? strchr(name + 1, '\t') : NULL;
        if (ep == NULL)
            continue;
        *name++ = '\0';
        *ep++ = '\0';
        char *ukey = strchr(ep, '\t');
        if (ukey != NULL)
            *ukey++ = '\0';
        if (!text_set(in.pool, sizeof(in.pool), pool) ||
            !text_set(in.name, sizeof(in.name), name) ||
            !text_set(in.endpoint, sizeof(in.endpoint), ep) ||
            !text_set(in.key, sizeof(in.key), ukey != NULL ? ukey : "") || !name_ok(in.name) ||
            (in.key[0] != '\0' && units_key(in.key) != 0)) {
            log_warnx("directory: pool %s: an event with an over-long or bad field dropped", pool);
            continue;
        }
        in.state = state_parse(line);
        in.since_ms = dir_wall_ms();
        reserved_since(r, &in);
        batch[n++] = in;
    }
    freeReplyObject(rep);
    r->host->changed(r->host, batch, n);
    free(batch);
    return n;
}

/* Drops the claims of pools this process no longer runs: none of its
 * instances is left and it does not watch the pool (a reload removed it).
 * Their P run:POOL expires; another process may run them. */
static void
keep_claims(struct rds *r)
{
    char pools[WATCHED_MAX][DIR_NAME_MAX];
    int n = r->n_claimed > 0 ? r->host->watched_pools(r->host, pools, WATCHED_MAX) : 0;

    for (int i = 0; i < r->n_claimed; i++) {
        bool runs = false;
        for (int j = 0; j < n && !runs; j++)
            runs = strcmp(r->claimed[i], pools[j]) == 0;
        for (size_t j = 0; j < r->n_own && !runs; j++)
            runs = strcmp(r->claimed[i], r->own[j].pool) == 0;
        if (!runs)
            memmove(r->claimed[i--], r->claimed[--r->n_claimed], DIR_NAME_MAX);
    }
}

/* Pops the events of every pool this process watches; returns how many. */
static size_t
pop_watched(struct rds *r)
{
    char pools[WATCHED_MAX][DIR_NAME_MAX];
    int n = r->host->watched_pools(r->host, pools, WATCHED_MAX);
    size_t popped = 0;

    for (int i = 0; i < n && r->c != NULL; i++)
        popped += pop_events(r, pools[i]);
    return popped;
}

/* The doorbell rang (its connection is readable): reads every message;
 * P bell:NODE (an event for this node's pools) pops the events now, P bell
 * (an instance became idle) lets the waiting assigns retry now. */
static void
bell_event(struct io *io, uint32_t events)
{
    struct rds *r = io->data;
    char buf[4096], idle[DIR_PREFIX_MAX + 8];
    bool pop = false, retry = false;
    const char *lost = NULL;
    (void)events;

    snprintf(idle, sizeof(idle), "%sbell", r->host->conf->prefix);
    for (;;) {
        void *reply;
        int rc;
        /* what the reader holds first: the subscribe's read may have
         * brought a message along */
        while ((rc = redisReaderGetReply(r->bell->reader, &reply)) == REDIS_OK && reply != NULL) {
            const redisReply *m = reply;
            if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
                m->element[0]->type == REDIS_REPLY_STRING &&
                strcmp(m->element[0]->str, "message") == 0 &&
                m->element[1]->type == REDIS_REPLY_STRING) {
                bool is_idle = strcmp(m->element[1]->str, idle) == 0;
                retry |= is_idle;
                pop |= !is_idle;
            }
            freeReplyObject(reply);
        }
        ssize_t n = rc == REDIS_OK ? read(r->bell->fd, buf, sizeof(buf)) : -1;
        if (n < 0 && rc == REDIS_OK && errno == EINTR)
            continue;
        if (n < 0 && rc == REDIS_OK && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0 || redisReaderFeed(r->bell->reader, buf, (size_t)n) != REDIS_OK) {
            lost = rc != REDIS_OK ? "a protocol error" : n == 0 ? "closed" : strerror(errno);
            break;
        }
    }
    if (lost != NULL) {
        log_warnx("directory: the redis doorbell was lost (%s); changes are picked up every "
                  "%d ms until it is back",
                  lost, DIR_REDIS_TICK_MS);
        bell_close(r);
    }
    if (pop && conn(r) != NULL)
        r->host->rung(r->host, pop_watched(r));
    if (retry)
        r->host->maybe_idle(r->host, NULL);
}

/* Subscribes the doorbell's own connection (to the master the main one
 * uses) to P bell:NODE and P bell, and reads it on the loop from then on.
 * A refusal (an ACL user without these channels) is logged once; the tick
 * goes on picking the changes up. */
static void
bell_open(struct rds *r)
{
    const struct dir_conf *conf = r->host->conf;
    char why[256], master[sizeof(r->master)], node_ch[DIR_PREFIX_MAX + DIR_NODE_MAX + 8],
        idle_ch[DIR_PREFIX_MAX + 8];
    redisReply *rep = NULL;
    int ok = 0;

    if (r->bell != NULL || r->c == NULL || loop_now(r->host->loop) < r->bell_retry_at)
        return;
    snprintf(node_ch, sizeof(node_ch), "%sbell:%s", conf->prefix, conf->node);
    snprintf(idle_ch, sizeof(idle_ch), "%sbell", conf->prefix);
    redisContext *c = dial_master(r, master, sizeof(master), why, sizeof(why));
    if (c != NULL && strcmp(master, r->master) != 0) {
        snprintf(why, sizeof(why), "the sentinels name %.100s, not %.100s", master, r->master);
    } else if (c != NULL) {
        /* one reply per channel: "subscribe", the channel, the count */
        rep = redisCommand(c, "SUBSCRIBE %s %s", node_ch, idle_ch);
        if (rep != NULL && rep->type == REDIS_REPLY_ARRAY) {
            freeReplyObject(rep);
            if (redisGetReply(c, (void **)&rep) != REDIS_OK)
                rep = NULL;
            ok = rep != NULL && rep->type == REDIS_REPLY_ARRAY;
        }
        snprintf(why, sizeof(why), "SUBSCRIBE refused: %.200s",
                 rep == NULL                      ? c->errstr
                 : rep->type == REDIS_REPLY_ERROR ? rep->str
                                                  : "an unexpected reply");
        freeReplyObject(rep);
    }
    if (ok && (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0 ||
               io_start(r->host->loop, &r->bell_io, c->fd, EPOLLIN, bell_event, r) != 0)) {
        snprintf(why, sizeof(why), "%s", strerror(errno));
        ok = 0;
    }
    if (!ok) {
        redisFree(c);
        r->bell_retry_at = loop_now(r->host->loop) + BELL_RETRY_MS;
        if (!r->bell_logged) {
            log_quotable(why); /* quoted: it may quote redis's words */
            log_warnx("directory: no redis doorbell why=\"%s\" (changes are picked up every %d "
                      "ms; docs/directory.md)",
                      why, DIR_REDIS_TICK_MS);
        }
        r->bell_logged = 1;
        return;
    }
    c->flags &= ~REDIS_BLOCK; /* read by bell_event() from here on */
    r->bell = c;
    r->bell_logged = 0;
    r->host->set_doorbell(r->host, 1);
    log_info("directory: redis doorbell subscribed (%s, %s)", node_ch, idle_ch);
    bell_event(&r->bell_io, EPOLLIN);
}

/* With sentinels: a master that was not told of a failover (a graceful
 * one, or a partition) still takes writes, which its successor never sees;
 * asking the sentinels now and then bounds how long this writes there. */
static void
check_master(struct rds *r)
{
    char host[256], master[sizeof(r->master)], why[256];
    int port;

    if (r->host->conf->n_sentinels == 0 || r->c == NULL ||
        ask_sentinels(r, &host, &port, master, sizeof(master), why, sizeof(why)) != 0 ||
        strcmp(master, r->master) == 0)
        return;
    snprintf(why, sizeof(why), "the sentinels name %.100s the master, not %.100s", master,
             r->master);
    disconnect(r, why);
    r->retry_at = 0; /* follow now */
}

static unsigned
rd_tick(void *be)
{
    struct rds *r = be;

    if (r->ticks % COUNT_EVERY_TICKS == 0)
        check_master(r);

    const char *argv[NAMES_ARGS];
    keep_claims(r);
    redisReply *rep = run(r, S_SWEEP, names_argv(r, NULL, argv), argv);
    if (rep == NULL)
        return DIR_REDIS_TICK_MS;
    /* this process's holders that lost their place (lua_assign's room()) */
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++)
        if (rep->element[i]->type == REDIS_REPLY_STRING)
            r->host->evicted(r->host, strtoull(rep->element[i]->str, NULL, 10));
    freeReplyObject(rep);
    bell_open(r);
    pop_watched(r);
    /* instances freed by other processes' reports: waiters retry */
    r->host->maybe_idle(r->host, NULL);
    if (++r->ticks % COUNT_EVERY_TICKS == 0) {
        struct dir_instance *list = NULL;
        (void)rd_list(r, &list);
        free(list);
    }
    return DIR_REDIS_TICK_MS;
}

static void
forget_password(char *password)
{
    if (password != NULL)
        explicit_bzero(password, strlen(password));
    free(password);
}

static void
rd_free(void *be)
{
    struct rds *r = be;

    if (r == NULL)
        return;
    bell_close(r);
    if (r->c != NULL) {
        const char *argv[NAMES_ARGS];
        redisReply *rep = run(r, S_UNCLAIM, names_argv(r, NULL, argv), argv);
        freeReplyObject(rep);
    }
    if (r->c != NULL)
        redisFree(r->c);
    forget_password(r->password);
    forget_password(r->sentinel_password);
    free(r->own);
    free(r);
}

/* Reads the password of key (redis_password_file, sentinel_password_file):
 * the first line of path, a regular file of this user or root that nobody
 * else may read (mode 0600 or stricter). Returns 0, or -errno with the
 * reason logged (never the password). */
static int
read_password(const char *key, const char *path, char **out)
{
    struct stat st;
    char buf[PASSWORD_MAX + 2];
    ssize_t n = -1;
    int rc, fd = file_open_regular(path, O_RDONLY | O_NOFOLLOW, 0, &st);

    if (fd < 0) {
        log_warnx("directory: %s %s: %s", key, path, file_strerror(fd));
        return fd == -FILE_NOT_REGULAR ? -EPERM : fd;
    }
    rc = -EPERM;
    if (st.st_uid != geteuid() && st.st_uid != 0)
        log_warnx("directory: %s %s: owned by uid %u, expected %u or root", key, path,
                  (unsigned)st.st_uid, (unsigned)geteuid());
    else if (st.st_mode & 077)
        log_warnx("directory: %s %s: mode %04o lets others read it, expected "
                  "0600",
                  key, path, (unsigned)(st.st_mode & 07777));
    else if ((n = read(fd, buf, sizeof(buf) - 1)) < 0) {
        rc = -errno;
        log_warn("directory: %s %s", key, path);
    } else {
        rc = 0;
    }
    close(fd);
    if (rc != 0)
        return rc;
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (buf[0] == '\0' || strlen(buf) > PASSWORD_MAX) {
        log_warnx("directory: %s %s: expected a password of 1-%d bytes on its "
                  "first line",
                  key, path, PASSWORD_MAX);
        rc = -EINVAL;
    } else if ((*out = strdup(buf)) == NULL) {
        rc = -ENOMEM;
    }
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

static void *
rd_open(const struct dir_host *host)
{
    struct rds *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->host = host;
    r->backoff = (struct backoff)BACKOFF_INIT(BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    if (random_token(&r->token) != 0) {
        rd_free(r);
        return NULL;
    }
    const struct dir_conf *c = host->conf;
    int rc = 0;
    if (c->redis_password_file[0] != '\0')
        rc = read_password("redis_password_file", c->redis_password_file, &r->password);
    if (rc == 0 && c->sentinel_password_file[0] != '\0')
        rc = read_password("sentinel_password_file", c->sentinel_password_file,
                           &r->sentinel_password);
    if (rc != 0) {
        rd_free(r);
        errno = -rc;
        return NULL;
    }
    return r;
}

const struct dir_ops dir_redis_ops = {
    .open = rd_open,
    .assign = rd_assign,
    .release = rd_release,
    .report = rd_report,
    .activate = rd_activate,
    .list = rd_list,
    .drain = rd_drain,
    .tick = rd_tick,
    .free = rd_free,
};
