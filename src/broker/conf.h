/* conf.h - the key broker's settings (the broker: block; docs/attestation.md,
 * "Key broker"), their defaults and the rules that span them:
 *
 *   broker:
 *     listen: tcp:127.0.0.1:8600     # any stream endpoint (required)
 *     dir: /var/lib/airlock/secrets  # sealed secrets, one file NAME.sealed (required)
 *     key_file: /etc/airlock/broker.key  # the at-rest key: 32 bytes (required)
 *     max_connections: 64            # at once (1-4096); at the bound a newcomer closes the
 *                                    #   oldest still waiting for its REQUEST, else is refused
 *     max_per_peer: 32               # of them from one address (default half; 1-4096)
 *     timeout: 10s                   # a whole exchange, per connection
 *     request_timeout: 2s            # the REQUEST line must come within it (at most timeout)
 *     nonce_ttl: 5s                  # a challenge must be answered within it
 *     max_message: 64KiB             # one message line (1KiB-1MiB)
 *     secrets:                       # what may be released, and to whom
 *       - name: db-key               # 1-63 characters A-Z a-z 0-9 _ . -
 *         policy: {pcrs: {0: HEX}, sim_root: /etc/airlock/sim-root.pem}  # attest/policy.h
 *
 * Pure: the config parser links this alone. */
#ifndef AIRLOCK_BROKER_CONF_H
#define AIRLOCK_BROKER_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "attest/policy.h"
#include "core/units.h"
#include "net/endpoint.h"

#define BROKER_SECRETS_MAX 256
#define BROKER_CONNECTIONS_MAX 4096
#define BROKER_MESSAGE_MIN 1024
#define BROKER_MESSAGE_MAX (1024 * 1024)

struct broker_secret_conf {
    char name[CONF_NAME_MAX];
    struct attest_policy_conf policy;
};

struct broker_conf {
    bool enabled; /* a broker: block is present */
    struct endpoint listen;
    char dir[CONF_FILE_PATH_MAX];
    char key_file[CONF_FILE_PATH_MAX];
    unsigned max_connections;
    unsigned max_per_peer; /* 0: half of max_connections (at least 1) */
    unsigned timeout_ms;
    unsigned request_timeout_ms;
    unsigned nonce_ttl_ms;
    size_t max_message;
    struct broker_secret_conf *secrets; /* owned (config_free); n_secrets entries */
    size_t n_secrets;
};

/* Fills *bc with the defaults (max_connections 64, max_per_peer half of
 * them, timeout 10s, request_timeout 2s, nonce_ttl 5s, max_message 64KiB,
 * no secrets); not enabled. */
void broker_conf_defaults(struct broker_conf *bc);

/* The rules that span keys: nonce_ttl and request_timeout within timeout,
 * max_per_peer within max_connections. Returns 0, or -1 with *f naming the
 * key at fault. */
int broker_conf_check(const struct broker_conf *bc, struct conf_fault *f);

/* How many of the connections one peer may hold: max_per_peer, or half of
 * max_connections (at least 1) when it is not set. */
unsigned broker_conf_per_peer(const struct broker_conf *bc);

/* Are a and b the same settings? Field by field, strings by their text,
 * secrets by content (their loaded certificates aside). */
bool broker_conf_equal(const struct broker_conf *a, const struct broker_conf *b);

/* Are the settings a running broker keeps until the next start (listen,
 * max_connections, max_message) the same in a and b? */
bool broker_conf_same_start(const struct broker_conf *a, const struct broker_conf *b);

/* Secret i's name against those before it: 0, or -1 with *f (key "name"). */
int broker_secret_unique(const struct broker_conf *bc, size_t i, struct conf_fault *f);

#endif
