/* fieldbench.c - field encryptions per second on one core (bench/field.sh):
 * field_seal() (the whole token: cipher, base64url, header) and field_open()
 * of 16, 64 and 256-byte values under AES-256-GCM and AES-SIV, then whole
 * bodies (2 KiB JSON, 10 encrypted fields) through field_encrypt_body().
 * Rates are per second of this thread's CPU time (per core), so that other
 * jobs on a shared machine slow the run down but do not change its result.
 *
 *   usage: fieldbench [SECONDS per measurement, default 1] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "field/field.h"

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what, const char *err)
{
    fprintf(stderr, "fieldbench: %s: %s\n", what, err);
    exit(1);
}

int
main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    static const char keys[] =
        "{\"tenant\": \"bench\", \"primary\": \"k1\", \"keys\": [{\"id\": \"k1\", \"key\": "
        "\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"}]}";
    struct field_rule_spec specs[] = {{"$.v", false}, {"$.v", true}};
    struct field_keyset *ks = NULL;
    struct field_rules *rules = NULL;
    struct strbuf tok = {0}, val = {0};
    char err[FIELD_ERR_MAX];
    uint8_t v[256];
    enum field_type type;

    if (field_keyset_parse(keys, strlen(keys), &ks, err) != 0)
        die("keyset", err);
    if (field_rules_compile(specs, 2, &rules, err) != 0)
        die("rules", err);
    for (size_t i = 0; i < sizeof(v); i++)
        v[i] = (uint8_t)('a' + i % 26);
    printf("%-6s %5s %14s %14s\n", "mode", "bytes", "encrypt/s", "decrypt/s");
    for (size_t rule = 0; rule < 2; rule++)
        for (size_t len = 16; len <= 256; len *= 4) {
            unsigned long n = 0, m = 0;
            double t0 = now(), t;
            do {
                for (int i = 0; i < 1000; i++, n++) {
                    tok.len = 0;
                    if (field_seal(ks, rules, rule, FIELD_T_STRING, v, len, &tok, err))
                        die("seal", err);
                }
            } while ((t = now() - t0) < secs);
            double enc = (double)n / t;
            t0 = now();
            do {
                for (int i = 0; i < 1000; i++, m++) {
                    val.len = 0;
                    if (field_open(ks, tok.data, tok.len, &val, &type, err))
                        die("open", err);
                }
            } while ((t = now() - t0) < secs);
            printf("%-6s %5zu %14.0f %14.0f\n", rule ? "siv" : "gcm", len, enc, (double)m / t);
        }

    /* a 2 KiB body with 10 encrypted fields of 16-32 bytes among 40 others */
    struct strbuf body = {0}, out = {0};
    strbuf_printf(&body, "{\"items\": [");
    for (int i = 0; i < 10; i++)
        strbuf_printf(&body,
                      "%s{\"id\": %d, \"name\": \"item number %d\", \"qty\": %d, "
                      "\"card\": \"4111 1111 1111 %04d\", \"note\": \"plain text %d\"}",
                      i ? ", " : "", i, i, i * 3, i, i);
    strbuf_printf(&body, "], \"pad\": \"");
    while (body.len < 2040)
        strbuf_printf(&body, "x");
    strbuf_printf(&body, "\"}");
    struct field_rules *brules = NULL;
    struct field_rule_spec bspec = {"$.items[*].card", false};
    if (field_rules_compile(&bspec, 1, &brules, err) != 0)
        die("rules", err);
    unsigned long n = 0;
    unsigned nf = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 100; i++, n++) {
            out.len = 0;
            if (field_encrypt_body(brules, ks, body.data, body.len, 0, &out, &nf, err))
                die("body", err);
        }
    } while ((t = now() - t0) < secs);
    printf("body   %5zu %14.0f bodies/s (%u fields each, %.0f fields/s)\n", body.len, (double)n / t,
           nf, (double)n * nf / t);
    strbuf_free(&body);
    strbuf_free(&out);
    strbuf_free(&tok);
    strbuf_free(&val);
    field_rules_free(&rules);
    field_rules_free(&brules);
    field_keyset_free(&ks);
    return 0;
}
