/* attest.c - `airlock attest verify` and `airlock attest get` (the command
 * line of issue 14; docs/attestation.md), and the key broker's `seal`,
 * `fetch-secret` and `broker-key`. Verification results go to stdout
 * as one JSON object; a refusal is one line on stderr. */
#include "cli/attest.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "attest/nitro.h"
#include "attest/policy.h"
#include "attest/provider.h"
#include "attest/ratls.h"
#include "attest/sim.h"
#include "attest/tdx_collateral.h"
#include "attest/trust.h"
#include "broker/seal.h"
#include "broker/wrap.h"
#include "core/closest.h"
#include "core/loop.h"
#include "core/strbuf.h"
#include "core/units.h"
#include "net/dial.h"
#include "net/endpoint.h"
#include "proto/kb.h"

#define INPUT_MAX (1 << 20)
#define TLS_TIMEOUT_S 10 /* connect, handshake: each read or write */

static void
attest_usage(FILE *f)
{
    fprintf(f,
            "usage: airlock attest verify [--type nitro|snp|tdx] [--at RFC3339] [--root PEM]\n"
            "           [--pcr N=HEX]... [--nonce HEX] [--user-data HEX] [--public-key HEX]\n"
            "           [--measurement HEX] [--rtmr N=HEX]... [--min-tcb HEX] [--vmpl N]\n"
            "           [--allow-debug]\n"
            "           [--vcek FILE] [--sim-root PEM] [--collateral DIR]\n"
            "           [--tcb-status STATUS[,STATUS]...] FILE|-\n"
            "       airlock attest verify --tls HOST:PORT [--sni NAME] [--nonce HEX|--fresh]\n"
            "           [policy options as above]\n"
            "       airlock attest get --provider nitro|tsm|sim [--user-data HEX] [--nonce HEX]\n"
            "           [--public-key FILE] [--sim-root FILE] [--tsm-dir DIR]\n"
            "           [--privlevel N] [--nsm-device PATH]\n"
            "       airlock attest fetch-secret --broker ENDPOINT --broker-key FILE\n"
            "           --provider nitro|tsm|sim [--sim-root FILE] [--tsm-dir DIR]\n"
            "           [--privlevel N] [--nsm-device PATH] [--vcek FILE] [--timeout DURATION]\n"
            "           [--out FILE] NAME\n"
            "       airlock attest seal --key-file FILE --dir DIR NAME [FILE|-]\n"
            "       airlock attest broker-key --key-file FILE\n");
}

/* Reads a whole file ("-": stdin) of at most INPUT_MAX bytes. It may be a
 * secret (seal): what was read of a refused one is wiped. */
static int
read_all(const char *path, uint8_t **out, size_t *len)
{
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    uint8_t *b = NULL;
    size_t n = 0;
    ssize_t r;
    int ret = -ENOMEM;

    if (fd < 0)
        return -errno;
    if ((b = malloc(INPUT_MAX + 1)) == NULL)
        goto fail;
    while ((r = read(fd, b + n, INPUT_MAX + 1 - n)) > 0)
        if ((n += (size_t)r) > INPUT_MAX)
            break;
    if (r < 0) {
        ret = -errno;
        goto fail;
    }
    if (n > INPUT_MAX) {
        ret = -EFBIG;
        goto fail;
    }
    if (fd != 0)
        close(fd);
    *out = b;
    *len = n;
    return 0;
fail:
    buf_wipe_free(b, n);
    if (fd > 0)
        close(fd);
    return ret;
}

/* Evidence is binary; base64 text (whitespace allowed) is decoded in place. */
static int
maybe_base64(uint8_t *b, size_t *len)
{
    EVP_ENCODE_CTX *ctx;
    int n1 = 0, n2 = 0;

    for (size_t i = 0; i < *len; i++)
        if (!isalnum(b[i]) && b[i] != '+' && b[i] != '/' && b[i] != '=' && !isspace(b[i]))
            return 0; /* raw */
    if ((ctx = EVP_ENCODE_CTX_new()) == NULL)
        return -ENOMEM;
    EVP_DecodeInit(ctx);
    /* decoding never grows the data, so it can write over its input */
    int ok =
        EVP_DecodeUpdate(ctx, b, &n1, b, (int)*len) >= 0 && EVP_DecodeFinal(ctx, b + n1, &n2) == 1;
    EVP_ENCODE_CTX_free(ctx);
    if (!ok)
        return -EINVAL;
    *len = (size_t)(n1 + n2);
    return 0;
}

static bool
parse_blob(const char *s, struct attest_blob *b)
{
    b->present = attest_hex(s, b->data, sizeof(b->data), &b->len);
    return b->present;
}

static void
json_hex(const char *key, const uint8_t *b, size_t n, bool comma)
{
    printf("\"%s\":\"", key);
    for (size_t i = 0; i < n; i++)
        printf("%02x", b[i]);
    printf("\"%s", comma ? "," : "");
}

static void
json_blob(const char *key, const struct attest_blob *b)
{
    if (b->present)
        json_hex(key, b->data, b->len, true);
    else
        printf("\"%s\":null,", key);
}

/* module_id comes from the evidence: a JSON string whatever its bytes. */
static void
json_string(const char *key, const char *s)
{
    struct strbuf v = {0};

    strbuf_json_string(&v, s);
    printf("\"%s\":%s,", key, v.data != NULL && !v.failed ? v.data : "null");
    strbuf_free(&v);
}

/* The claims as one JSON object; with --tls also the peer's pubkey_hash
 * (NULL: none) and whether the evidence was fresh. */
static void
print_claims(const struct attest_claims *c, const uint8_t *pubkey_hash, bool fresh)
{
    switch (c->kind) {
    case ATTEST_KIND_NITRO:
        printf("{\"type\":\"nitro\",\"sim\":%s,\"debug\":%s,", c->sim ? "true" : "false",
               c->debug ? "true" : "false");
        json_string("module_id", c->module_id);
        printf("\"timestamp\":%llu,\"digest\":\"%s\",\"pcrs\":{",
               (unsigned long long)c->timestamp_ms, c->digest);
        for (size_t i = 0; i < c->npcrs; i++) {
            char key[16];
            snprintf(key, sizeof(key), "%u", c->pcrs[i].index);
            json_hex(key, c->pcrs[i].value, c->pcrs[i].len, i + 1 < c->npcrs);
        }
        printf("},");
        json_blob("user_data", &c->user_data);
        json_blob("nonce", &c->nonce);
        if (c->public_key.present)
            json_hex("public_key", c->public_key.data, c->public_key.len, false);
        else
            printf("\"public_key\":null");
        break;
    case ATTEST_KIND_SNP:
        printf("{\"type\":\"snp\",\"version\":%u,\"guest_svn\":%u,\"policy\":\"0x%llx\","
               "\"debug\":%s,\"vmpl\":%u,",
               c->version, c->guest_svn, (unsigned long long)c->snp_policy,
               c->debug ? "true" : "false", c->vmpl);
        json_hex("measurement", c->measurement, sizeof(c->measurement), true);
        json_hex("report_data", c->report_data, sizeof(c->report_data), true);
        json_hex("host_data", c->host_data, sizeof(c->host_data), true);
        json_hex("reported_tcb", c->reported_tcb, sizeof(c->reported_tcb), true);
        json_hex("current_tcb", c->current_tcb, sizeof(c->current_tcb), true);
        json_hex("committed_tcb", c->committed_tcb, sizeof(c->committed_tcb), true);
        json_hex("launch_tcb", c->launch_tcb, sizeof(c->launch_tcb), true);
        json_hex("chip_id", c->chip_id, sizeof(c->chip_id), false);
        break;
    case ATTEST_KIND_TDX:
        printf("{\"type\":\"tdx\",\"version\":%u,\"debug\":%s,", c->version,
               c->debug ? "true" : "false");
        json_hex("tee_tcb_svn", c->tee_tcb_svn, sizeof(c->tee_tcb_svn), true);
        json_hex("td_attributes", c->td_attributes, sizeof(c->td_attributes), true);
        json_hex("mrtd", c->measurement, sizeof(c->measurement), true);
        printf("\"rtmrs\":[");
        for (int i = 0; i < ATTEST_RTMR_COUNT; i++) {
            printf("\"");
            for (size_t j = 0; j < sizeof(c->rtmr[i]); j++)
                printf("%02x", c->rtmr[i][j]);
            printf("\"%s", i + 1 < ATTEST_RTMR_COUNT ? "," : "],");
        }
        if (c->tdx15) {
            json_hex("tee_tcb_svn2", c->tee_tcb_svn2, sizeof(c->tee_tcb_svn2), true);
            json_hex("mrservicetd", c->mr_servicetd, sizeof(c->mr_servicetd), true);
        }
        if (c->tcb_judged) {
            printf("\"tcb_status\":\"%s\",\"qe_tcb_status\":\"%s\",",
                   attest_tcb_status_names[c->tcb_status], attest_tcb_status_names[c->qe_status]);
            if (c->module_judged)
                printf("\"module_tcb_status\":\"%s\",", attest_tcb_status_names[c->module_status]);
            if (c->tcb2_judged)
                printf("\"tcb_status2\":\"%s\",", attest_tcb_status_names[c->tcb_status2]);
            if (c->module2_judged)
                printf("\"module_tcb_status2\":\"%s\",",
                       attest_tcb_status_names[c->module_status2]);
            json_string("tcb_date", c->tcb_date);
            json_string("advisories", c->advisories);
        }
        json_hex("report_data", c->report_data, sizeof(c->report_data), false);
        break;
    }
    if (pubkey_hash != NULL) {
        printf(",");
        json_hex("pubkey_hash", pubkey_hash, RATLS_HASH_LEN, true);
        printf("\"fresh\":%s", fresh ? "true" : "false");
    }
    printf("}\n");
}

/* Every certificate of a PEM file of trust anchors (attest_file_read():
 * nothing others may change); NULL (and a message) if there is none. */
static STACK_OF(X509) * load_pem_certs(const char *path)
{
    char err[ATTEST_ERR_MAX];
    uint8_t *b;
    size_t n;
    STACK_OF(X509) * sk;

    if (attest_file_read(path, false, ATTEST_PEM_MAX, &b, &n, err) != 0) {
        fprintf(stderr, "airlock attest: %s\n", err);
        return NULL;
    }
    if ((sk = attest_x509_pem((const char *)b, n)) == NULL)
        fprintf(stderr, "airlock attest: %s: no PEM certificate\n", path);
    free(b);
    return sk;
}

enum {
    OPT_AT = 256,
    OPT_ROOT,
    OPT_PCR,
    OPT_NONCE,
    OPT_USER_DATA,
    OPT_PUBLIC_KEY,
    OPT_TYPE,
    OPT_VCEK,
    OPT_MEASUREMENT,
    OPT_MIN_TCB,
    OPT_VMPL,
    OPT_COLLATERAL,
    OPT_TCB_STATUS,
    OPT_ALLOW_DEBUG,
    OPT_SIM_ROOT,
    OPT_PROVIDER,
    OPT_TSM_DIR,
    OPT_PRIVLEVEL,
    OPT_NSM_DEVICE,
    OPT_TLS,
    OPT_SNI,
    OPT_FRESH,
    OPT_BROKER,
    OPT_OUT,
    OPT_KEY_FILE,
    OPT_DIR,
    OPT_TIMEOUT,
    OPT_BROKER_KEY,
    OPT_RTMR
};

static const struct option attest_opts[] = {
    {"at", required_argument, NULL, OPT_AT},
    {"root", required_argument, NULL, OPT_ROOT},
    {"pcr", required_argument, NULL, OPT_PCR},
    {"nonce", required_argument, NULL, OPT_NONCE},
    {"user-data", required_argument, NULL, OPT_USER_DATA},
    {"public-key", required_argument, NULL, OPT_PUBLIC_KEY},
    {"type", required_argument, NULL, OPT_TYPE},
    {"vcek", required_argument, NULL, OPT_VCEK},
    {"measurement", required_argument, NULL, OPT_MEASUREMENT},
    {"min-tcb", required_argument, NULL, OPT_MIN_TCB},
    {"vmpl", required_argument, NULL, OPT_VMPL},
    {"collateral", required_argument, NULL, OPT_COLLATERAL},
    {"tcb-status", required_argument, NULL, OPT_TCB_STATUS},
    {"allow-debug", no_argument, NULL, OPT_ALLOW_DEBUG},
    {"sim-root", required_argument, NULL, OPT_SIM_ROOT},
    {"provider", required_argument, NULL, OPT_PROVIDER},
    {"tsm-dir", required_argument, NULL, OPT_TSM_DIR},
    {"privlevel", required_argument, NULL, OPT_PRIVLEVEL},
    {"nsm-device", required_argument, NULL, OPT_NSM_DEVICE},
    {"tls", required_argument, NULL, OPT_TLS},
    {"sni", required_argument, NULL, OPT_SNI},
    {"fresh", no_argument, NULL, OPT_FRESH},
    {"broker", required_argument, NULL, OPT_BROKER},
    {"out", required_argument, NULL, OPT_OUT},
    {"key-file", required_argument, NULL, OPT_KEY_FILE},
    {"dir", required_argument, NULL, OPT_DIR},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"broker-key", required_argument, NULL, OPT_BROKER_KEY},
    {"rtmr", required_argument, NULL, OPT_RTMR},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The subcommands, in the order cmd_attest() names them, as bits. */
enum {
    SUB_VERIFY = 1 << 0,
    SUB_GET = 1 << 1,
    SUB_FETCH = 1 << 2,
    SUB_SEAL = 1 << 3,
    SUB_BROKER_KEY = 1 << 4,
};

/* The subcommands that take each option (as the usage lists them): one
 * given to another subcommand is a usage error, never ignored. */
static const unsigned opt_subs[] = {
    [OPT_AT - OPT_AT] = SUB_VERIFY,
    [OPT_ROOT - OPT_AT] = SUB_VERIFY,
    [OPT_PCR - OPT_AT] = SUB_VERIFY,
    [OPT_NONCE - OPT_AT] = SUB_VERIFY | SUB_GET,
    [OPT_USER_DATA - OPT_AT] = SUB_VERIFY | SUB_GET,
    [OPT_PUBLIC_KEY - OPT_AT] = SUB_VERIFY | SUB_GET,
    [OPT_TYPE - OPT_AT] = SUB_VERIFY,
    [OPT_VCEK - OPT_AT] = SUB_VERIFY | SUB_FETCH,
    [OPT_MEASUREMENT - OPT_AT] = SUB_VERIFY,
    [OPT_MIN_TCB - OPT_AT] = SUB_VERIFY,
    [OPT_VMPL - OPT_AT] = SUB_VERIFY,
    [OPT_COLLATERAL - OPT_AT] = SUB_VERIFY,
    [OPT_TCB_STATUS - OPT_AT] = SUB_VERIFY,
    [OPT_ALLOW_DEBUG - OPT_AT] = SUB_VERIFY,
    [OPT_SIM_ROOT - OPT_AT] = SUB_VERIFY | SUB_GET | SUB_FETCH,
    [OPT_PROVIDER - OPT_AT] = SUB_GET | SUB_FETCH,
    [OPT_TSM_DIR - OPT_AT] = SUB_GET | SUB_FETCH,
    [OPT_PRIVLEVEL - OPT_AT] = SUB_GET | SUB_FETCH,
    [OPT_NSM_DEVICE - OPT_AT] = SUB_GET | SUB_FETCH,
    [OPT_TLS - OPT_AT] = SUB_VERIFY,
    [OPT_SNI - OPT_AT] = SUB_VERIFY,
    [OPT_FRESH - OPT_AT] = SUB_VERIFY,
    [OPT_BROKER - OPT_AT] = SUB_FETCH,
    [OPT_OUT - OPT_AT] = SUB_FETCH,
    [OPT_KEY_FILE - OPT_AT] = SUB_SEAL | SUB_BROKER_KEY,
    [OPT_DIR - OPT_AT] = SUB_SEAL,
    [OPT_TIMEOUT - OPT_AT] = SUB_FETCH,
    [OPT_BROKER_KEY - OPT_AT] = SUB_FETCH,
    [OPT_RTMR - OPT_AT] = SUB_VERIFY,
};

struct attest_args {
    unsigned sub;    /* SUB_*: the subcommand */
    const char *cmd; /* its name */
    struct attest_policy pol;
    enum attest_kind kind;
    const char *root, *vcek, *sim_root, *provider, *public_key_file, *collateral;
    const char *tls, *sni; /* verify --tls HOST:PORT, --sni NAME */
    bool fresh;            /* --fresh: a random nonce */
    bool tls_nonce;        /* --tls: pol.nonce is the fresh-evidence nonce */
    struct attest_provider_conf conf;
    const char *broker, *broker_key, *out, *key_file, *dir; /* fetch-secret, seal, broker-key */
    unsigned timeout_ms;
};

/* Fills a from the options; returns 0, or 2 after a message. */
static int
parse_args(int argc, char **argv, struct attest_args *a)
{
    int opt, li = 0;
    size_t n;

    a->pol.now = time(NULL);
    while ((opt = getopt_long(argc, argv, "h", attest_opts, &li)) != -1) {
        const char *bad = NULL;
        if (opt >= OPT_AT && opt <= OPT_RTMR && (opt_subs[opt - OPT_AT] & a->sub) == 0) {
            fprintf(stderr, "airlock attest %s: --%s is not an option of %s\n", a->cmd,
                    attest_opts[li].name, a->cmd);
            return 2;
        }
        switch (opt) {
        case OPT_AT:
            if (!attest_time_parse(optarg, &a->pol.now))
                bad = "--at wants an RFC 3339 time such as 2024-01-24T19:00:00Z";
            break;
        case OPT_ROOT:
            a->root = optarg;
            break;
        case OPT_PCR:
            if (a->pol.npcrs >= ATTEST_PCR_MAX ||
                attest_pcr_arg(optarg, &a->pol.pcrs[a->pol.npcrs]) != 0) {
                bad = "--pcr wants N=HEX (N from 0 to 31)";
                break;
            }
            /* two values for one PCR: no document meets both (the config
             * refuses it too) */
            for (size_t i = 0; i < a->pol.npcrs; i++)
                if (a->pol.pcrs[i].index == a->pol.pcrs[a->pol.npcrs].index)
                    bad = "--pcr wants each PCR once";
            a->pol.npcrs++;
            break;
        case OPT_NONCE:
            if (!parse_blob(optarg, &a->pol.nonce))
                bad = "--nonce wants hex of at most 1024 bytes";
            break;
        case OPT_USER_DATA:
            if (!parse_blob(optarg, &a->pol.user_data))
                bad = "--user-data wants hex of at most 1024 bytes";
            break;
        case OPT_PUBLIC_KEY:
            if (a->sub == SUB_GET)
                a->public_key_file = optarg;
            else if (!parse_blob(optarg, &a->pol.public_key))
                bad = "--public-key wants hex of at most 1024 bytes";
            break;
        case OPT_MEASUREMENT:
            if (!parse_blob(optarg, &a->pol.measurement) ||
                a->pol.measurement.len != ATTEST_MEASUREMENT_LEN)
                bad = "--measurement wants 48 bytes of hex";
            break;
        case OPT_RTMR: {
            /* N=HEX: RTMR N (0-3) must be these 48 bytes */
            const char *eq = strchr(optarg, '=');
            unsigned idx = optarg[0] >= '0' && optarg[0] <= '3' ? (unsigned)(optarg[0] - '0') : 4;
            if (eq != optarg + 1 || idx >= ATTEST_RTMR_COUNT ||
                !attest_hex(eq + 1, a->pol.rtmrs[idx], sizeof(a->pol.rtmrs[idx]), &n) ||
                n != sizeof(a->pol.rtmrs[idx]))
                bad = "--rtmr wants N=HEX (N from 0 to 3, 48 bytes of hex)";
            else if ((a->pol.rtmrs_pinned & 1u << idx) != 0)
                bad = "--rtmr wants each RTMR once";
            else
                a->pol.rtmrs_pinned |= 1u << idx;
            break;
        }
        case OPT_MIN_TCB:
            if (!attest_hex(optarg, a->pol.min_tcb, sizeof(a->pol.min_tcb), &n) ||
                n != sizeof(a->pol.min_tcb))
                bad = "--min-tcb wants 8 bytes of hex, as reported_tcb prints";
            a->pol.min_tcb_present = true;
            break;
        case OPT_COLLATERAL:
            a->collateral = optarg;
            break;
        case OPT_TCB_STATUS:
            for (char *save = NULL, *st = strtok_r(optarg, ",", &save); st != NULL;
                 st = strtok_r(NULL, ",", &save))
                if (attest_tcb_status_add(st, &a->pol.tcb_status_ok) != 0)
                    bad = "--tcb-status wants Intel's TCB statuses (UpToDate, "
                          "SWHardeningNeeded, OutOfDate, ...; never Revoked), comma-separated";
            break;
        case OPT_VMPL:
            if (strlen(optarg) != 1 || optarg[0] < '0' || optarg[0] > '3')
                bad = "--vmpl wants 0, 1, 2 or 3";
            a->pol.vmpl = (uint32_t)(optarg[0] - '0');
            a->pol.vmpl_present = true;
            break;
        case OPT_ALLOW_DEBUG:
            a->pol.allow_debug = true;
            break;
        case OPT_TYPE:
            if (attest_policy_type_parse(optarg, &a->kind) != 0)
                bad = "--type is nitro, snp or tdx";
            a->pol.kind = a->kind; /* RA-TLS evidence of another type is refused */
            break;
        case OPT_VCEK:
            a->vcek = optarg;
            break;
        case OPT_SIM_ROOT:
            a->sim_root = optarg;
            break;
        case OPT_PROVIDER:
            a->provider = optarg;
            break;
        case OPT_TSM_DIR:
            a->conf.tsm_dir = optarg;
            break;
        case OPT_PRIVLEVEL: {
            uint64_t level;
            if (units_uint(optarg, 3, &level) != 0) {
                bad = "--privlevel wants 0 to 3";
                break;
            }
            a->conf.tsm_privlevel = (unsigned)level;
            a->conf.tsm_privlevel_set = true;
            break;
        }
        case OPT_NSM_DEVICE:
            a->conf.nsm_device = optarg;
            break;
        case OPT_TLS:
            a->tls = optarg;
            break;
        case OPT_SNI:
            a->sni = optarg;
            break;
        case OPT_FRESH:
            a->fresh = true;
            break;
        case OPT_BROKER:
            a->broker = optarg;
            break;
        case OPT_OUT:
            a->out = optarg;
            break;
        case OPT_KEY_FILE:
            a->key_file = optarg;
            break;
        case OPT_DIR:
            a->dir = optarg;
            break;
        case OPT_BROKER_KEY:
            a->broker_key = optarg;
            break;
        case OPT_TIMEOUT:
            if (units_duration(optarg, &a->timeout_ms) != 0 || a->timeout_ms == 0)
                bad = "--timeout wants a duration above 0 (500ms, 10s)";
            break;
        case 'h':
            attest_usage(stdout);
            exit(0);
        default:
            closest_option_hint(stderr, "airlock attest", argv[optind - 1], attest_opts);
            attest_usage(stderr);
            return 2;
        }
        if (bad != NULL) {
            fprintf(stderr, "airlock attest: %s\n", bad);
            return 2;
        }
    }
    return 0;
}

/* The VCEK, DER or PEM. */
static X509 *
load_vcek(const char *path)
{
    uint8_t *b;
    size_t n;
    X509 *x = NULL;

    if (read_all(path, &b, &n) != 0)
        return NULL;
    if ((x = attest_x509_der(b, n)) == NULL) {
        STACK_OF(X509) *sk = attest_x509_pem((const char *)b, n);
        if (sk != NULL && sk_X509_num(sk) == 1)
            x = sk_X509_shift(sk);
        sk_X509_pop_free(sk, X509_free);
    }
    free(b);
    return x;
}

/* The broker's public key (PEM SubjectPublicKeyInfo, Ed25519) at path, as
 * `airlock attest broker-key` prints it: a trust anchor (attest_file_read():
 * nothing others may change); NULL (and a message) when it is not one. */
static EVP_PKEY *
load_broker_key(const char *path)
{
    char err[ATTEST_ERR_MAX];
    uint8_t *b;
    size_t n;
    BIO *bio;
    EVP_PKEY *k = NULL;

    if (attest_file_read(path, false, INPUT_MAX, &b, &n, err) != 0) {
        fprintf(stderr, "airlock attest fetch-secret: %s\n", err);
        return NULL;
    }
    if ((bio = BIO_new_mem_buf(b, (int)n)) != NULL)
        k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (k != NULL && EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    BIO_free(bio);
    free(b);
    if (k == NULL)
        fprintf(stderr, "airlock attest fetch-secret: %s: not an Ed25519 public key (PEM)\n", path);
    return k;
}

/* Each policy option of verify and the evidence types that can be held to
 * it (the config's policy block has the same rules): an option the type
 * cannot check is a usage error, never ignored. Returns false after a
 * message. */
static bool
verify_options_fit(const struct attest_args *a)
{
    const unsigned nitro = 1u << ATTEST_KIND_NITRO, snp = 1u << ATTEST_KIND_SNP,
                   tdx = 1u << ATTEST_KIND_TDX;
    const struct {
        bool given;
        const char *opt;
        unsigned kinds;
        const char *which;
    } opts[] = {
        {a->pol.npcrs > 0, "--pcr", nitro, "nitro"},
        /* with --tls, --nonce is the fresh-evidence nonce: any type */
        {a->pol.nonce.present && a->tls == NULL, "--nonce", nitro, "nitro (or --tls)"},
        {a->pol.public_key.present, "--public-key", nitro, "nitro"},
        {a->pol.measurement.present, "--measurement", snp | tdx, "snp and tdx"},
        {a->pol.rtmrs_pinned != 0, "--rtmr", tdx, "tdx"},
        {a->pol.min_tcb_present, "--min-tcb", snp, "snp"},
        {a->pol.vmpl_present, "--vmpl", snp, "snp"},
        {a->pol.allow_debug, "--allow-debug", nitro | snp | tdx, "nitro, snp and tdx"},
        {a->sim_root != NULL, "--sim-root", nitro, "nitro"},
        {a->collateral != NULL, "--collateral", tdx, "tdx"},
        {a->pol.tcb_status_ok != 0, "--tcb-status", tdx, "tdx"},
    };

    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        if (opts[i].given && (opts[i].kinds & 1u << a->kind) == 0) {
            fprintf(stderr,
                    "airlock attest: %s applies to --type %s only: %s evidence cannot be "
                    "held to it\n",
                    opts[i].opt, opts[i].which, attest_kind_name(a->kind));
            return false;
        }
    if (a->pol.tcb_status_ok != 0 && a->collateral == NULL) {
        fprintf(stderr, "airlock attest: --tcb-status needs --collateral: without it the TCB "
                        "is not judged\n");
        return false;
    }
    if (a->pol.min_tcb_present &&
        (a->pol.min_tcb[2] | a->pol.min_tcb[3] | a->pol.min_tcb[4] | a->pol.min_tcb[5])) {
        fprintf(stderr, "airlock attest: --min-tcb: bytes 2 to 5 are reserved in reported_tcb "
                        "(not checked): they must be zero\n");
        return false;
    }
    if (a->tls != NULL && a->pol.user_data.present) {
        fprintf(stderr, "airlock attest: --user-data cannot be checked with --tls: RA-TLS "
                        "evidence carries the hash of its claims there\n");
        return false;
    }
    if (a->kind != ATTEST_KIND_NITRO && a->pol.user_data.len > ATTEST_REPORT_DATA_LEN) {
        fprintf(stderr, "airlock attest: --user-data: REPORT_DATA is at most %d bytes\n",
                ATTEST_REPORT_DATA_LEN);
        return false;
    }
    return true;
}

static int verify_tls(struct attest_args *a, struct attest_claims *c, uint8_t hash[RATLS_HASH_LEN],
                      bool *fresh, char *err);

/* verify FILE, or verify --tls HOST:PORT (file NULL). */
static int
cmd_verify(struct attest_args *a, const char *file)
{
    int status = 2;
    STACK_OF(X509) *roots = NULL, *sim = NULL, *chain = NULL, *intermediates = NULL;
    X509 *vcek = NULL;
    struct tdx_collateral *collateral = NULL;
    uint8_t *doc = NULL;
    size_t len;
    char err[ATTEST_ERR_MAX] = "";
    struct attest_claims *c = calloc(1, sizeof(*c));
    enum attest_result r = ATTEST_MALFORMED;
    uint8_t hash[RATLS_HASH_LEN];
    bool fresh = false;
    int e;

    if (c == NULL || !verify_options_fit(a))
        goto fail;
    if (a->tls != NULL && a->kind == ATTEST_KIND_SNP) {
        fprintf(stderr, "airlock attest: --tls: SEV-SNP evidence is not verifiable over RA-TLS "
                        "(it does not carry the VCEK)\n");
        goto fail;
    }
    if (a->tls != NULL && a->pol.nonce.present) {
        /* --nonce is the fresh-evidence nonce, not a Nitro document's */
        if (a->fresh || a->pol.nonce.len < RATLS_NONCE_MIN || a->pol.nonce.len > RATLS_NONCE_MAX) {
            fprintf(stderr,
                    "airlock attest: --tls: --nonce wants %d to %d bytes of hex (or "
                    "--fresh, not both)\n",
                    RATLS_NONCE_MIN, RATLS_NONCE_MAX);
            goto fail;
        }
        a->pol.nonce.present = false;
        a->tls_nonce = true;
    }
    if ((a->tls == NULL) != (file != NULL) || (a->tls == NULL && (a->sni != NULL || a->fresh))) {
        fprintf(stderr, "airlock attest: verify takes FILE, or --tls HOST:PORT [--sni NAME] "
                        "[--nonce HEX|--fresh]\n");
        goto fail;
    }
    if ((a->vcek != NULL) != (a->kind == ATTEST_KIND_SNP) ||
        (a->kind == ATTEST_KIND_SNP && a->root == NULL)) {
        fprintf(stderr, "airlock attest: --type snp needs --vcek and --root (and only it)\n");
        goto fail;
    }
    if (a->root != NULL && (chain = load_pem_certs(a->root)) == NULL)
        goto fail;
    if (a->sim_root != NULL) {
        if ((sim = load_pem_certs(a->sim_root)) == NULL)
            goto fail;
        a->pol.sim_root = sk_X509_value(sim, 0);
    }
    if (a->collateral != NULL) {
        if (tdx_collateral_load(a->collateral, &collateral, err) != 0) {
            fprintf(stderr, "airlock attest: %s\n", err);
            goto fail;
        }
        a->pol.tdx_collateral = collateral;
    }
    if (a->vcek != NULL && (vcek = load_vcek(a->vcek)) == NULL) {
        fprintf(stderr, "airlock attest: %s: not a certificate (DER or PEM)\n", a->vcek);
        goto fail;
    }
    /* In a --root file, self-signed certificates are the pinned roots and
     * the others intermediates (the ASK of an ASK/ARK file). */
    if (chain != NULL) {
        if (attest_certs_split(chain, &roots, &intermediates) != 0) {
            fprintf(stderr, "airlock attest: %s: no self-signed root\n", a->root);
            goto fail;
        }
        a->pol.roots = roots;
    }
    if (a->tls != NULL) {
        if ((status = verify_tls(a, c, hash, &fresh, err)) == 2)
            goto fail;
        r = status == 0 ? ATTEST_OK : ATTEST_UNTRUSTED;
        status = 1;
        goto verified;
    }
    if ((e = read_all(file, &doc, &len)) != 0) {
        fprintf(stderr, "airlock attest: %s: %s\n", file, strerror(-e));
        goto fail;
    }
    status = 1;
    if (maybe_base64(doc, &len) != 0) {
        fprintf(stderr, "airlock attest: %s: invalid base64\n", file);
        goto fail;
    }
    r = attest_verify(a->kind, doc, len, vcek, intermediates, &a->pol, c, err);
verified:
    if (r != ATTEST_OK) {
        fprintf(stderr, "airlock attest: invalid: %s\n", err);
        goto fail;
    }
    if (c->sim)
        fprintf(stderr, "airlock attest: sim evidence: trusted only through --sim-root, "
                        "not hardware\n");
    print_claims(c, a->tls != NULL ? hash : NULL, fresh);
    status = 0;
fail:
    free(c);
    free(doc);
    X509_free(vcek);
    tdx_collateral_free(collateral);
    sk_X509_free(roots);
    sk_X509_free(intermediates);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(sim, X509_free);
    return status;
}

/* The sim root's key and certificate from path, created (mode 0600) when
 * the file does not exist, so that `get` and `verify --sim-root` share it. */
static int
sim_root_load(const char *path, time_t now, EVP_PKEY **key, X509 **cert)
{
    FILE *f;
    char why[ATTEST_ERR_MAX];
    int fd, ret = attest_sim_root_read(path, key, cert, why, sizeof(why));

    if (ret != 0 && ret != -ENOENT)
        fprintf(stderr, "airlock attest: %s\n", why);
    if (ret != -ENOENT)
        goto out;
    if ((ret = attest_sim_root_generate(now, key, cert)) != 0) {
        fprintf(stderr, "airlock attest: %s: %s\n", path, strerror(-ret));
        goto out;
    }
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 ||
        (f = fdopen(fd, "w")) == NULL) {
        ret = -errno;
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "airlock attest: %s: %s\n", path, strerror(-ret));
        goto out;
    }
    if (PEM_write_PrivateKey(f, *key, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_X509(f, *cert) != 1)
        ret = -EIO;
    if (fclose(f) != 0 && ret == 0)
        ret = -errno;
    if (ret != 0)
        fprintf(stderr, "airlock attest: %s: cannot write the sim root\n", path);
out:
    if (ret != 0) {
        EVP_PKEY_free(*key);
        X509_free(*cert);
        *key = NULL;
        *cert = NULL;
    }
    return ret;
}

/* Connects to ep (TCP, each step bounded by TLS_TIMEOUT_S) and returns the
 * fd, or -1 with the reason in err. */
static int
tls_connect(const struct endpoint *ep, char *err)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    struct timeval tv = {.tv_sec = TLS_TIMEOUT_S};
    char port[8];
    int fd = -1, e;

    snprintf(port, sizeof(port), "%u", ep->port);
    if ((e = getaddrinfo(ep->host, port, &hints, &ai)) != 0) {
        attest_fail(err, ATTEST_UNTRUSTED, "%s: %s", ep->host, gai_strerror(e));
        return -1;
    }
    for (struct addrinfo *p = ai; p != NULL && fd < 0; p = p->ai_next) {
        if ((fd = socket(p->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
            continue;
        e = 0;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
            connect(fd, p->ai_addr, p->ai_addrlen) != 0) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        attest_fail(err, ATTEST_UNTRUSTED, "cannot connect to %s port %u: %s", ep->host, ep->port,
                    strerror(e != 0 ? e : EHOSTUNREACH));
    return fd;
}

/* verify --tls: a TLS 1.3 handshake with a->tls, then its RA-TLS evidence
 * (fresh over a nonce with --nonce/--fresh) verified under a->pol and
 * --type. Returns 0 with *c, the peer's key hash and *fresh filled; 1 with
 * the reason in err; 2 after a usage message. */
static int
verify_tls(struct attest_args *a, struct attest_claims *c, uint8_t hash[RATLS_HASH_LEN],
           bool *fresh, char *err)
{
    struct endpoint ep;
    char tcp[EP_HOST_MAX + 16];
    const char *perr;
    uint8_t nonce[RATLS_NONCE_MAX];
    size_t nonce_len = 0;
    struct in6_addr any;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    int fd = -1, status = 1;

    snprintf(tcp, sizeof(tcp), "tcp:%s", a->tls);
    if (endpoint_parse(tcp, &ep, &perr) != PARSE_OK) {
        fprintf(stderr, "airlock attest: --tls wants HOST:PORT\n");
        return 2;
    }
    if (a->tls_nonce) {
        nonce_len = a->pol.nonce.len;
        memcpy(nonce, a->pol.nonce.data, nonce_len);
    } else if (a->fresh) {
        nonce_len = 32;
        if (RAND_bytes(nonce, (int)nonce_len) != 1) {
            attest_fail(err, ATTEST_UNTRUSTED, "no random nonce");
            return 1;
        }
    }
    if ((fd = tls_connect(&ep, err)) < 0)
        return 1;
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        ratls_ctx_client(ctx) != 0 || (ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
        (nonce_len > 0 && ratls_ssl_request_fresh(ssl, nonce, nonce_len) != 0)) {
        attest_fail(err, ATTEST_UNTRUSTED, "cannot set up TLS");
        goto out;
    }
    /* SNI: --sni, else the host when it is a name */
    const char *sni =
        a->sni != NULL ? a->sni
        : inet_pton(AF_INET, ep.host, &any) == 1 || inet_pton(AF_INET6, ep.host, &any) == 1
            ? NULL
            : ep.host;
    if (sni != NULL && SSL_set_tlsext_host_name(ssl, sni) != 1) {
        fprintf(stderr, "airlock attest: --sni: not a name TLS can carry\n");
        status = 2;
        goto out;
    }
    if (SSL_connect(ssl) != 1) {
        unsigned long e = ERR_get_error();
        attest_fail(err, ATTEST_UNTRUSTED, "TLS handshake with %s failed: %s", a->tls,
                    e != 0 ? ERR_reason_error_string(e) : "connection closed");
        goto out;
    }
    if (ratls_ssl_verify(ssl, &a->pol, c, err) != ATTEST_OK)
        goto out;
    ratls_spki_hash(SSL_get0_peer_certificate(ssl), hash);
    *fresh = nonce_len > 0;
    SSL_shutdown(ssl);
    status = 0;
out:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return status;
}

/* The DER (SubjectPublicKeyInfo) of the public key in path, PEM or DER, in
 * b; false after a message. */
static bool
load_public_key(const char *path, struct attest_blob *b)
{
    uint8_t *raw;
    size_t n;
    int e = read_all(path, &raw, &n), len;
    const uint8_t *p = raw;
    EVP_PKEY *key = NULL;
    BIO *bio;

    if (e != 0) {
        fprintf(stderr, "airlock attest: %s: %s\n", path, strerror(-e));
        return false;
    }
    if ((bio = BIO_new_mem_buf(raw, (int)n)) != NULL)
        key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (key == NULL)
        key = d2i_PUBKEY(NULL, &p, (long)n);
    free(raw);
    len = key != NULL ? i2d_PUBKEY(key, NULL) : -1;
    if (len <= 0 || len > (int)sizeof(b->data)) {
        fprintf(stderr, "airlock attest: %s: not a public key (PEM or DER) of at most %zu bytes\n",
                path, sizeof(b->data));
        EVP_PKEY_free(key);
        return false;
    }
    uint8_t *out = b->data;
    b->len = (size_t)i2d_PUBKEY(key, &out);
    b->present = true;
    EVP_PKEY_free(key);
    return true;
}

/* The provider's options belong to it alone; returns false after a message. */
static bool
get_options_fit(const struct attest_args *a, const struct attest_provider *p, const char *cmd)
{
    const char *stray = NULL;

    if (p != &attest_provider_tsm && (a->conf.tsm_dir != NULL || a->conf.tsm_privlevel_set))
        stray = "--tsm-dir and --privlevel are for --provider tsm";
    else if (p != &attest_provider_nitro && a->conf.nsm_device != NULL)
        stray = "--nsm-device is for --provider nitro";
    else if ((p == &attest_provider_sim) != (a->sim_root != NULL))
        stray = "--provider sim needs --sim-root FILE (and only it)";
    if (stray != NULL)
        fprintf(stderr, "airlock attest %s: %s\n", cmd, stray);
    return stray == NULL;
}

/* For --provider sim: the sim root of --sim-root and a leaf issued now,
 * into a->conf.sim. Returns 0; 2 when the root file is not one (after a
 * message); 1 with the reason in err. */
static int
sim_open(struct attest_args *a, struct attest_sim *sim, EVP_PKEY **root_key, X509 **root, char *err)
{
    time_t now = time(NULL);

    if (sim_root_load(a->sim_root, now, root_key, root) != 0)
        return 2;
    if (attest_sim_init(sim, *root_key, *root, now) != 0) {
        snprintf(err, ATTEST_ERR_MAX, "sim: cannot issue the leaf certificate");
        return 1;
    }
    a->conf.sim = sim;
    return 0;
}

static int
cmd_get(struct attest_args *a)
{
    const struct attest_provider *p =
        a->provider != NULL ? attest_provider_find(a->provider) : NULL;
    struct attest_sim sim = {0};
    struct attest_evidence ev = {0};
    EVP_PKEY *root_key = NULL;
    X509 *root = NULL;
    char err[ATTEST_ERR_MAX] = "";
    int status = 2;

    if (p == NULL) {
        fprintf(stderr, "airlock attest get: --provider is nitro, tsm or sim\n");
        return 2;
    }
    if (!get_options_fit(a, p, "get") ||
        (a->public_key_file != NULL && !load_public_key(a->public_key_file, &a->pol.public_key)))
        return 2;
    const struct attest_blob *ud = &a->pol.user_data, *nonce = &a->pol.nonce,
                             *pk = &a->pol.public_key;
    struct attest_request req = {
        .report_data = ud->present ? ud->data : NULL,
        .report_data_len = ud->len,
        .nonce = nonce->present ? nonce->data : NULL,
        .nonce_len = nonce->len,
        .public_key = pk->present ? pk->data : NULL,
        .public_key_len = pk->len,
    };
    if (attest_request_check(p, &req, err) != 0) {
        fprintf(stderr, "airlock attest get: %s\n", err);
        return 2;
    }
    if (p == &attest_provider_sim && (status = sim_open(a, &sim, &root_key, &root, err)) != 0)
        goto fail;
    status = 1;
    if (attest_provider_get(p, &a->conf, &req, &ev, err) != 0)
        goto fail;
    BIO *b64 = BIO_new(BIO_f_base64());
    BIO *out = BIO_new_fp(stdout, BIO_NOCLOSE);
    if (b64 != NULL && out != NULL) {
        BIO_push(b64, out);
        if (BIO_write(b64, ev.data, (int)ev.len) == (int)ev.len && BIO_flush(b64) == 1)
            status = 0;
        BIO_free_all(b64);
    } else {
        BIO_free(b64);
        BIO_free(out);
    }
    if (status != 0)
        snprintf(err, sizeof(err), "cannot write the evidence");
    else if (ev.sim)
        fprintf(stderr, "airlock attest: sim evidence (provider sim, not hardware)\n");
    else
        fprintf(stderr, "airlock attest: %s evidence from provider %s (verify --type %s)\n",
                attest_kind_name(ev.kind), ev.provider, attest_kind_name(ev.kind));
fail:
    if (status == 1)
        fprintf(stderr, "airlock attest get: %s\n", err);
    attest_evidence_free(&ev);
    attest_sim_close(&sim);
    EVP_PKEY_free(root_key);
    X509_free(root);
    return status;
}

/* ---- the key broker's client (fetch-secret) and sealing (seal) */

#define FETCH_TIMEOUT_MS 10000
#define FETCH_ANSWER_MAX (4 * SEAL_SECRET_MAX) /* a SECRET line: hex of a CMS envelope */
#define FETCH_NOT_SIGNED "the answer is not signed by the broker's key"

/* Sends one line; false after a message. */
static bool
fetch_send(int fd, const char *line, size_t len)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};

    while (len > 0) {
        ssize_t n = send(fd, line, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (poll(&p, 1, FETCH_TIMEOUT_MS) != 1)
                break;
            continue;
        }
        if (n <= 0)
            break;
        line += n;
        len -= (size_t)n;
    }
    if (len > 0)
        fprintf(stderr, "airlock attest fetch-secret: cannot send to the broker: %s\n",
                strerror(errno != 0 ? errno : EIO));
    return len == 0;
}

/* Reads the broker's next message into in (cap bytes) until deadline (a
 * loop_clock_ms() value). Returns true with *m set, or false after a
 * message: a refusal says the broker's reason. Where a SECRET is wanted,
 * anything else is an answer the broker did not sign (an unsigned SECRET
 * among them), and is said so. */
static bool
fetch_answer(int fd, char *in, size_t cap, uint64_t deadline, enum kb_verb want, struct kb_msg *m)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    size_t len = 0, used;
    const char *why = NULL;
    enum parse_result r;

    while ((r = kb_parse(in, len, cap, m, &used, &why)) == PARSE_AGAIN) {
        uint64_t now = loop_clock_ms();
        int ready = now < deadline ? poll(&p, 1, (int)(deadline - now)) : 0;
        if (ready < 0 && errno == EINTR)
            continue;
        ssize_t n = ready == 1 ? read(fd, in + len, cap - len) : -1;
        if (n < 0 && ready == 1 && errno == EAGAIN)
            continue;
        if (n <= 0) {
            fprintf(stderr, "airlock attest fetch-secret: %s\n",
                    ready == 0 ? "no answer from the broker in time"
                               : "the broker closed without answering");
            return false;
        }
        len += (size_t)n;
    }
    if (r == PARSE_OK && m->verb == KB_REFUSED) {
        fprintf(stderr, "airlock attest fetch-secret: refused: %.*s%s%.*s\n", (int)m->name.len,
                m->name.p, m->text.p != NULL ? ": " : "", (int)m->text.len,
                m->text.p != NULL ? m->text.p : "");
        return false;
    }
    if (r != PARSE_OK || m->verb != want) {
        fprintf(stderr, "airlock attest fetch-secret: %s\n",
                want == KB_SECRET ? FETCH_NOT_SIGNED : "unexpected answer from the broker");
        return false;
    }
    return true;
}

/* Writes the secret to path (0600, a new file renamed into place, so a
 * reader never sees half of it) or, without path, to stdout. */
static int
write_secret(const char *path, const uint8_t *b, size_t len)
{
    char tmp[4096];
    int fd, ret = 0;

    if (path == NULL)
        return fwrite(b, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : -EIO;
    if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
        return -errno;
    if (write(fd, b, len) != (ssize_t)len)
        ret = errno != 0 ? -errno : -EIO;
    else if (fsync(fd) != 0)
        ret = -errno;
    if (close(fd) != 0 && ret == 0)
        ret = -errno;
    if (ret == 0 && rename(tmp, path) != 0)
        ret = -errno;
    if (ret != 0)
        unlink(tmp);
    return ret;
}

/* The evidence for a challenge: Nitro (and sim) carry the nonce and the
 * public key in their own fields, tsm's REPORT_DATA is nonce ||
 * SHA-256(public key) (see broker.c, binding()). */
static int
fetch_evidence(struct attest_args *a, const struct attest_provider *p, const uint8_t *nonce,
               size_t nonce_len, const uint8_t *spki, size_t spki_len, struct attest_evidence *ev,
               char *err)
{
    uint8_t rd[ATTEST_REPORT_DATA_LEN] = {0};
    struct attest_request req = {0};

    if (p->takes_nonce) {
        req = (struct attest_request){
            .nonce = nonce, .nonce_len = nonce_len, .public_key = spki, .public_key_len = spki_len};
    } else {
        if (nonce_len != ATTEST_REPORT_DATA_LEN - SHA256_DIGEST_LENGTH)
            return attest_provider_fail(err, -EPROTO, "the broker's nonce is not 32 bytes");
        memcpy(rd, nonce, nonce_len);
        SHA256(spki, spki_len, rd + nonce_len);
        req.report_data = rd;
        req.report_data_len = sizeof(rd);
    }
    return attest_provider_get(p, &a->conf, &req, ev, err);
}

static int
cmd_fetch(struct attest_args *a, const char *name)
{
    const struct attest_provider *p =
        a->provider != NULL ? attest_provider_find(a->provider) : NULL;
    struct endpoint ep;
    const char *why = NULL;
    char err[ATTEST_ERR_MAX] = "", *in = NULL;
    struct strbuf line = {0};
    struct attest_sim sim = {0};
    struct attest_evidence ev = {0};
    EVP_PKEY *root_key = NULL, *key = NULL, *broker_key = NULL;
    X509 *root = NULL, *vcek = NULL;
    uint8_t *spki = NULL, nonce[KB_NONCE_MAX], *cms = NULL, *secret = NULL, sig[WRAP_SIG_LEN];
    size_t secret_len = 0;
    int fd = -1, status = 2, spki_len;
    struct kb_msg m;
    enum dial_result dr;

    if (a->broker == NULL || endpoint_parse(a->broker, &ep, &why) != PARSE_OK ||
        (ep.kind == EP_UDP && (why = "expected a stream endpoint, not udp") != NULL)) {
        fprintf(stderr, "airlock attest fetch-secret: --broker: %s\n",
                why != NULL ? why : "expected an endpoint (" EP_FORMS ")");
        return 2;
    }
    if (p == NULL) {
        fprintf(stderr, "airlock attest fetch-secret: --provider is nitro, tsm or sim\n");
        return 2;
    }
    if (units_name(name, KB_NAME_MAX + 1) != 0) {
        fprintf(stderr, "airlock attest fetch-secret: NAME: 1-63 characters A-Z a-z 0-9 _ . -\n");
        return 2;
    }
    if (!get_options_fit(a, p, "fetch-secret"))
        return 2;
    /* whoever relays the connection could answer in the broker's place:
     * no answer is taken without the key that tells them apart */
    if (a->broker_key == NULL) {
        fprintf(stderr, "airlock attest fetch-secret: --broker-key FILE is required (the broker's "
                        "public key, from airlock attest broker-key)\n");
        return 2;
    }
    if ((broker_key = load_broker_key(a->broker_key)) == NULL)
        return 2;
    if (a->vcek != NULL && (vcek = load_vcek(a->vcek)) == NULL) {
        fprintf(stderr, "airlock attest fetch-secret: %s: not a certificate (DER or PEM)\n",
                a->vcek);
        goto fail;
    }
    if (p == &attest_provider_sim && (status = sim_open(a, &sim, &root_key, &root, err)) != 0)
        goto fail;
    status = 1;
    uint64_t deadline = loop_clock_ms() + (a->timeout_ms ? a->timeout_ms : FETCH_TIMEOUT_MS);
    /* the ephemeral key the secret is wrapped to: in memory only */
    if ((key = EVP_RSA_gen(WRAP_KEY_BITS_MIN)) == NULL ||
        (spki_len = i2d_PUBKEY(key, &spki)) <= 0 || (in = malloc(FETCH_ANSWER_MAX)) == NULL) {
        snprintf(err, sizeof(err), "cannot make the ephemeral key");
        goto fail;
    }
    if ((fd = dial_sync(&ep, a->timeout_ms ? a->timeout_ms : FETCH_TIMEOUT_MS, &dr)) < 0) {
        snprintf(err, sizeof(err), "cannot connect to %s: %s: %s", a->broker, dial_result_name(dr),
                 strerror(-fd));
        goto fail;
    }
    strbuf_printf(&line, "REQUEST %s\n", name);
    if (line.failed || !fetch_send(fd, line.data, line.len) ||
        !fetch_answer(fd, in, FETCH_ANSWER_MAX, deadline, KB_CHALLENGE, &m))
        goto fail;
    size_t nonce_len = kb_unhex(m.hex[0], nonce, sizeof(nonce));
    if (fetch_evidence(a, p, nonce, nonce_len, spki, (size_t)spki_len, &ev, err) != 0)
        goto fail;
    /* ATTEST EVIDENCE PUBKEY [VCEK], each hex */
    uint8_t *vder = NULL;
    int vlen = vcek != NULL ? i2d_X509(vcek, &vder) : 0;
    size_t n = 16 + 2 * (ev.len + (size_t)spki_len + (vlen > 0 ? (size_t)vlen : 0));
    char *msg = malloc(n);
    if (msg != NULL) {
        size_t k = (size_t)snprintf(msg, n, "ATTEST ");
        kb_hex(msg + k, ev.data, ev.len);
        k += 2 * ev.len;
        msg[k++] = ' ';
        kb_hex(msg + k, spki, (size_t)spki_len);
        k += 2 * (size_t)spki_len;
        if (vlen > 0) {
            msg[k++] = ' ';
            kb_hex(msg + k, vder, (size_t)vlen);
            k += 2 * (size_t)vlen;
        }
        msg[k++] = '\n';
        n = k;
    }
    OPENSSL_free(vder);
    bool sent = msg != NULL && fetch_send(fd, msg, n);
    free(msg);
    if (!sent || !fetch_answer(fd, in, FETCH_ANSWER_MAX, deadline, KB_SECRET, &m))
        goto fail;
    size_t cms_len = m.hex[0].len / 2;
    if ((cms = malloc(cms_len)) == NULL || kb_unhex(m.hex[0], cms, cms_len) != cms_len) {
        snprintf(err, sizeof(err), "out of memory");
        goto fail;
    }
    /* checked before anything is opened or written: the ephemeral key went
     * out in the clear, so anyone on the path can wrap a value to it */
    struct wrap_answer ans = {.name = name,
                              .nonce = nonce,
                              .nonce_len = nonce_len,
                              .spki = spki,
                              .spki_len = (size_t)spki_len,
                              .cms = cms,
                              .cms_len = cms_len};
    if (kb_unhex(m.hex[1], sig, sizeof(sig)) != sizeof(sig) ||
        !wrap_verify(broker_key, &ans, sig, sizeof(sig))) {
        snprintf(err, sizeof(err), FETCH_NOT_SIGNED);
        goto fail;
    }
    if (wrap_open(key, cms, cms_len, &secret, &secret_len) != 0) {
        snprintf(err, sizeof(err), "the broker's answer does not open with the ephemeral key");
        goto fail;
    }
    int w = write_secret(a->out, secret, secret_len);
    if (w != 0) {
        snprintf(err, sizeof(err), "%s: %s", a->out != NULL ? a->out : "stdout", strerror(-w));
        goto fail;
    }
    status = 0;
fail:
    if (status == 1 && err[0] != '\0')
        fprintf(stderr, "airlock attest fetch-secret: %s\n", err);
    if (fd >= 0)
        close(fd);
    seal_clear_free(secret, secret_len);
    free(cms);
    free(in);
    strbuf_free(&line);
    OPENSSL_free(spki);
    EVP_PKEY_free(key);
    EVP_PKEY_free(broker_key);
    X509_free(vcek);
    attest_evidence_free(&ev);
    attest_sim_close(&sim);
    EVP_PKEY_free(root_key);
    X509_free(root);
    return status;
}

static int
cmd_seal(struct attest_args *a, const char *name, const char *file)
{
    uint8_t key[SEAL_KEY_LEN], *pt = NULL;
    size_t len = 0;
    char err[ATTEST_ERR_MAX] = "";
    int e, status = 1;

    if (a->key_file == NULL || a->dir == NULL) {
        fprintf(stderr, "airlock attest seal: --key-file FILE and --dir DIR are required\n");
        return 2;
    }
    if (units_name(name, KB_NAME_MAX + 1) != 0) {
        fprintf(stderr, "airlock attest seal: NAME: 1-63 characters A-Z a-z 0-9 _ . -\n");
        return 2;
    }
    if (seal_key_load(a->key_file, true, key, err) != 0)
        goto fail;
    if ((e = read_all(file, &pt, &len)) != 0) {
        snprintf(err, sizeof(err), "%s: %s", file, strerror(-e));
        goto fail;
    }
    if (seal_write(a->dir, name, key, pt, len, err) != 0)
        goto fail;
    fprintf(stderr, "airlock attest seal: %s/%s.sealed: %zu bytes sealed\n", a->dir, name, len);
    status = 0;
fail:
    if (status != 0)
        fprintf(stderr, "airlock attest seal: %s\n", err);
    OPENSSL_cleanse(key, sizeof(key));
    seal_clear_free(pt, len);
    return status;
}

/* Prints the public half of the broker's signing key (seal_sign_key()),
 * what fetch-secret's --broker-key wants. The key file must exist: a new
 * one would be a key of no broker. */
static int
cmd_broker_key(struct attest_args *a)
{
    uint8_t key[SEAL_KEY_LEN];
    char err[ATTEST_ERR_MAX] = "";
    EVP_PKEY *k = NULL;
    int status = 1;

    if (a->key_file == NULL) {
        fprintf(stderr, "airlock attest broker-key: --key-file FILE is required\n");
        return 2;
    }
    if (seal_key_load(a->key_file, false, key, err) != 0)
        goto fail;
    if ((k = seal_sign_key(key)) == NULL) {
        snprintf(err, sizeof(err), "cannot derive the signing key");
        goto fail;
    }
    if (PEM_write_PUBKEY(stdout, k) != 1 || fflush(stdout) != 0) {
        snprintf(err, sizeof(err), "stdout: %s", strerror(errno != 0 ? errno : EIO));
        goto fail;
    }
    status = 0;
fail:
    if (status != 0)
        fprintf(stderr, "airlock attest broker-key: %s\n", err);
    OPENSSL_cleanse(key, sizeof(key));
    EVP_PKEY_free(k);
    return status;
}

int
cmd_attest(int argc, char **argv)
{
    struct attest_args *a;
    int status;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        attest_usage(stdout);
        return 0;
    }
    static const char *const subs[] = {"verify", "get", "fetch-secret", "seal", "broker-key"};
    size_t sub = 0, nsubs = sizeof(subs) / sizeof(subs[0]);
    while (argc >= 2 && sub < nsubs && strcmp(argv[1], subs[sub]) != 0)
        sub++;
    if (argc < 2 || sub == nsubs) {
        if (argc >= 2)
            closest_unknown(stderr, "airlock attest", "subcommand", argv[1], subs, nsubs);
        attest_usage(stderr);
        return 2;
    }
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return 1;
    a->sub = 1u << sub;
    a->cmd = subs[sub];
    optind = 1;
    status = parse_args(argc - 1, argv + 1, a);
    int operands = argc - 1 - optind;
    char **op = argv + 1 + optind;
    if (status != 0) {
        /* parse_args said why */
    } else if (sub == 0 && a->tls != NULL && operands == 0) {
        status = cmd_verify(a, NULL);
    } else if (sub == 0 && operands != 1) {
        fprintf(stderr, "airlock attest verify: one FILE expected\n");
        status = 2;
    } else if (sub == 0) {
        status = cmd_verify(a, op[0]);
    } else if (sub == 1 && operands != 0) {
        fprintf(stderr, "airlock attest get: no operands expected\n");
        status = 2;
    } else if (sub == 1) {
        status = cmd_get(a);
    } else if (sub == 2 && operands != 1) {
        fprintf(stderr, "airlock attest fetch-secret: one NAME expected\n");
        status = 2;
    } else if (sub == 2) {
        status = cmd_fetch(a, op[0]);
    } else if (sub == 4 && operands != 0) {
        fprintf(stderr, "airlock attest broker-key: no operands expected\n");
        status = 2;
    } else if (sub == 4) {
        status = cmd_broker_key(a);
    } else if (operands != 1 && operands != 2) {
        fprintf(stderr, "airlock attest seal: NAME [FILE|-] expected\n");
        status = 2;
    } else {
        status = cmd_seal(a, op[0], operands == 2 ? op[1] : "-");
    }
    free(a);
    return status;
}
