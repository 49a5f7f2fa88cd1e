/* broker.h - the key broker role (docs/attestation.md, "Key broker"):
 * releases a named secret, sealed at rest (seal.h), only to a requester
 * whose fresh evidence binds the broker's nonce and the requester's
 * ephemeral public key and meets the secret's policy, wrapped to that key
 * (wrap.h). The messages are proto/kb.h.
 *
 * It runs on a thread and loop of its own, so evidence verification never
 * holds a relay's worker. Bounded: max_connections at once (more are
 * closed at accept), one exchange per connection within timeout, a
 * challenge answered within nonce_ttl and used once, messages of at most
 * max_message bytes. Every release and refusal is one log line (reason,
 * secret, peer, a summary of the requester's claims; never the secret) and
 * a counter. */
#ifndef AIRLOCK_BROKER_BROKER_H
#define AIRLOCK_BROKER_BROKER_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/conf.h"
#include "core/strbuf.h"

struct broker;

/* Loads what conf names (the at-rest key, each secret's policy
 * certificates) into a broker that is not started: `airlock check` calls
 * this alone. Returns it, or NULL with a one-line reason in err (errlen
 * bytes). Free with broker_stop(). */
struct broker *broker_load(const struct broker_conf *conf, char *err, size_t errlen);

/* Listens on the conf's endpoint and serves on a new thread. Returns 0, or
 * -errno with a reason in err. */
int broker_start(struct broker *b, char *err, size_t errlen);

/* Whether a file b read (key_file, a policy's roots, sim_root or
 * collateral) is not the one it read (rewritten, replaced, gone). Any
 * thread. */
bool broker_files_changed(struct broker *b);

/* A reload: running b takes what fresh (broker_load() of the new config,
 * not started) loaded: its secrets and their policies, the at-rest key,
 * dir, the timeouts and max_per_peer; listen, max_connections and
 * max_message stay b's until the next start (broker_conf_same_start()).
 * Swapped on b's thread between two events, and waited for: exchanges
 * under way are judged by the new policies (one whose secret is gone is
 * refused), counters carry over by secret name. Frees fresh. */
void broker_adopt(struct broker *b, struct broker *fresh);

/* Stops the thread (if started), closes every connection and frees b;
 * NULL is harmless. */
void broker_stop(struct broker *b);

/* Appends the broker's counters in Prometheus text: releases per secret,
 * refusals per secret and reason. Any thread. */
void broker_metrics(struct broker *b, struct strbuf *out);

#endif
