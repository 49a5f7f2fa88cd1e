/* tls.h - what the connections of an attested relay share: the SSL_CTX of
 * its tls: listener (a key made in memory, a certificate carrying evidence,
 * renewed on a timer) and the bound on fresh evidence (docs/attestation.md,
 * "Attested TLS in the relay"). Not in the static build (no attest/).
 *
 * A relay owns one struct relay_tls (relay->tls). The certificate lives in
 * a generation: a renewal makes a new one for the connections that come
 * next, and each connection holds the generation it started with until it
 * ends, so a renewal never touches an existing connection. */
#ifndef AIRLOCK_RELAY_TLS_H
#define AIRLOCK_RELAY_TLS_H

#include <openssl/ssl.h>

#include "attest/claims.h"
#include "core/loop.h"

struct relay;
struct relay_conf;
struct relay_tls;
struct tls_gen;

/* Sets up r->tls when r has tls: (provider, first certificate: this
 * blocks as long as the provider takes) or verify: (the policy's
 * certificates, a client context); does nothing otherwise. Returns 0 or
 * -errno, the reason logged. Call before relay_start(). */
int relay_tls_open(struct relay *r);

/* What rc's file alone cannot tell (airlock check and run, before
 * anything starts): tls:'s sim root and verify:'s policy files load here.
 * Returns 0, or -errno with "KEY: what is wrong" in why (len bytes). */
int relay_tls_check_host(const struct relay_conf *rc, char *why, size_t len);

/* Whether a file t read (tls:'s sim root, verify:'s roots and sim root) is
 * not the one it read (rewritten, replaced, gone): a reload then replaces
 * the relay as for a changed config, so that a root taken out of a file is
 * no longer trusted. NULL: false. */
bool relay_tls_files_changed(const struct relay_tls *t);

/* Starts renewing t's certificate on loop (the accepting loop). */
void relay_tls_start(struct relay_tls *t, struct loop *loop);

/* Stops renewing; idempotent. On the loop given to relay_tls_start(). */
void relay_tls_stop(struct relay_tls *t);

/* Frees t (after relay_tls_stop(), with the relay's last reference): the
 * generations still held by connections live until those end. NULL is
 * fine. */
void relay_tls_free(struct relay_tls *t);

/* A server SSL for the accepted socket fd of client (its
 * transport_client_key(): a client's share of fresh evidence) on the
 * current certificate, with *gen the generation it uses (release with
 * tls_gen_unref() once the connection ends). Any thread. Returns NULL on
 * ENOMEM. */
SSL *relay_tls_accept(struct relay_tls *t, int fd, const char *client, struct tls_gen **gen);

/* Gives back a connection's generation; NULL is fine. Any thread. */
void tls_gen_unref(struct tls_gen *g);

/* verify: a client SSL for the connected target socket fd: the server
 * name, and a fresh nonce when fresh evidence is asked for. Any thread.
 * Returns NULL on ENOMEM. */
SSL *relay_tls_connect(struct relay_tls *t, int fd);

/* verify: after the handshake of ssl (from relay_tls_connect()): the
 * server's evidence (fresh, or its certificate's) is bound to its TLS key
 * and meets the relay's policy, of the policy's type. Fills *claims.
 * Returns ATTEST_OK or why not, with one line in err (ATTEST_ERR_MAX). */
enum attest_result relay_tls_verify(struct relay_tls *t, SSL *ssl, struct attest_claims *claims,
                                    char *err);

#endif
