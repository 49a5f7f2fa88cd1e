/* server.c - smartgrid-server: the reference application's HTTPS server.
 *
 * One user per process lifetime. The first mutual-TLS handshake whose
 * client certificate names the user of its SNI (<user>.grid.<domain>) binds
 * the process to that user and prints "LOGIN <user>"; every later handshake
 * for another user fails. The server presents the user's own certificate
 * (DIR/<user>.crt and .key, brought in with the user's state), so that no
 * instance holds a key that could pose as another user's server; --cert
 * and --key give one certificate for every user instead, for a server
 * outside a pool. POST /login opens the user's SQLCipher database
 * (DIR/<user>.db, put there by the pool's provisioning) with the key
 * the client sends; POST /logout (or the session's expiry) closes it,
 * prints "LOGOUT" and exits 0. Event lines go to stdout, logs to stderr.
 *
 * A poll() loop over the listener and a few connections: the process serves
 * one user, so database work runs inline.
 *
 * Slots: MAX_CONNS connections at most, of which --max-handshakes may be
 * still in their TLS handshake (unauthenticated: anyone can open them);
 * the rest are kept for connections whose handshake proved the bound
 * user's client certificate. A handshake gets --handshake-timeout, an
 * established connection closes after --idle-timeout without traffic. A
 * new connection that finds the handshake slots full takes the slot of a
 * handshake of the client address that holds the most of them (a /64 for
 * IPv6; behind a router, --accept-proxy v2: the address its PROXY header
 * names), of those the one that got least far (no ClientHello yet, then
 * a ClientHello, then one paused for the user's certificate), idle the
 * longest; a handshake that completes when the established slots are
 * full takes the slot of the connection idle the longest. So connections
 * from one address push out only each other once they hold two slots, and
 * never a handshake of an address that holds fewer: one address, or fewer
 * than --max-handshakes - 1, can delay the user, never lock them out nor
 * cut the handshake of one connection of theirs (ClientHellos naming the
 * user included: once the user logged in, the router passes them all on). */
#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <http_parser.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "attest/provider.h"
#include "attest/ratls.h"
#include "attest/sim.h"
#include "core/file.h"
#include "core/log.h"
#include "core/units.h"
#include "db.h"
#include "http.h"
#include "net/endpoint.h"
#include "net/sockdiag.h"
#include "net/transport.h"
#include "proto/proxy_v2.h"
#include "tlsio.h"

#define MAX_CONNS 16
#define MAX_HEAD 8192
/* answers waiting to be sent above which a connection's next request waits:
 * a client that pipelines requests and reads no answer holds about this
 * much, not one answer per request it sent */
#define OUT_HIGH (64 * 1024)
#define USER_MAX 64
#define READING_MAX 1e15  /* power, impedance, tension, a threshold: at most, either sign */
#define CLOSE_LOG_MS 1000 /* closes a peer can cause: one line per second and reason */
#define LINGER_MS 1000    /* a connection to close drops its input this long at most */

enum srv_state {
    SRV_WAITING, /* no user yet: WAITING_LOGIN */
    SRV_BOUND,   /* a user's handshake bound the process: LOGIN <user> */
    SRV_SESSION, /* POST /login opened the database */
};

struct conn {
    struct sg_tls t;
    char sni_user[USER_MAX + 1]; /* the user named by this connection's SNI */
    uint64_t cert_until;         /* waiting for the user's certificate until then */
    int identified;              /* the handshake's user was checked */
    uint64_t accepted_ms;        /* the handshake's deadline counts from here */
    uint64_t active_ms;          /* the last traffic (the idle timeout) */
    int close_after;             /* close once the output is sent */
    uint64_t linger_until;       /* then discard input until EOF or this time */
    int refused;                 /* a bad PROXY header: input discarded as above */
    size_t dropped;              /* what was discarded (transport_linger()) */
    short events;
    /* the client's address as the handshake slots count it
     * (transport_client_key()); "" while its PROXY header is due */
    char client[TRANSPORT_CLIENT_MAX];
    int header_due; /* --accept-proxy: the header is not read yet */
    size_t hdr_len; /* of it, read so far into hdr */
    uint8_t hdr[PROXY_V2_READ_MAX];
};

struct opts {
    struct endpoint listen;
    const char *dir, *cert, *key, *ca;
    char suffix[256]; /* ".grid.<domain>" */
    unsigned ttl_ms, state_wait_ms;
    unsigned handshake_ms, idle_ms; /* 0: no idle timeout */
    unsigned max_handshakes;        /* slots for connections still in the handshake */
    enum proxy_mode accept_proxy;   /* connections begin with a PROXY v2 header */
    long proxy_uid;                 /* its sender's uid, when on this machine (-1: any) */
    size_t max_body;
    bool state_poll; /* --state-poll: look for the state every 10 ms, no inotify */
    const char *attest_provider, *sim_root; /* RA-TLS fresh evidence (NULL: none) */
};

struct server {
    struct opts o;
    SSL_CTX *ctx;
    int lfd;
    int state_watch; /* inotify on --dir (wait_state(), paused handshakes), or -1 */
    enum srv_state state;
    char user[USER_MAX + 1];
    sqlite3 *db;
    char token[65];
    uint64_t deadline_ms; /* bound: login by then; session: expiry */
    struct conn conns[MAX_CONNS];
    struct ratls_source attest; /* provider NULL: no attestation */
    struct attest_sim sim;      /* --attest-provider sim: signs with a leaf of --sim-root */
    EVP_PKEY *sim_key;
    X509 *sim_root;
    /* without --cert: reads a user's private key (user_key_load()) */
    OSSL_DECODER_CTX *key_decoder;
    EVP_PKEY *decoded_key; /* where key_decoder puts what it read */
};

static struct server srv;

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
event_line(const char *fmt, const char *arg)
{
    printf(fmt, arg);
    fflush(stdout);
}

/* ---- identity: SNI and client certificate */

/* Copies the user of servername "<user><suffix>" into out, in lower case (a
 * server name is not case-sensitive, and neither is the certificate check:
 * USER1 and user1 are one user, whose state is user1's); returns 0, or -1
 * when the name is not below the suffix or the user is not [A-Za-z0-9_-]. */
static int
sni_user(const char *name, char *out)
{
    size_t n = strlen(name), s = strlen(srv.o.suffix);
    if (n <= s || n - s > USER_MAX || strcasecmp(name + n - s, srv.o.suffix) != 0)
        return -1;
    for (size_t i = 0; i < n - s; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return -1;
        out[i] = (char)tolower((unsigned char)c);
    }
    out[n - s] = '\0';
    return 0;
}

static int
on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)arg;
    struct conn *c = SSL_get_app_data(ssl);
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

    if (name == NULL || sni_user(name, c->sni_user) != 0) {
        log_info("handshake refused reason=bad_sni");
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (srv.state != SRV_WAITING && strcmp(c->sni_user, srv.user) != 0) {
        log_info("handshake refused reason=other_user");
        *alert = SSL_AD_ACCESS_DENIED;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* Copies the ClientHello's host_name (its first server_name entry, as
 * OpenSSL reads it) into out[size]; returns 0, or -1 when there is none. */
static int
hello_servername(SSL *ssl, char *out, size_t size)
{
    const unsigned char *p;
    size_t len;

    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) != 1 || len < 5)
        return -1;
    size_t list = (size_t)p[0] << 8 | p[1], n = (size_t)p[3] << 8 | p[4];
    if (list != len - 2 || p[2] != TLSEXT_NAMETYPE_host_name || n == 0 || n > list - 3 ||
        n >= size || memchr(p + 5, '\0', n) != NULL)
        return -1;
    memcpy(out, p + 5, n);
    out[n] = '\0';
    return 0;
}

/* Reads the PEM private key at path with the decoder made at start
 * (tls_context()): OpenSSL 3 builds a decoder chain for every
 * SSL_use_PrivateKey_file(), about 0.5 ms here, which this handshake, the
 * user's login, would wait for. Returns the key (the caller frees it) or
 * NULL (not a regular file, not a key, or over 16 KiB). The file's bytes
 * are wiped before returning. */
static EVP_PKEY *
user_key_load(const char *path)
{
    char *pem = NULL;
    size_t len = 0;

    srv.decoded_key = NULL;
    if (file_read_regular(path, 0, 16384, &pem, &len) != 0)
        return NULL;
    const unsigned char *p = (const unsigned char *)pem;
    size_t left = len;
    if (OSSL_DECODER_from_data(srv.key_decoder, &p, &left) != 1) {
        EVP_PKEY_free(srv.decoded_key);
        srv.decoded_key = NULL;
    }
    OPENSSL_cleanse(pem, len);
    free(pem);
    return srv.decoded_key;
}

/* Without --cert, the server's certificate is the SNI user's own,
 * DIR/<user>.crt with DIR/<user>.key: the pool's provisioning brings
 * them in with the user's state when the directory reserves this instance
 * for the user, which happens at the user's ClientHello, so they may land
 * just after it. The handshake is then suspended (SSL_CLIENT_HELLO_RETRY;
 * run() retries it when the directory changes) without holding up other
 * connections, for up to --state-wait. A name that is no user's, or not
 * the bound user's, passes here: on_servername() refuses it. */
static int
on_client_hello(SSL *ssl, int *alert, void *arg)
{
    struct conn *c = SSL_get_app_data(ssl);
    char name[256], user[USER_MAX + 1], crt[PATH_MAX], key[PATH_MAX];
    (void)arg;

    if (hello_servername(ssl, name, sizeof(name)) != 0 || sni_user(name, user) != 0 ||
        (srv.state != SRV_WAITING && strcmp(user, srv.user) != 0))
        return SSL_CLIENT_HELLO_SUCCESS;
    snprintf(crt, sizeof(crt), "%s/%s.crt", srv.o.dir, user);
    snprintf(key, sizeof(key), "%s/%s.key", srv.o.dir, user);
    if (access(crt, F_OK) == 0 && access(key, F_OK) == 0) {
        EVP_PKEY *pkey = user_key_load(key);
        int ok = pkey != NULL && SSL_use_certificate_chain_file(ssl, crt) == 1 &&
                 SSL_use_PrivateKey(ssl, pkey) == 1 && SSL_check_private_key(ssl) == 1;
        EVP_PKEY_free(pkey);
        if (ok)
            return SSL_CLIENT_HELLO_SUCCESS;
        sg_tls_log_errors("certificate");
        log_warnx("handshake refused reason=bad_certificate user=%s", user);
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    uint64_t now = now_ms();
    if (c->cert_until == 0) {
        c->cert_until = now + srv.o.state_wait_ms;
        log_info("handshake waiting for the certificate of user=%s", user);
    }
    if (now < c->cert_until)
        return SSL_CLIENT_HELLO_RETRY;
    log_info("handshake refused reason=no_certificate user=%s", user);
    *alert = SSL_AD_HANDSHAKE_FAILURE;
    return SSL_CLIENT_HELLO_ERROR;
}

/* The leaf certificate must name the SNI's user: a subjectAltName DNS entry,
 * or the subject CN when there is none (X509_check_host). */
static int
on_verify(int ok, X509_STORE_CTX *xs)
{
    if (!ok || X509_STORE_CTX_get_error_depth(xs) != 0)
        return ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct conn *c = SSL_get_app_data(ssl);
    X509 *cert = X509_STORE_CTX_get_current_cert(xs);
    if (c->sni_user[0] != '\0' &&
        X509_check_host(cert, c->sni_user, 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) == 1)
        return 1;
    log_info("handshake refused reason=certificate_not_for_user");
    X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

static SSL_CTX *
tls_context(const struct opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* no resumption: every connection presents and checks its certificate;
     * OpenSSL's copy of what it decrypted is wiped once read */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_CLEANSE_PLAINTEXT | SG_TLS_OPTIONS);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if ((o->cert != NULL && (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1 ||
                             SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1)) ||
        SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
        sg_tls_log_errors("setup");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (o->cert == NULL) {
        srv.key_decoder = OSSL_DECODER_CTX_new_for_pkey(&srv.decoded_key, "PEM", NULL, NULL,
                                                        OSSL_KEYMGMT_SELECT_KEYPAIR, NULL, NULL);
        if (srv.key_decoder == NULL) {
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_client_hello_cb(ctx, on_client_hello, NULL);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, on_verify);
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    return ctx;
}

/* ---- responses */

static void
respond(struct conn *c, int status, cJSON *body)
{
    char *text = cJSON_PrintUnformatted(body);
    char head[256];
    size_t blen = text ? strlen(text) : 0;

    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     status, http_status_str((enum http_status)status), blen,
                     c->close_after ? "Connection: close\r\n" : "");
    if (sg_tls_send(&c->t, head, (size_t)n) != 0 || sg_tls_send(&c->t, text, blen) != 0)
        c->close_after = 1;
    cJSON_free(text);
    cJSON_Delete(body);
}

static void
respond_error(struct conn *c, int status, const char *msg)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "error", msg);
    respond(c, status, b);
}

/* ---- the database operations */

/* Answers 500 for a failed database call; finalizes st (may be NULL). */
static void
db_error(struct conn *c, sqlite3_stmt *st)
{
    log_warnx("db error user=%s error=\"%s\"", srv.user, sqlite3_errmsg(srv.db));
    sqlite3_finalize(st);
    respond_error(c, 500, "database error");
}

/* Runs the prepared insert once per item of rows, inside one transaction;
 * bind() binds one item and returns 0, or -1 when the item is invalid.
 * Every item is checked before the transaction starts: all or nothing. */
typedef int (*bind_fn)(sqlite3_stmt *st, const cJSON *item);

static void
insert_rows(struct conn *c, const cJSON *rows, const char *sql, bind_fn bind)
{
    sqlite3_stmt *st = NULL;
    const cJSON *item;
    int n = 0;

    if (!cJSON_IsArray(rows) || cJSON_GetArraySize(rows) == 0) {
        respond_error(c, 400, "expected a non-empty array of rows");
        return;
    }
    if (sqlite3_prepare_v2(srv.db, sql, -1, &st, NULL) != SQLITE_OK)
        goto fail;
    cJSON_ArrayForEach(item, rows)
    {
        if (bind(st, item) != 0) {
            sqlite3_finalize(st);
            respond_error(c, 400, "invalid row");
            return;
        }
        sqlite3_reset(st);
    }
    if (sg_db_exec(srv.db, "BEGIN IMMEDIATE;") != 0)
        goto fail;
    cJSON_ArrayForEach(item, rows)
    {
        bind(st, item);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sg_db_exec(srv.db, "ROLLBACK;");
            goto fail;
        }
        sqlite3_reset(st);
        n++;
    }
    if (sg_db_exec(srv.db, "COMMIT;") != 0) {
        sg_db_exec(srv.db, "ROLLBACK;");
        goto fail;
    }
    sqlite3_finalize(st);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddNumberToObject(b, "written", n);
    respond(c, 200, b);
    return;
fail:
    db_error(c, st);
}

static int
metric_column(const char *m)
{
    return m != NULL &&
           (strcmp(m, "power") == 0 || strcmp(m, "impedance") == 0 || strcmp(m, "tension") == 0);
}

/* A reading or threshold: a finite number of at most READING_MAX in
 * magnitude (cJSON reads 1e999 as infinity, which would make every average
 * over it null for good; a sum of readings this size cannot overflow). */
static bool
reading(const cJSON *v)
{
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && fabs(v->valuedouble) <= READING_MAX;
}

static int
bind_alarm(sqlite3_stmt *st, const cJSON *a)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(a, "metric");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(a, "threshold");
    if (!cJSON_IsString(m) || !metric_column(m->valuestring) || !reading(t))
        return -1;
    sqlite3_bind_text(st, 1, m->valuestring, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, t->valuedouble);
    return 0;
}

static int
bind_metric(sqlite3_stmt *st, const cJSON *r)
{
    static const char *const cols[] = {"power", "impedance", "tension"};
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(r, "timestamp");
    if (!cJSON_IsNumber(ts) || ts->valuedouble < 0 || ts->valuedouble > 1e15 ||
        ts->valuedouble != (double)(int64_t)ts->valuedouble)
        return -1;
    sqlite3_bind_int64(st, 1, (int64_t)ts->valuedouble);
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, cols[i]);
        if (!reading(v))
            return -1;
        sqlite3_bind_double(st, i + 2, v->valuedouble);
    }
    return 0;
}

/* Parses the optional integer parameter name of q into *v; returns 0, or -1
 * when it is present and not a decimal integer. */
static int
query_int(struct sg_slice q, const char *name, int64_t *v)
{
    struct sg_slice s;
    char buf[24];
    if (!sg_query_param(q, name, &s))
        return 0;
    if (s.len == 0 || s.len >= sizeof(buf))
        return -1;
    memcpy(buf, s.p, s.len);
    buf[s.len] = '\0';
    char *end;
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *v = x;
    return 0;
}

static void
query_avg(struct conn *c, struct sg_slice q)
{
    static const char *const sql[] = {
        "SELECT avg(power), count(*) FROM metrics WHERE timestamp BETWEEN ?1 AND ?2;",
        "SELECT avg(impedance), count(*) FROM metrics WHERE timestamp BETWEEN ?1 AND ?2;",
        "SELECT avg(tension), count(*) FROM metrics WHERE timestamp BETWEEN ?1 AND ?2;"};
    static const char *const names[] = {"power", "impedance", "tension"};
    struct sg_slice m;
    int64_t from = INT64_MIN, to = INT64_MAX;
    int i;
    sqlite3_stmt *st = NULL;

    if (!sg_query_param(q, "metric", &m)) {
        respond_error(c, 400, "metric is required");
        return;
    }
    for (i = 0; i < 3; i++)
        if (m.len == strlen(names[i]) && memcmp(m.p, names[i], m.len) == 0)
            break;
    if (i == 3 || query_int(q, "from", &from) != 0 || query_int(q, "to", &to) != 0) {
        respond_error(c, 400, "expected metric=power|impedance|tension, from and to integers");
        return;
    }
    if (sqlite3_prepare_v2(srv.db, sql[i], -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    if (sqlite3_step(st) != SQLITE_ROW)
        goto fail;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "metric", names[i]);
    if (sqlite3_column_type(st, 0) == SQLITE_NULL)
        cJSON_AddNullToObject(b, "avg");
    else
        cJSON_AddNumberToObject(b, "avg", sqlite3_column_double(st, 0));
    cJSON_AddNumberToObject(b, "count", (double)sqlite3_column_int64(st, 1));
    sqlite3_finalize(st);
    respond(c, 200, b);
    return;
fail:
    db_error(c, st);
}

/* ---- login and logout */

/* Waits up to --state-wait for the pool's provisioning to put the user's
 * database in place (it renames it in, so existence means complete). The
 * copy usually runs while the client sends its login request: inotify on
 * --dir wakes the wait the moment the file lands, where polling would add
 * its interval to every LOGIN (it does: every 10 ms, where inotify cannot
 * see the file land, state_watch_open()). The inotify instance is made once, at
 * start, and lives as long as the process: closing one costs the kernel an
 * RCU grace period (about 20 ms here), which would land on the login. */
static int
wait_state(const char *path)
{
    uint64_t until = now_ms() + srv.o.state_wait_ms;
    char ev[4096];

    for (bool said = false;; said = true) {
        if (access(path, F_OK) == 0)
            return 0;
        uint64_t now = now_ms();
        if (now >= until)
            return -ENOENT;
        if (!said) /* the hook is late: worth a line (and the tests wait for it) */
            log_info("login waiting for the state user=%s", srv.user);
        /* without inotify (out of instances or watches): look every 10 ms */
        struct pollfd p = {.fd = srv.state_watch, .events = POLLIN};
        if (poll(&p, 1, srv.state_watch >= 0 ? (int)(until - now) : 10) > 0)
            while (read(srv.state_watch, ev, sizeof(ev)) > 0)
                ;
    }
}

static void
login(struct conn *c, const cJSON *req)
{
    char path[PATH_MAX];
    unsigned char rnd[32];
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(req, "key");

    if (srv.state == SRV_SESSION) {
        respond_error(c, 409, "already logged in");
        return;
    }
    if (!cJSON_IsString(key) || !sg_db_key_valid(key->valuestring, strlen(key->valuestring))) {
        respond_error(c, 400, "key must be 64 hex digits");
        return;
    }
    snprintf(path, sizeof(path), "%s/%s.db", srv.o.dir, srv.user);
    if (wait_state(path) != 0) {
        log_info("login failed user=%s reason=no_state", srv.user);
        respond_error(c, 503, "user state not available");
        return;
    }
    int rc = sg_db_open(path, key->valuestring, SG_KEY_HEX, 0, &srv.db);
    if (rc == -EACCES) {
        log_info("login failed user=%s reason=wrong_key", srv.user);
        respond_error(c, 401, "wrong key");
        return;
    }
    if (rc != 0 || RAND_bytes(rnd, sizeof(rnd)) != 1) {
        log_warnx("login failed user=%s reason=open_error", srv.user);
        respond_error(c, 500, "cannot open the database");
        return;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(srv.token + 2 * i, 3, "%02x", rnd[i]);
    srv.state = SRV_SESSION;
    srv.deadline_ms = now_ms() + srv.o.ttl_ms;
    log_info("session open user=%s ttl_ms=%u", srv.user, srv.o.ttl_ms);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "token", srv.token);
    cJSON_AddNumberToObject(b, "expires_in", srv.o.ttl_ms / 1000.0);
    respond(c, 200, b);
}

/* Sends what c still holds (bounded wait), closes everything, prints LOGOUT
 * and exits 0: the process never serves another user. */
static noreturn void
logout(struct conn *c, const char *reason)
{
    uint64_t until = now_ms() + 2000;
    while (c != NULL && sg_tls_pending(&c->t) && now_ms() < until) {
        short ev;
        if (sg_tls_step(&c->t, &ev) != 0)
            break;
        struct pollfd p = {.fd = c->t.fd, .events = ev};
        poll(&p, 1, 100);
    }
    if (srv.db != NULL)
        sqlite3_close(srv.db); /* every operation committed its own transaction */
    srv.db = NULL;
    for (int i = 0; i < MAX_CONNS; i++)
        if (srv.conns[i].t.state != SG_TLS_CLOSED)
            sg_tls_close(&srv.conns[i].t);
    close(srv.lfd);
    transport_unlisten(&srv.o.listen);
    SSL_CTX_free(srv.ctx);
    explicit_bzero(srv.token, sizeof(srv.token));
    log_info("logout user=%s reason=%s", srv.user, reason);
    event_line("LOGOUT\n", "");
    exit(0);
}

/* ---- requests */

static int
token_ok(struct sg_slice auth)
{
    static const char bearer[] = "Bearer ";
    size_t b = sizeof(bearer) - 1;
    return srv.state == SRV_SESSION && auth.len == b + 64 && memcmp(auth.p, bearer, b) == 0 &&
           CRYPTO_memcmp(auth.p + b, srv.token, 64) == 0;
}

static int
is(struct sg_slice path, const char *s)
{
    return path.len == strlen(s) && memcmp(path.p, s, path.len) == 0;
}

static void
handle(struct conn *c, const struct sg_http_msg *m)
{
    static const char *const posts[] = {"/login", "/logout", "/write", "/long_write"};
    int post = -1;

    if (!m->keep_alive)
        c->close_after = 1;
    for (int i = 0; i < 4; i++)
        if (is(m->path, posts[i]))
            post = i;
    if (post < 0 && !is(m->path, "/query_avg")) {
        respond_error(c, 404, "no such operation");
        return;
    }
    if ((post >= 0 && m->method != HTTP_POST) || (post < 0 && m->method != HTTP_GET)) {
        respond_error(c, 405, "method not allowed");
        return;
    }
    if (post != 0 && !token_ok(m->auth)) {
        respond_error(c, 401, "missing or invalid token");
        return;
    }
    if (post == 1) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "status", "logged out");
        c->close_after = 1;
        respond(c, 200, b);
        logout(c, "request");
    }
    if (post < 0) {
        query_avg(c, m->query);
        return;
    }
    cJSON *req = cJSON_ParseWithLength(m->body.p, m->body.len);
    if (!cJSON_IsObject(req)) {
        cJSON_Delete(req);
        respond_error(c, 400, "malformed JSON");
        return;
    }
    if (post == 0)
        login(c, req);
    else if (post == 2)
        insert_rows(c, cJSON_GetObjectItemCaseSensitive(req, "alarms"),
                    "INSERT INTO alarms (metric, threshold) VALUES (?1, ?2);", bind_alarm);
    else
        insert_rows(c, cJSON_GetObjectItemCaseSensitive(req, "metrics"),
                    "INSERT INTO metrics (timestamp, power, impedance, tension) "
                    "VALUES (?1, ?2, ?3, ?4);",
                    bind_metric);
    cJSON_Delete(req);
}

/* The handshake is done: bind the process to its user on the first one. */
static int
identify(struct conn *c)
{
    c->identified = 1;
    if (srv.state == SRV_WAITING) {
        memcpy(srv.user, c->sni_user, sizeof(srv.user));
        srv.state = SRV_BOUND;
        srv.deadline_ms = now_ms() + srv.o.ttl_ms;
        log_info("bound user=%s", srv.user);
        event_line("LOGIN %s\n", srv.user);
        return 0;
    }
    return strcmp(c->sni_user, srv.user) == 0 ? 0 : -1;
}

/* Parses and answers the complete requests c holds while fewer than
 * OUT_HIGH bytes of answers wait; returns how many. */
static int
serve_input(struct conn *c)
{
    int served = 0;
    while (!c->close_after && c->t.in_len > 0 && c->t.out_len - c->t.out_off < OUT_HIGH) {
        struct sg_http_msg m;
        size_t len;
        enum sg_http_fault fault;
        const char *err;
        enum parse_result r = sg_http_parse(c->t.in, c->t.in_len, 0, MAX_HEAD, srv.o.max_body, &m,
                                            &len, &fault, &err);
        if (r == PARSE_AGAIN)
            break;
        served++;
        if (r == PARSE_INVALID) {
            log_info("bad request user=%s error=\"%s\"", srv.user, err);
            c->close_after = 1;
            respond_error(c, fault == SG_HTTP_TOO_LARGE ? 413 : 400,
                          fault == SG_HTTP_TOO_LARGE ? "request too large" : "malformed request");
            break;
        }
        handle(c, &m);
        sg_tls_consume(&c->t, len);
    }
    return served;
}

static void
conn_close(struct conn *c)
{
    sg_tls_close(&c->t);
}

/* Why the server closes a connection a peer kept: timeouts and evictions. */
enum close_why {
    CW_HANDSHAKE_TIMEOUT,
    CW_IDLE_TIMEOUT,
    CW_HANDSHAKE_EVICTED,
    CW_IDLE_EVICTED,
    CW_N
};

static const char *const close_names[CW_N] = {"handshake_timeout", "idle_timeout",
                                              "handshake_slots_full", "idle_evicted"};

/* Closes c for why: counted, logged at most once per second and reason
 * (a peer opens as many as it likes). */
static void
conn_drop(struct conn *c, enum close_why why)
{
    static struct log_rate rate[CW_N];
    static unsigned long long total[CW_N];
    unsigned long quiet;

    total[why]++;
    if (log_rate_ok(&rate[why], now_ms(), CLOSE_LOG_MS, &quiet))
        log_info("connection closed reason=%s user=%s client=%s total=%llu quiet_before=%lu",
                 close_names[why], c->identified ? srv.user : "-",
                 c->client[0] != '\0' ? c->client : "-", total[why], quiet);
    conn_close(c);
}

/* The identified connection idle the longest, other than except; NULL
 * when there is none. */
static struct conn *
oldest_identified(const struct conn *except)
{
    struct conn *best = NULL;

    for (int i = 0; i < MAX_CONNS; i++) {
        struct conn *c = &srv.conns[i];
        if (c == except || c->t.state == SG_TLS_CLOSED || !c->identified)
            continue;
        if (best == NULL || c->active_ms < best->active_ms)
            best = c;
    }
    return best;
}

/* How far a handshake got: no whole ClientHello yet (silent, part of one,
 * or its PROXY header not read), a ClientHello naming a user this
 * instance may serve, paused for that user's certificate (the first login
 * of a pooled instance). */
static int
progress(const struct conn *c)
{
    return c->t.paused ? 2 : c->sni_user[0] != '\0' ? 1 : 0;
}

/* The handshake slots c's client address holds (c's own included). */
static int
client_handshakes(const struct conn *c)
{
    int n = 0;

    for (int i = 0; i < MAX_CONNS; i++) {
        const struct conn *o = &srv.conns[i];
        n += o->t.state != SG_TLS_CLOSED && !o->identified && strcmp(o->client, c->client) == 0;
    }
    return n;
}

/* Whether handshake c, whose client address holds n handshake slots, is to
 * be pushed out before handshake b, whose holds bn: more slots, then less
 * far, then idle longer. */
static bool
evicted_before(const struct conn *c, int n, const struct conn *b, int bn)
{
    if (n != bn)
        return n > bn;
    if (progress(c) != progress(b))
        return progress(c) < progress(b);
    return c->active_ms < b->active_ms;
}

/* The handshake a newcomer takes the place of when the handshake slots are
 * full: of the client address that holds the most of them, the one that
 * got least far, idle the longest. So one address's connections push out
 * each other, not the handshake of a user on its way from another. */
static struct conn *
handshake_victim(void)
{
    struct conn *best = NULL;
    int best_n = 0;

    for (int i = 0; i < MAX_CONNS; i++) {
        struct conn *c = &srv.conns[i];
        if (c->t.state == SG_TLS_CLOSED || c->identified)
            continue;
        int n = client_handshakes(c);
        if (best == NULL || evicted_before(c, n, best, best_n)) {
            best = c;
            best_n = n;
        }
    }
    return best;
}

static int
count_open(int identified)
{
    int n = 0;

    for (int i = 0; i < MAX_CONNS; i++)
        n += srv.conns[i].t.state != SG_TLS_CLOSED && srv.conns[i].identified == identified;
    return n;
}

/* A handshake that proved the user's certificate needs an established
 * slot: when they are all taken (by the user's own connections), the one
 * idle the longest makes room. */
static void
make_room(struct conn *c)
{
    if (count_open(1) > MAX_CONNS - (int)srv.o.max_handshakes)
        conn_drop(oldest_identified(c), CW_IDLE_EVICTED);
}

/* c's client is the peer of its socket fd (left "" when it has none). */
static void
client_of_peer(struct conn *c, int fd)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof(peer);

    if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0)
        transport_client_key(fd, (struct sockaddr *)&peer, c->client, sizeof(c->client));
}

/* --proxy-uid: a PROXY header is believed from a peer on this machine only
 * when its socket is that uid's (the router's). Another local process, a
 * neighbouring instance whose uid reaches this port on loopback, would
 * name any address it likes, and so push the user's handshakes out of
 * their slots. A peer on another machine is the network's to allow. */
static bool
proxy_peer_ok(int fd)
{
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    uid_t uid;
    int rc;

    if (srv.o.accept_proxy != PROXY_V2 || srv.o.proxy_uid < 0)
        return true;
    if (srv.o.listen.kind == EP_UNIX)
        rc = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 ? 0 : -errno;
    else
        rc = sockdiag_peer_uid(fd, &uid);
    if (srv.o.listen.kind == EP_UNIX && rc == 0)
        uid = cred.uid;
    if ((rc == 0 && uid == (uid_t)srv.o.proxy_uid) || rc == -ENOENT)
        return true;
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    char desc[TRANSPORT_DESC_MAX] = "-";
    if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
        transport_describe((struct sockaddr *)&peer, plen, desc, sizeof(desc));
    if (rc == 0)
        log_info("connection refused reason=proxy_peer client=%s uid=%u", desc, (unsigned)uid);
    else
        log_info("connection refused reason=proxy_peer client=%s error=\"%s\"", desc,
                 strerror(-rc));
    return false;
}

/* --accept-proxy v2: reads the PROXY v2 header c begins with into c->hdr,
 * the fixed part and then the length it gives, never a byte of the TLS
 * behind it; its source becomes c's client (a LOCAL header: the peer's
 * own address). Returns PARSE_AGAIN until it is whole, PARSE_INVALID for a
 * bad header, one over PROXY_V2_READ_MAX bytes or a client that closed
 * inside it (logged: c is to be closed). */
static enum parse_result
proxy_header(struct conn *c)
{
    struct proxy_info info;
    size_t len;
    const char *err = "connection closed inside the header";
    enum parse_result r = PARSE_AGAIN;

    while (r == PARSE_AGAIN) {
        size_t want = PROXY_V2_FIXED_LEN;
        if (c->hdr_len >= PROXY_V2_FIXED_LEN)
            want += (size_t)c->hdr[14] << 8 | c->hdr[15];
        if (want > sizeof(c->hdr)) {
            err = "header larger than 4096 bytes";
            break;
        }
        ssize_t n = recv(c->t.fd, c->hdr + c->hdr_len, want - c->hdr_len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return PARSE_AGAIN;
        if (n <= 0)
            break;
        c->hdr_len += (size_t)n;
        r = proxy_v2_parse(c->hdr, c->hdr_len, &info, &len, &err);
    }
    if (r != PARSE_OK) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        char desc[TRANSPORT_DESC_MAX] = "-";
        if (getpeername(c->t.fd, (struct sockaddr *)&peer, &plen) == 0)
            transport_describe((struct sockaddr *)&peer, plen, desc, sizeof(desc));
        log_info("connection refused reason=bad_proxy_header client=%s error=\"%s\"", desc, err);
        return PARSE_INVALID;
    }
    c->header_due = 0;
    if (info.cmd == PROXY_CMD_PROXY && info.family != AF_UNSPEC)
        transport_client_key(-1, (struct sockaddr *)&info.src, c->client, sizeof(c->client));
    else
        client_of_peer(c, c->t.fd);
    log_debug("proxy header client=%s", c->client);
    return PARSE_OK;
}

/* c sent a bad PROXY header: its write side is shut and what it sent on
 * is read and dropped until it closes (up to LINGER_MS), so that it sees
 * an end, not the reset of a socket closed with input unread. */
static void
conn_refuse(struct conn *c)
{
    if (shutdown(c->t.fd, SHUT_WR) != 0 || transport_linger(c->t.fd, &c->dropped) != 0) {
        conn_close(c);
        return;
    }
    c->refused = 1;
    c->events = POLLIN;
    c->linger_until = now_ms() + LINGER_MS;
}

/* Once its answer is sent, a connection to close lingers (up to LINGER_MS):
 * the input is read and dropped until the client closes, so that a client
 * still sending a refused body reads the answer instead of a reset. */
static void
service(struct conn *c)
{
    if (c->refused) {
        if (transport_linger(c->t.fd, &c->dropped) != 0 || now_ms() >= c->linger_until)
            conn_close(c);
        return;
    }
    if (c->header_due) {
        enum parse_result r = proxy_header(c);
        if (r == PARSE_INVALID) {
            conn_refuse(c);
            return;
        }
        if (r == PARSE_AGAIN) {
            c->events = POLLIN;
            return;
        }
    }
    for (;;) {
        if (sg_tls_step(&c->t, &c->events) != 0) {
            const char *why = srv.attest.provider != NULL ? ratls_ssl_error(c->t.ssl) : NULL;
            if (why != NULL)
                log_warnx("handshake refused reason=attestation error=\"%s\"", why);
            conn_close(c);
            return;
        }
        if (c->t.state == SG_TLS_OPEN && !c->identified) {
            if (identify(c) != 0) {
                conn_close(c);
                return;
            }
            make_room(c);
        }
        if (c->t.state != SG_TLS_OPEN)
            break;
        if (c->close_after)
            sg_tls_consume(&c->t, c->t.in_len);
        /* no readiness wanted: the step stopped at its read budget, and
         * poll() would not wake for what OpenSSL or the socket still hold */
        int budget = c->events == 0 && !c->t.eof && c->t.in_len < c->t.in_max;
        if (serve_input(c) == 0 && !budget)
            break;
    }
    if (sg_tls_pending(&c->t))
        return;
    if (c->t.eof || (c->close_after && c->linger_until != 0 && now_ms() >= c->linger_until))
        conn_close(c);
    else if (c->close_after && c->linger_until == 0)
        c->linger_until = now_ms() + LINGER_MS;
}

/* The sim leaf lasts 3 h (as NSM's do): a server up for longer signs its
 * evidence with a fresh one, made between handshakes. */
static void
sim_renew(void)
{
    time_t now = time(NULL);

    if (srv.sim.leaf != NULL && ratls_cert_expires(srv.sim.leaf) > now + 600)
        return;
    attest_sim_close(&srv.sim);
    if (attest_sim_init(&srv.sim, srv.sim_key, srv.sim_root, now) != 0)
        log_warnx("attestation sim: cannot issue a leaf certificate (sim evidence)");
}

static void
accept_all(void)
{
    for (;;) {
        int fd = transport_accept(srv.lfd);
        if (fd < 0)
            return;
        transport_tune(fd, srv.o.listen.kind, false);
        /* the handshake slots full: the one that got least far makes room
         * (the established slots are never taken by an unauthenticated
         * peer) */
        if (count_open(0) >= (int)srv.o.max_handshakes)
            conn_drop(handshake_victim(), CW_HANDSHAKE_EVICTED);
        struct conn *c = NULL;
        for (int i = 0; i < MAX_CONNS && c == NULL; i++)
            if (srv.conns[i].t.state == SG_TLS_CLOSED)
                c = &srv.conns[i];
        if (c == NULL) { /* cannot happen: make_room() keeps one free */
            log_warnx("connection refused reason=too_many");
            close(fd);
            continue;
        }
        if (srv.sim_key != NULL)
            sim_renew();
        memset(c, 0, sizeof(*c));
        c->accepted_ms = c->active_ms = now_ms();
        c->header_due = srv.o.accept_proxy == PROXY_V2;
        if (!c->header_due)
            client_of_peer(c, fd);
        if (sg_tls_open(&c->t, fd, srv.ctx, 1, MAX_HEAD + srv.o.max_body) != 0)
            continue;
        SSL_set_app_data(c->t.ssl, c);
        if (!proxy_peer_ok(fd)) {
            conn_refuse(c); /* it sees an end, not a reset */
            continue;
        }
        service(c);
    }
}

/* Returns t lowered to the ms left until `until` (t < 0: no timeout yet). */
static int
timeout_until(int t, uint64_t until)
{
    uint64_t now = now_ms();
    int left = until > now ? (int)(until - now) : 0;

    return t < 0 || t > left ? left : t;
}

/* Closes the connections whose handshake or idle time is up; returns the
 * ms until the next such deadline (-1: none). A handshake paused for the
 * user's certificate is bounded by --state-wait (on_client_hello()); its
 * --handshake-timeout counts the client's time from when it goes on. */
static int
expire(uint64_t now)
{
    int timeout = -1;

    for (int i = 0; i < MAX_CONNS; i++) {
        struct conn *c = &srv.conns[i];
        uint64_t due;
        if (c->t.state == SG_TLS_CLOSED)
            continue;
        if (c->t.paused) {
            c->accepted_ms = now;
            continue;
        }
        if (!c->identified)
            due = c->accepted_ms + srv.o.handshake_ms;
        else if (srv.o.idle_ms > 0 && !sg_tls_pending(&c->t))
            due = c->active_ms + srv.o.idle_ms;
        else
            continue;
        if (now >= due)
            conn_drop(c, c->identified ? CW_IDLE_TIMEOUT : CW_HANDSHAKE_TIMEOUT);
        else
            timeout = timeout_until(timeout, due);
    }
    return timeout;
}

static void
run(void)
{
    struct pollfd p[MAX_CONNS + 2];
    int idx[MAX_CONNS + 2];
    char ev[4096];

    for (;;) {
        int n = 0, timeout = expire(now_ms()), watch = -1, paused = 0;
        p[n++] = (struct pollfd){.fd = srv.lfd, .events = POLLIN};
        for (int i = 0; i < MAX_CONNS; i++) {
            struct conn *c = &srv.conns[i];
            if (c->t.state == SG_TLS_CLOSED)
                continue;
            idx[n] = i;
            /* a paused handshake waits for its certificate, not for the
             * socket: only the client leaving (RDHUP, HUP, ERR) matters */
            p[n++] = (struct pollfd){.fd = c->t.fd, .events = c->t.paused ? POLLRDHUP : c->events};
            if (c->t.paused) {
                paused = 1;
                timeout = timeout_until(timeout, c->cert_until);
            }
        }
        if (paused && srv.state_watch >= 0) {
            watch = n;
            p[n++] = (struct pollfd){.fd = srv.state_watch, .events = POLLIN};
        } else if (paused) {
            timeout = timeout > 10 ? 10 : timeout; /* without inotify: look every 10 ms */
        }
        if (srv.state != SRV_WAITING) {
            if (now_ms() >= srv.deadline_ms)
                logout(NULL, "expired");
            timeout = timeout_until(timeout, srv.deadline_ms);
        }
        for (int i = 0; i < MAX_CONNS; i++)
            if (srv.conns[i].t.state != SG_TLS_CLOSED && srv.conns[i].linger_until != 0)
                timeout = timeout < 0 || timeout > 1000 ? 1000 : timeout;
        if (poll(p, (nfds_t)n, timeout) < 0) {
            if (errno == EINTR)
                continue;
            fatal("poll");
        }
        if (watch >= 0 && p[watch].revents)
            while (read(srv.state_watch, ev, sizeof(ev)) > 0)
                ;
        for (int i = 1; i < n; i++) {
            if (i == watch)
                continue;
            struct conn *c = &srv.conns[idx[i]];
            if (p[i].revents)
                c->active_ms = now_ms();
            if (c->t.paused && p[i].revents) {
                log_info("handshake abandoned reason=client_left");
                conn_close(c);
            } else if (!c->t.paused &&
                       (p[i].revents || (c->linger_until != 0 && now_ms() >= c->linger_until))) {
                service(c);
            }
        }
        if (p[0].revents)
            accept_all();
        /* paused handshakes last: what the others just did may decide them
         * (a user bound the process), as may a file that landed */
        for (int i = 0; i < MAX_CONNS; i++)
            if (srv.conns[i].t.state != SG_TLS_CLOSED && srv.conns[i].t.paused)
                service(&srv.conns[i]);
    }
}

/* ---- command line */

static noreturn void
usage(void)
{
    fprintf(stderr,
            "usage: smartgrid-server --listen tcp:HOST:PORT|unix:PATH --dir DIR --ca PEM\n"
            "           [--cert PEM --key PEM] [--domain example] [--session-ttl 15m]\n"
            "           [--state-wait 10s] [--state-poll] [--max-body 4MiB]\n"
            "           [--handshake-timeout 3s] [--idle-timeout 60s] [--max-handshakes 4]\n"
            "           [--accept-proxy v2|none [--proxy-uid UID]]\n"
            "           [--log-level info] [--attest-provider nitro|tsm|sim [--sim-root FILE]]\n"
            "Without --cert/--key, each user's own certificate DIR/<user>.crt and .key.\n");
    exit(2);
}

static void
parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {{"listen", required_argument, NULL, 'l'},
                                          {"dir", required_argument, NULL, 'd'},
                                          {"cert", required_argument, NULL, 'c'},
                                          {"key", required_argument, NULL, 'k'},
                                          {"ca", required_argument, NULL, 'a'},
                                          {"domain", required_argument, NULL, 'D'},
                                          {"session-ttl", required_argument, NULL, 't'},
                                          {"state-wait", required_argument, NULL, 'w'},
                                          {"max-body", required_argument, NULL, 'b'},
                                          {"handshake-timeout", required_argument, NULL, 'H'},
                                          {"idle-timeout", required_argument, NULL, 'I'},
                                          {"max-handshakes", required_argument, NULL, 'M'},
                                          {"log-level", required_argument, NULL, 'L'},
                                          {"attest-provider", required_argument, NULL, 'A'},
                                          {"sim-root", required_argument, NULL, 'R'},
                                          {"state-poll", no_argument, NULL, 'P'},
                                          {"accept-proxy", required_argument, NULL, 'X'},
                                          {"proxy-uid", required_argument, NULL, 'U'},
                                          {NULL, 0, NULL, 0}};
    const char *listen = NULL, *domain = "example", *err;
    int ch;

    o->ttl_ms = 15 * 60 * 1000;
    o->state_wait_ms = 10 * 1000;
    o->max_body = 4 << 20;
    o->handshake_ms = 3 * 1000;
    o->idle_ms = 60 * 1000;
    o->max_handshakes = 4;
    o->proxy_uid = -1;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'l':
            listen = optarg;
            break;
        case 'd':
            o->dir = optarg;
            break;
        case 'c':
            o->cert = optarg;
            break;
        case 'k':
            o->key = optarg;
            break;
        case 'a':
            o->ca = optarg;
            break;
        case 'D':
            domain = optarg;
            break;
        case 't':
            if (units_duration(optarg, &o->ttl_ms) != 0 || o->ttl_ms == 0)
                fatalx("--session-ttl: expected a duration such as 15m");
            break;
        case 'w':
            if (units_duration(optarg, &o->state_wait_ms) != 0)
                fatalx("--state-wait: expected a duration such as 10s");
            break;
        case 'b':
            if (units_size(optarg, &o->max_body) != 0 || o->max_body == 0)
                fatalx("--max-body: expected a size such as 4MiB");
            break;
        case 'H':
            if (units_duration(optarg, &o->handshake_ms) != 0 || o->handshake_ms == 0)
                fatalx("--handshake-timeout: expected a duration such as 5s");
            break;
        case 'I':
            if (units_duration(optarg, &o->idle_ms) != 0)
                fatalx("--idle-timeout: expected a duration such as 60s (0: none)");
            break;
        case 'M': {
            char *end;
            unsigned long m = strtoul(optarg, &end, 10);
            if (*optarg < '0' || *optarg > '9' || *end != '\0' || m < 1 || m >= MAX_CONNS)
                fatalx("--max-handshakes: expected an integer from 1 to %d", MAX_CONNS - 1);
            o->max_handshakes = (unsigned)m;
            break;
        }
        case 'L':
            if (log_level_parse(optarg, &log_threshold) != 0)
                fatalx("--log-level: expected error, warn, info or debug");
            break;
        case 'A':
            o->attest_provider = optarg;
            break;
        case 'R':
            o->sim_root = optarg;
            break;
        case 'P':
            o->state_poll = true;
            break;
        case 'X':
            if (strcmp(optarg, "v2") != 0 && strcmp(optarg, "none") != 0)
                fatalx("--accept-proxy: expected v2 or none");
            o->accept_proxy = strcmp(optarg, "v2") == 0 ? PROXY_V2 : PROXY_NONE;
            break;
        case 'U': {
            char *end;
            unsigned long u = strtoul(optarg, &end, 10);
            if (*optarg < '0' || *optarg > '9' || *end != '\0' || u >= (uid_t)-1)
                fatalx("--proxy-uid: expected a uid (a number)");
            o->proxy_uid = (long)u;
            break;
        }
        default:
            usage();
        }
    }
    if (optind != argc || !listen || !o->dir || !o->ca || !o->cert != !o->key)
        usage();
    if (endpoint_parse(listen, &o->listen, &err) != PARSE_OK ||
        (o->listen.kind != EP_TCP && o->listen.kind != EP_UNIX))
        fatalx("--listen: expected tcp:HOST:PORT or unix:PATH");
    if ((size_t)snprintf(o->suffix, sizeof(o->suffix), ".grid.%s", domain) >= sizeof(o->suffix))
        fatalx("--domain: too long");
    if (o->proxy_uid >= 0 && o->accept_proxy != PROXY_V2)
        fatalx("--proxy-uid: only with --accept-proxy v2");
}

/* --attest-provider: every client that brings a nonce gets fresh evidence
 * bound to the certificate this server presents (RA-TLS, attest/ratls.h). */
static void
attest_setup(void)
{
    const struct attest_provider *p = NULL;

    if (srv.o.attest_provider != NULL && (p = attest_provider_find(srv.o.attest_provider)) == NULL)
        fatalx("--attest-provider: expected nitro, tsm or sim");
    if ((p == &attest_provider_sim) != (srv.o.sim_root != NULL))
        fatalx("--attest-provider sim needs --sim-root FILE (and only it)");
    if (p == NULL)
        return;
    srv.attest.provider = p;
    if (p == &attest_provider_sim) {
        char why[ATTEST_ERR_MAX];
        if (attest_sim_root_read(srv.o.sim_root, &srv.sim_key, &srv.sim_root, why, sizeof(why)) !=
            0)
            fatalx("--sim-root %s (make one with `airlock attest get --provider sim "
                   "--sim-root FILE`)",
                   why);
        sim_renew();
        srv.attest.conf.sim = &srv.sim;
    }
    if (ratls_ctx_server(srv.ctx, &srv.attest) != 0)
        fatalx("cannot register the RA-TLS extension");
    log_info("attestation provider=%s%s", p->name,
             p == &attest_provider_sim ? " (sim evidence, not hardware)" : "");
}

/* The filesystem of --dir when it is one whose files can change without
 * the local kernel seeing it (9p, NFS, SMB, FUSE, virtiofs), else NULL:
 * inotify reports only changes made through this kernel, so a database a
 * pool's host writes into a guest's 9p share would never wake
 * wait_state(). Found by the device number in /proc/self/mountinfo, not
 * statfs(): a 9p statfs() reports the f_type of the host's filesystem. */
static const char *
remote_fs(const char *dir)
{
    static const char *const remote[] = {"9p", "nfs", "nfs4", "cifs", "smb3", "virtiofs"};
    static char fstype[32];
    const char *found = NULL;
    char line[4096];
    struct stat st;
    FILE *f;

    if (stat(dir, &st) != 0 || (f = fopen("/proc/self/mountinfo", "re")) == NULL)
        return NULL; /* not there: login's open reports it */
    /* ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE OPTIONS */
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned maj, min;
        const char *sep = strstr(line, " - ");
        if (sscanf(line, "%*u %*u %u:%u", &maj, &min) != 2 || sep == NULL ||
            makedev(maj, min) != st.st_dev || sscanf(sep + 3, "%31s", fstype) != 1)
            continue;
        for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++)
            if (strcmp(fstype, remote[i]) == 0)
                found = fstype;
        if (strncmp(fstype, "fuse", 4) == 0) /* fuse, fuseblk, fuse.sshfs, ... */
            found = fstype;
        break;
    }
    fclose(f);
    return found;
}

/* srv.state_watch: inotify on --dir, or -1 to poll every 10 ms (--state-poll,
 * a remote filesystem, or no inotify to be had); returns why it polls, or
 * NULL */
static const char *
state_watch_open(void)
{
    const char *why = srv.o.state_poll ? "option" : remote_fs(srv.o.dir);

    srv.state_watch = -1;
    if (why != NULL)
        return why;
    srv.state_watch = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (srv.state_watch >= 0 &&
        inotify_add_watch(srv.state_watch, srv.o.dir, IN_MOVED_TO | IN_CREATE) < 0) {
        close(srv.state_watch);
        srv.state_watch = -1;
    }
    return srv.state_watch < 0 ? "no_inotify" : NULL;
}

/* cJSON's free: what a request or a reply held (a login's key, a user's
 * readings, the token) is wiped first; with a free of its own, cJSON grows
 * its print buffers by copy and free, not realloc(), so they are wiped too */
static void
wiping_free(void *p)
{
    if (p != NULL)
        OPENSSL_cleanse(p, malloc_usable_size(p));
    free(p);
}

int
main(int argc, char **argv)
{
    log_std_fds();
    /* before anything is read: no other process, even of this uid (a
     * neighbour under a pool's shared user:, a descendant of this one), can
     * read this process's memory (the key, the decrypted pages) through
     * ptrace or /proc/PID/mem; no core dump holds them either */
    if (prctl(PR_SET_DUMPABLE, 0) != 0)
        fatal("prctl PR_SET_DUMPABLE");
    cJSON_InitHooks(&(cJSON_Hooks){.malloc_fn = malloc, .free_fn = wiping_free});
    parse_args(argc, argv, &srv.o);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < MAX_CONNS; i++)
        srv.conns[i].t = (struct sg_tls){.state = SG_TLS_CLOSED, .fd = -1};
    srv.ctx = tls_context(&srv.o);
    if (srv.ctx == NULL)
        fatalx("cannot load --cert, --key or --ca");
    attest_setup();
    srv.lfd = transport_listen(&srv.o.listen);
    if (srv.lfd < 0) {
        errno = -srv.lfd;
        fatal("listen");
    }
    const char *why = state_watch_open();
    log_info("smartgrid-server listening dir=%s state_watch=%s%s%s", srv.o.dir,
             srv.state_watch >= 0 ? "inotify" : "poll", why ? " reason=" : "", why ? why : "");
    event_line("WAITING_LOGIN\n", "");
    run();
}
