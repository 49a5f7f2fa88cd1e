/* provision.c - smartgrid-provision: everything a smartgrid deployment and
 * its load generator need, in one output directory:
 *
 *   ca.pem ca.key              the CA of servers and clients
 *   server.pem server.key      wildcard server certificate *.grid.<domain>,
 *                              for servers outside a pool (--cert)
 *   users/<user>.pem .key      client certificates (CN and SAN DNS = user)
 *   db/<user>.db               SQLCipher databases with <days> of 15-second
 *                              synthetic meter data
 *   db/<user>.crt .key         the user's own server certificate
 *                              (<user>.grid.<domain>), kept with the user's
 *                              state: the pool brings it into the user's
 *                              instance only, which cannot pose as any
 *                              other user's server
 *   keys.csv                   "user,key" lines (64 hex digits each)
 *
 * Certificates are made with OpenSSL's C API (P-256 keys): no process per
 * certificate, so a few hundred users take seconds. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "db.h"

#define SAMPLE_S 15

enum cert_kind { CERT_CA, CERT_SERVER, CERT_CLIENT };

struct opts {
    const char *out, *prefix, *domain;
    unsigned users, first, days;
    long long end; /* last sample's timestamp (unix seconds) */
};

static int
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (ext == NULL)
        return -1;
    int rc = X509_add_ext(cert, ext, -1) == 1 ? 0 : -1;
    X509_EXTENSION_free(ext);
    return rc;
}

/* Returns a certificate for key named cn (SAN DNS san unless NULL), signed
 * by ca_key as ca (self-signed when ca is NULL); the caller frees it. */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, const char *san, enum cert_kind kind, X509 *ca,
          EVP_PKEY *ca_key)
{
    static const char *const usage[] = {"critical,CA:TRUE", "serverAuth", "clientAuth"};
    unsigned char serial[16];
    char sanbuf[300];
    X509 *c = X509_new();
    BIGNUM *bn = NULL;

    if (c == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
        goto fail;
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    X509_NAME *name = X509_get_subject_name(c);
    if (bn == NULL || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) ||
        X509_set_version(c, 2) != 1 || !X509_gmtime_adj(X509_getm_notBefore(c), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(c), 3650L * 86400) || X509_set_pubkey(c, key) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(c, ca ? X509_get_subject_name(ca) : name) != 1)
        goto fail;
    X509 *issuer = ca ? ca : c;
    if (kind == CERT_CA) {
        if (add_ext(c, issuer, NID_basic_constraints, usage[0]) ||
            add_ext(c, issuer, NID_key_usage, "critical,keyCertSign,cRLSign"))
            goto fail;
    } else if (add_ext(c, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
               add_ext(c, issuer, NID_key_usage, "critical,digitalSignature") ||
               add_ext(c, issuer, NID_ext_key_usage, usage[kind])) {
        goto fail;
    }
    if (add_ext(c, issuer, NID_subject_key_identifier, "hash") ||
        (ca && add_ext(c, issuer, NID_authority_key_identifier, "keyid")))
        goto fail;
    if (san != NULL) {
        snprintf(sanbuf, sizeof(sanbuf), "DNS:%s", san);
        if (add_ext(c, issuer, NID_subject_alt_name, sanbuf))
            goto fail;
    }
    if (X509_sign(c, ca_key ? ca_key : key, EVP_sha256()) == 0)
        goto fail;
    BN_free(bn);
    return c;
fail:
    BN_free(bn);
    X509_free(c);
    return NULL;
}

/* Writes cert to DIR/NAME.EXT (ext "pem" or "crt") and key to DIR/NAME.key
 * (mode 0600). */
static int
write_pair(const char *dir, const char *name, const char *ext, X509 *cert, EVP_PKEY *key)
{
    char path[PATH_MAX];
    FILE *f;
    int ok;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext) >= sizeof(path) ||
        (f = fopen(path, "w")) == NULL)
        return -1;
    ok = PEM_write_X509(f, cert);
    ok = (fclose(f) == 0) && ok;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s.key", dir, name) >= sizeof(path))
        return -1;
    umask(077);
    f = fopen(path, "w");
    umask(022);
    if (f == NULL || !ok)
        return -1;
    ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Reads back the CA of an earlier run, so that adding users keeps it. */
static int
load_ca(const char *out, X509 **ca, EVP_PKEY **key)
{
    char path[PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/ca.pem", out);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    *ca = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    snprintf(path, sizeof(path), "%s/ca.key", out);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return *ca && *key ? 0 : -1;
}

/* xorshift64*: deterministic synthetic data per user, no libc state */
static double
rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

/* Creates path (replacing any old file) with days of samples ending at end. */
static int
make_db(const char *path, const char *key, unsigned days, long long end, uint64_t seed)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    long long n = (long long)days * 86400 / SAMPLE_S;

    unlink(path);
    if (sg_db_open(path, key, SG_KEY_HEX, 1, &db) != 0)
        return -1;
    /* a file made in one go: a crash means running the tool again */
    if (sg_db_exec(db, "PRAGMA synchronous = OFF; PRAGMA journal_mode = MEMORY; BEGIN;") != 0 ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO metrics (timestamp, power, impedance, tension) "
                           "VALUES (?1, ?2, ?3, ?4);",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    for (long long i = 0; i < n; i++) {
        long long ts = end - (n - 1 - i) * SAMPLE_S;
        double day = sin(2 * M_PI * (double)(ts % 86400) / 86400.0);
        sqlite3_bind_int64(st, 1, ts);
        sqlite3_bind_double(st, 2, 1.5 + day + 0.3 * rnd(&seed));   /* kW */
        sqlite3_bind_double(st, 3, 0.4 + 0.05 * rnd(&seed));        /* ohm */
        sqlite3_bind_double(st, 4, 230 + 4 * day + 2 * rnd(&seed)); /* V */
        if (sqlite3_step(st) != SQLITE_DONE)
            goto fail;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sg_db_exec(db, "COMMIT;") != 0)
        goto fail;
    return sqlite3_close(db) == SQLITE_OK ? 0 : -1;
fail:
    log_warnx("db error path=%s error=\"%s\"", path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return -1;
}

static int
mkdir_p(const char *path)
{
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

static noreturn void
usage(void)
{
    fprintf(stderr, "usage: smartgrid-provision --out DIR [--users 10] [--first 1]\n"
                    "           [--prefix user] [--days 1] [--domain example] [--end UNIX_TIME]\n");
    exit(2);
}

static unsigned
number(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || *s == '\0' || v > 1000000)
        fatalx("%s: expected a number up to 1000000", what);
    return (unsigned)v;
}

static void
parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {
        {"out", required_argument, NULL, 'o'},   {"users", required_argument, NULL, 'u'},
        {"first", required_argument, NULL, 'f'}, {"prefix", required_argument, NULL, 'p'},
        {"days", required_argument, NULL, 'd'},  {"domain", required_argument, NULL, 'D'},
        {"end", required_argument, NULL, 'e'},   {NULL, 0, NULL, 0}};
    int ch;

    *o = (struct opts){.prefix = "user", .domain = "example", .users = 10, .first = 1, .days = 1};
    o->end = (long long)time(NULL) / SAMPLE_S * SAMPLE_S;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'o':
            o->out = optarg;
            break;
        case 'u':
            o->users = number(optarg, "--users");
            break;
        case 'f':
            o->first = number(optarg, "--first");
            break;
        case 'p':
            o->prefix = optarg;
            break;
        case 'd':
            o->days = number(optarg, "--days");
            break;
        case 'D':
            o->domain = optarg;
            break;
        case 'e': {
            char *end;
            errno = 0;
            o->end = strtoll(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || o->end < 0)
                fatalx("--end: expected a unix time");
            break;
        }
        default:
            usage();
        }
    }
    if (optind != argc || o->out == NULL || strlen(o->prefix) > 40 || strlen(o->domain) > 200)
        usage();
    /* a user is the first label of a server name, which the server reads in
     * lower case (names are not case-sensitive) */
    if (o->prefix[strspn(o->prefix, "abcdefghijklmnopqrstuvwxyz0123456789_-")] != '\0')
        fatalx("--prefix: expected lower-case letters, digits, '_' and '-'");
}

int
main(int argc, char **argv)
{
    struct opts o;
    char dir[PATH_MAX], name[64], path[PATH_MAX], host[256], key[SG_KEY_HEX + 1];
    unsigned char raw[SG_KEY_HEX / 2];
    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;

    parse_args(argc, argv, &o);
    if (mkdir_p(o.out) != 0)
        fatal("mkdir %s", o.out);
    snprintf(dir, sizeof(dir), "%s/users", o.out);
    snprintf(path, sizeof(path), "%s/db", o.out);
    if (mkdir_p(dir) != 0 || mkdir_p(path) != 0)
        fatal("mkdir");
    if (load_ca(o.out, &ca, &ca_key) != 0) {
        X509_free(ca);
        EVP_PKEY_free(ca_key);
        ca_key = EVP_EC_gen("P-256");
        ca = ca_key ? make_cert(ca_key, "smartgrid CA", NULL, CERT_CA, NULL, NULL) : NULL;
        if (ca == NULL || write_pair(o.out, "ca", "pem", ca, ca_key) != 0)
            fatalx("cannot make the CA");
    }
    snprintf(host, sizeof(host), "*.grid.%s", o.domain);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *c = k ? make_cert(k, host, host, CERT_SERVER, ca, ca_key) : NULL;
    if (c == NULL || write_pair(o.out, "server", "pem", c, k) != 0)
        fatalx("cannot make the server certificate");
    X509_free(c);
    EVP_PKEY_free(k);

    snprintf(path, sizeof(path), "%s/keys.csv", o.out);
    umask(077);
    FILE *keys = fopen(path, o.first == 1 ? "w" : "a");
    umask(022);
    if (keys == NULL)
        fatal("%s", path);
    for (unsigned i = o.first; i < o.first + o.users; i++) {
        snprintf(name, sizeof(name), "%s%04u", o.prefix, i);
        k = EVP_EC_gen("P-256");
        c = k ? make_cert(k, name, name, CERT_CLIENT, ca, ca_key) : NULL;
        if (c == NULL || write_pair(dir, name, "pem", c, k) != 0)
            fatalx("cannot make the certificate of %s", name);
        X509_free(c);
        EVP_PKEY_free(k);
        snprintf(host, sizeof(host), "%s.grid.%s", name, o.domain);
        snprintf(path, sizeof(path), "%s/db", o.out);
        k = EVP_EC_gen("P-256");
        c = k ? make_cert(k, host, host, CERT_SERVER, ca, ca_key) : NULL;
        if (c == NULL || write_pair(path, name, "crt", c, k) != 0)
            fatalx("cannot make the server certificate of %s", name);
        X509_free(c);
        EVP_PKEY_free(k);
        if (RAND_bytes(raw, sizeof(raw)) != 1)
            fatalx("RAND_bytes");
        for (size_t j = 0; j < sizeof(raw); j++)
            snprintf(key + 2 * j, 3, "%02x", raw[j]);
        snprintf(path, sizeof(path), "%s/db/%s.db", o.out, name);
        if (make_db(path, key, o.days, o.end, 0x9E3779B97F4A7C15ULL * i + 1) != 0)
            fatalx("cannot make the database of %s", name);
        fprintf(keys, "%s,%s\n", name, key);
    }
    explicit_bzero(key, sizeof(key));
    if (fclose(keys) != 0)
        fatal("keys.csv");
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    printf("provisioned users=%u first=%u days=%u rows_per_user=%u out=%s\n", o.users, o.first,
           o.days, o.days * 86400 / SAMPLE_S, o.out);
    return 0;
}
