/* tls.c - an attested relay's TLS context: generations of key and
 * certificate, their renewal, the fresh-evidence bound (tls.h). */
#include "relay/tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "attest/policy.h"
#include "attest/provider.h"
#include "attest/ratls.h"
#include "attest/sim.h"
#include "attest/trust.h"
#include "core/backoff.h"
#include "core/file.h"
#include "core/log.h"
#include "core/ssl_reason.h"
#include "net/transport.h"
#include "relay/relay.h"

#define NONCE_LEN 32 /* bytes a client relay asks fresh evidence over */
#define RENEW_RETRY_MIN_MS 1000
#define RENEW_RETRY_MAX_MS 60000

/* Both sides' contexts: no tickets or renegotiation (below), a FIN without
 * close_notify passed on as a FIN, and the records OpenSSL decrypted wiped
 * once read and before their buffer is freed (SSL_MODE_RELEASE_BUFFERS
 * frees it whenever it is empty): they are the user's plaintext, which
 * must not stay behind in the heap. */
#define TLS_OPTIONS                                                                                \
    (SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |                   \
     SSL_OP_CLEANSE_PLAINTEXT)

/* One certificate and what made it: its context, and for sim the leaf
 * that signs its fresh evidence (its own, so that a renewal never changes
 * what a connection in its handshake is signing with). */
struct tls_gen {
    atomic_int refs;
    SSL_CTX *ctx;
    struct attest_sim sim;
    struct ratls_source src; /* borrowed by the context's fresh evidence */
    time_t issued, expires;
};

/* Tokens refilled at a rate per second, as many at once. */
struct bucket {
    double tokens;
    uint64_t refilled_ms;
};

/* One client's share of fresh evidence; key "" is free. */
#define FRESH_CLIENTS 256
#define FRESH_CLIENT_SHARE 4 /* a client may take a quarter of fresh_rate */
struct client_bucket {
    char key[TRANSPORT_CLIENT_MAX];
    struct bucket b;
};

struct relay_tls {
    struct relay *relay; /* the owner (name, settings, counters) */
    /* verify: */
    SSL_CTX *client_ctx;
    struct attest_policy_conf policy; /* the relay's, with its certificates loaded */
    const struct attest_provider *provider;
    EVP_PKEY *sim_root_key; /* provider sim: the root it signs under */
    X509 *sim_root;
    struct file_stamp sim_root_stamp; /* its file's, taken before it was read */
    pthread_mutex_t lock;             /* cur, and the fresh-evidence buckets */
    struct tls_gen *cur;
    struct bucket fresh;                         /* the relay's: fresh_rate */
    struct client_bucket clients[FRESH_CLIENTS]; /* a client's: its share */
    struct loop *loop;                           /* renewals; NULL when stopped */
    struct timer renew;
    struct backoff retry;
};

void
tls_gen_unref(struct tls_gen *g)
{
    if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    SSL_CTX_free(g->ctx);
    attest_sim_close(&g->sim);
    free(g);
}

/* A server SSL's client (transport_client_key()), an allocated string. */
static int client_index = -1;
static pthread_once_t client_index_once = PTHREAD_ONCE_INIT;

static void
client_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

static void
client_index_init(void)
{
    client_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, client_free);
}

/* Refills b at rate per second (as many at once) to now; true when it had
 * a token, which is then taken, or only looked at (take false). */
static bool
bucket_has(struct bucket *b, unsigned rate, uint64_t now, bool take)
{
    /* now was read before the lock: another thread may have refilled later */
    if (now > b->refilled_ms) {
        b->tokens += (double)(now - b->refilled_ms) * rate / 1000.0;
        b->refilled_ms = now;
    }
    if (b->tokens > rate)
        b->tokens = rate;
    if (b->tokens < 1.0)
        return false;
    if (take)
        b->tokens -= 1.0;
    return true;
}

/* The bucket of client (under t->lock): its own, else a free one, else
 * the one refilled longest ago (full again by now, or nearly), given to it. */
static struct bucket *
client_bucket(struct relay_tls *t, const char *client, unsigned share)
{
    struct client_bucket *cb = &t->clients[0];

    for (size_t i = 0; i < FRESH_CLIENTS; i++) {
        struct client_bucket *c = &t->clients[i];
        if (strcmp(c->key, client) == 0)
            return &c->b;
        if (c->key[0] == '\0' || (cb->key[0] != '\0' && c->b.refilled_ms < cb->b.refilled_ms))
            cb = c;
    }
    snprintf(cb->key, sizeof(cb->key), "%s", client);
    cb->b = (struct bucket){.tokens = share, .refilled_ms = loop_clock_ms()};
    return &cb->b;
}

/* Fresh evidence is made inside the handshake, on the worker's loop, for
 * as long as the provider takes: a ClientHello that asks for it takes a
 * token of its client's bucket (a quarter of fresh_rate: one client cannot
 * take the whole rate from the others) and of the relay's (fresh_rate per
 * second, as many at once), and is refused with a handshake_failure alert
 * when either has none. */
static int
fresh_gate(SSL *ssl, int *alert, void *arg)
{
    static struct log_rate refusals; /* every worker's: a peer can cause them at will */
    struct relay_tls *t = arg;
    struct relay_stats *st = t->relay->stats;
    unsigned rate = t->relay->conf.tls.fresh_rate;
    unsigned share = rate / FRESH_CLIENT_SHARE > 0 ? rate / FRESH_CLIENT_SHARE : 1;
    const char *client = SSL_get_ex_data(ssl, client_index);
    const unsigned char *ext;
    size_t len;
    uint64_t now = loop_clock_ms();
    unsigned long quiet;
    bool ok;

    if (SSL_client_hello_get0_ext(ssl, RATLS_TLS_EXT, &ext, &len) != 1)
        return SSL_CLIENT_HELLO_SUCCESS; /* the certificate's evidence: nothing to make */
    pthread_mutex_lock(&t->lock);
    struct bucket *mine = client_bucket(t, client != NULL ? client : "", share);
    ok = bucket_has(mine, share, now, false) && bucket_has(&t->fresh, rate, now, true);
    if (ok)
        bucket_has(mine, share, now, true);
    pthread_mutex_unlock(&t->lock);
    atomic_fetch_add_explicit(&st->tls_fresh[ok ? TLS_FRESH_SERVED : TLS_FRESH_REFUSED], 1,
                              memory_order_relaxed);
    if (ok)
        return SSL_CLIENT_HELLO_SUCCESS;
    if (log_rate_ok(&refusals, now, 1000, &quiet))
        log_warnx("relay=%s tls fresh evidence refused: over fresh_evidence_rate %u/s "
                  "(%lu more refusals not logged)",
                  t->relay->conf.name, rate, quiet);
    *alert = SSL_AD_HANDSHAKE_FAILURE;
    return SSL_CLIENT_HELLO_ERROR;
}

/* Issues a key and a certificate carrying evidence for g at now. */
static int
gen_issue(struct relay_tls *t, struct tls_gen *g, time_t now, char *err)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int rc = ratls_issue(&g->src, now, t->relay->conf.tls.validity_ms / 1000, &key, &cert, err);

    if (rc != 0)
        return rc;
    if (SSL_CTX_use_certificate(g->ctx, cert) != 1 || SSL_CTX_use_PrivateKey(g->ctx, key) != 1) {
        rc = -EINVAL;
        snprintf(err, ATTEST_ERR_MAX, "the certificate does not load: %s", ssl_reason());
    } else if ((rc = ratls_ctx_server(g->ctx, &g->src)) != 0) {
        /* registered even with fresh_evidence_rate 0: OpenSSL shows
         * fresh_gate() only the extensions a context knows */
        snprintf(err, ATTEST_ERR_MAX, "cannot offer fresh evidence");
    }
    g->issued = now;
    g->expires = ratls_cert_expires(cert);
    if (rc == 0 && g->expires <= now) { /* a renewal would spin */
        rc = -EINVAL;
        snprintf(err, ATTEST_ERR_MAX, "the certificate expires at once (the evidence's lifetime)");
    }
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

/* A new generation, issued at now. */
static struct tls_gen *
gen_new(struct relay_tls *t, time_t now, char *err)
{
    struct tls_gen *g = calloc(1, sizeof(*g));

    if (g == NULL || (g->ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        snprintf(err, ATTEST_ERR_MAX, "out of memory");
        free(g);
        return NULL;
    }
    atomic_init(&g->refs, 1);
    g->src.provider = t->provider;
    if (t->sim_root != NULL && attest_sim_init(&g->sim, t->sim_root_key, t->sim_root, now) != 0) {
        snprintf(err, ATTEST_ERR_MAX, "sim: cannot issue the leaf certificate");
        goto fail;
    }
    if (t->sim_root != NULL)
        g->src.conf.sim = &g->sim;
    SSL_CTX_set_min_proto_version(g->ctx, TLS1_2_VERSION);
    /* every connection gets the certificate and its evidence: no session
     * resumption, which would skip both; a FIN without close_notify is
     * passed on as a FIN (nginx and haproxy do the same) */
    SSL_CTX_set_session_cache_mode(g->ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(g->ctx, 0);
    SSL_CTX_set_options(g->ctx, TLS_OPTIONS);
    SSL_CTX_set_mode(g->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_client_hello_cb(g->ctx, fresh_gate, t);
    if (gen_issue(t, g, now, err) != 0)
        goto fail;
    return g;
fail:
    tls_gen_unref(g);
    return NULL;
}

static void renew(struct timer *tm);

/* Schedules the next renewal of the current generation: at 2/3 of its
 * lifetime. */
static void
renew_schedule(struct relay_tls *t, time_t now)
{
    const struct tls_gen *g = t->cur;
    time_t at = g->issued + (g->expires - g->issued) * 2 / 3;

    timer_start(t->loop, &t->renew, at > now ? (uint64_t)(at - now) * 1000 : 0, renew, t);
}

static void
renew(struct timer *tm)
{
    struct relay_tls *t = tm->data;
    char err[ATTEST_ERR_MAX];
    time_t now = time(NULL);
    struct tls_gen *g = gen_new(t, now, err), *old;

    if (g == NULL) {
        unsigned delay = backoff_next(&t->retry);
        atomic_fetch_add_explicit(&t->relay->stats->tls_renewals[TLS_RENEW_FAILED], 1,
                                  memory_order_relaxed);
        log_warnx("relay=%s tls certificate renewal failed (the current one expires in %llds, "
                  "retry in %ums): %s",
                  t->relay->conf.name, (long long)(t->cur->expires - now), delay, err);
        timer_start(t->loop, &t->renew, delay, renew, t);
        return;
    }
    backoff_reset(&t->retry);
    pthread_mutex_lock(&t->lock);
    old = t->cur;
    t->cur = g;
    pthread_mutex_unlock(&t->lock);
    tls_gen_unref(old);
    atomic_fetch_add_explicit(&t->relay->stats->tls_renewals[TLS_RENEW_OK], 1,
                              memory_order_relaxed);
    log_info("relay=%s tls certificate renewed provider=%s expires_in=%llds", t->relay->conf.name,
             t->relay->conf.tls.provider, (long long)(g->expires - now));
    renew_schedule(t, now);
}

/* Reads the sim root at path: 0, or -errno with the reason in err. */
static int
sim_root_read(const char *path, EVP_PKEY **key, X509 **cert, char *err)
{
    char why[ATTEST_ERR_MAX];
    int rc = attest_sim_root_read(path, key, cert, why, sizeof(why));

    if (rc != 0)
        snprintf(err, ATTEST_ERR_MAX, "sim_root: %.240s", why);
    return rc;
}

int
relay_tls_check_host(const struct relay_conf *rc, char *why, size_t len)
{
    char err[ATTEST_ERR_MAX];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int ret = 0;

    if (rc->tls.enabled && rc->tls.sim_root[0] != '\0') {
        ret = sim_root_read(rc->tls.sim_root, &key, &cert, err);
        EVP_PKEY_free(key);
        X509_free(cert);
        if (ret != 0)
            snprintf(why, len, "tls.%s", err);
    }
    if (ret == 0 && rc->verify.enabled) {
        struct attest_policy_conf pc = rc->verify.policy;
        ret = attest_policy_conf_load(&pc, err);
        attest_policy_conf_free(&pc);
        if (ret != 0)
            snprintf(why, len, "verify.policy: %s", err);
    }
    return ret;
}

bool
relay_tls_files_changed(const struct relay_tls *t)
{
    if (t == NULL)
        return false;
    const struct relay_conf *rc = &t->relay->conf;
    if (rc->tls.sim_root[0] != '\0' && !file_stamp_same(rc->tls.sim_root, &t->sim_root_stamp))
        return true;
    return rc->verify.enabled && attest_policy_files_changed(&t->policy);
}

/* tls: the sim root, the first generation. */
static int
server_open(struct relay_tls *t, char *err)
{
    const struct relay_tls_conf *tc = &t->relay->conf.tls;
    int rc;

    t->retry = (struct backoff)BACKOFF_INIT(RENEW_RETRY_MIN_MS, RENEW_RETRY_MAX_MS);
    t->fresh = (struct bucket){.tokens = tc->fresh_rate, .refilled_ms = loop_clock_ms()};
    pthread_once(&client_index_once, client_index_init);
    t->provider = attest_provider_find(tc->provider);
    if (tc->sim_root[0] != '\0') {
        (void)file_stamp(tc->sim_root, &t->sim_root_stamp); /* before the read */
        if ((rc = sim_root_read(tc->sim_root, &t->sim_root_key, &t->sim_root, err)) != 0)
            return rc;
    }
    if ((t->cur = gen_new(t, time(NULL), err)) == NULL)
        return -EINVAL;
    log_info("relay=%s tls listener ready provider=%s%s expires_in=%llds", t->relay->conf.name,
             tc->provider, t->sim_root != NULL ? " (sim evidence, not hardware)" : "",
             (long long)(t->cur->expires - time(NULL)));
    return 0;
}

/* verify: the policy's certificates, the client context. */
static int
client_open(struct relay_tls *t, char *err)
{
    const struct relay_verify_conf *vc = &t->relay->conf.verify;
    int rc;

    t->policy = vc->policy;
    if ((rc = attest_policy_conf_load(&t->policy, err)) != 0)
        return rc;
    if ((t->client_ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
        ratls_ctx_client(t->client_ctx) != 0) {
        snprintf(err, ATTEST_ERR_MAX, "out of memory");
        return -ENOMEM;
    }
    /* fresh evidence travels in TLS 1.3's CertificateEntry; the server's
     * key is trusted through its evidence (relay_tls_verify), not a CA */
    SSL_CTX_set_min_proto_version(t->client_ctx, vc->fresh ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_verify(t->client_ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(t->client_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(t->client_ctx, TLS_OPTIONS);
    SSL_CTX_set_mode(t->client_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
    log_info("relay=%s verify ready policy=%s%s fresh=%s", t->relay->conf.name,
             attest_kind_name(vc->policy.type),
             vc->policy.sim_root[0] != '\0' ? " (sim evidence accepted)" : "",
             vc->fresh ? "yes" : "no");
    return 0;
}

int
relay_tls_open(struct relay *r)
{
    struct relay_tls *t;
    char err[ATTEST_ERR_MAX] = "out of memory";
    int rc = -ENOMEM;

    if (!r->conf.tls.enabled && !r->conf.verify.enabled)
        return 0;
    if ((t = calloc(1, sizeof(*t))) != NULL) {
        t->relay = r;
        pthread_mutex_init(&t->lock, NULL);
        rc = r->conf.tls.enabled ? server_open(t, err) : client_open(t, err);
    }
    if (rc != 0) {
        log_warnx("relay=%s %s: %s", r->conf.name, r->conf.tls.enabled ? "tls" : "verify", err);
        relay_tls_free(t);
        return rc;
    }
    r->tls = t;
    return 0;
}

void
relay_tls_start(struct relay_tls *t, struct loop *loop)
{
    if (t->cur == NULL) /* verify: nothing to renew */
        return;
    t->loop = loop;
    renew_schedule(t, time(NULL));
}

void
relay_tls_stop(struct relay_tls *t)
{
    if (t == NULL || t->loop == NULL)
        return;
    timer_stop(t->loop, &t->renew);
    t->loop = NULL;
}

void
relay_tls_free(struct relay_tls *t)
{
    if (t == NULL)
        return;
    tls_gen_unref(t->cur);
    SSL_CTX_free(t->client_ctx);
    attest_policy_conf_free(&t->policy);
    EVP_PKEY_free(t->sim_root_key);
    X509_free(t->sim_root);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

SSL *
relay_tls_accept(struct relay_tls *t, int fd, const char *client, struct tls_gen **gen)
{
    struct tls_gen *g;
    SSL *ssl = NULL;
    char *key = strdup(client);

    pthread_mutex_lock(&t->lock);
    g = t->cur;
    atomic_fetch_add(&g->refs, 1);
    pthread_mutex_unlock(&t->lock);
    if (key == NULL || (ssl = SSL_new(g->ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
        SSL_set_ex_data(ssl, client_index, key) != 1) {
        free(key);
        SSL_free(ssl);
        tls_gen_unref(g);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    *gen = g;
    return ssl;
}

SSL *
relay_tls_connect(struct relay_tls *t, int fd)
{
    const struct relay_verify_conf *vc = &t->relay->conf.verify;
    uint8_t nonce[NONCE_LEN];
    SSL *ssl = SSL_new(t->client_ctx);

    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 ||
        (vc->server_name[0] != '\0' && SSL_set_tlsext_host_name(ssl, vc->server_name) != 1) ||
        (vc->fresh && (RAND_bytes(nonce, sizeof(nonce)) != 1 ||
                       ratls_ssl_request_fresh(ssl, nonce, sizeof(nonce)) != 0))) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_connect_state(ssl);
    return ssl;
}

enum attest_result
relay_tls_verify(struct relay_tls *t, SSL *ssl, struct attest_claims *claims, char *err)
{
    struct attest_policy pol;

    attest_policy_conf_fill(&t->policy, time(NULL), &pol);
    return ratls_ssl_verify(ssl, &pol, claims, err);
}
