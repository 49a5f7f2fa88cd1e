/* ctl.h - the control socket's command line (airlock ctl).
 *
 * One command per connection, one line ended by '\n' ("\r\n" accepted):
 *
 *   sessions            reserved and active instances (who is where)
 *   instances           every instance the directory knows
 *   drain NAME          drain the instance NAME (when one pool has it)
 *   drain POOL/NAME     drain instance NAME of pool POOL
 *   assign POOL KEY     what a router does for a client naming KEY: KEY's
 *                       instance of POOL, or an idle one reserved for KEY
 *                       (only then may that instance log KEY in)
 *   reload              reload the config file (as SIGHUP) and say how it went
 *   conns               the open relayed connections
 *   stats               the counters per relay, router, pool and proxy
 *   config              the effective config, as YAML
 *
 * Words are separated by one space; names are 1-63 characters from
 * A-Z a-z 0-9 _ . - ; keys are 1-127 characters from A-Z a-z 0-9 _ . @ -,
 * not starting with - or . (what a pool's login rule accepts as a user).
 * The server answers "OK ..." or "ERR why" and closes.
 * Pure: no syscalls, no allocation. */
#ifndef AIRLOCK_PROTO_CTL_H
#define AIRLOCK_PROTO_CTL_H

#include <stddef.h>

#include "proto/parse.h"

#define CTL_LINE_MAX 256 /* the longest command line, newline included */
#define CTL_NAME_MAX 63  /* characters of a pool or instance name */
#define CTL_KEY_MAX 127  /* characters of a user key */

enum ctl_verb {
    CTL_SESSIONS,
    CTL_INSTANCES,
    CTL_DRAIN,
    CTL_ASSIGN,
    CTL_RELOAD,
    CTL_CONNS,
    CTL_STATS,
    CTL_CONFIG,
    CTL_VERB_COUNT,
};

/* The command word of verb ("sessions"). */
const char *ctl_verb_name(enum ctl_verb verb);

/* Whether verb operates the session directory (sessions, instances, drain,
 * assign): a process without a directory: block refuses it. */
int ctl_needs_directory(enum ctl_verb verb);

/* A parsed command; pool, name and key are slices of the caller's input. */
struct ctl_cmd {
    enum ctl_verb verb;
    const char *pool; /* drain POOL/NAME, assign; NULL otherwise */
    size_t pool_len;
    const char *name; /* drain; NULL otherwise */
    size_t name_len;
    const char *key; /* assign; NULL otherwise */
    size_t key_len;
};

/* Parses the command at in[0..len). Returns PARSE_OK with *cmd and *used
 * (the bytes of the line, newline included); PARSE_AGAIN while no newline
 * arrived and len < CTL_LINE_MAX; PARSE_INVALID with *why (a static
 * message) for anything else. */
enum parse_result ctl_parse(const char *in, size_t len, struct ctl_cmd *cmd, size_t *used,
                            const char **why);

#endif
