/* fuzz_config.c - libFuzzer harness for the YAML config loader.
 *
 * Parses the input as a config file. On success the result must satisfy
 * what the loader promises (at least one relay, log sink, logs, directory or broker block, each
 * relay passing relay_conf_check(), names valid and unique, limits kept); on failure the message
 * must be one printable line naming the file and cfg must own nothing. A parsed config's
 * dump (airlock ctl config) parses again, to a config that dumps the same. abort() on any
 * broken promise. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/config.h"
#include "fuzz.h"

static void
check_ok(const struct config *cfg)
{
    check((cfg->n_relays >= 1 && cfg->relays != NULL) || cfg->logs.enabled || cfg->n_sinks >= 1 ||
          cfg->has_directory || cfg->broker.enabled);
    check(!cfg->broker.enabled ||
          (cfg->broker.n_secrets >= 1 && cfg->broker.n_secrets <= BROKER_SECRETS_MAX &&
           cfg->broker.nonce_ttl_ms <= cfg->broker.timeout_ms &&
           cfg->broker.listen.kind != EP_UDP && cfg->broker.listen.kind != EP_HVSOCK));
    for (size_t i = 0; i < cfg->broker.n_secrets; i++) {
        const struct attest_policy_conf *pc = &cfg->broker.secrets[i].policy;
        struct conf_fault f;
        check(attest_policy_conf_check(pc, &f) == 0 && pc->npcrs <= ATTEST_PCR_MAX);
        check(pc->type == ATTEST_KIND_NITRO || (pc->npcrs == 0 && pc->sim_root[0] == '\0'));
        for (size_t j = 0; j < i; j++)
            check(strcmp(cfg->broker.secrets[i].name, cfg->broker.secrets[j].name) != 0);
    }
    check(!cfg->has_control || (cfg->control.kind != EP_UDP && cfg->control.kind != EP_HVSOCK));
    check(cfg->directory.reserve_timeout_ms > 0);
    check(strnlen(cfg->directory.prefix, DIR_PREFIX_MAX) < DIR_PREFIX_MAX);
    check(cfg->directory.backend != DIR_REDIS || cfg->directory.redis.kind == EP_TCP ||
          cfg->directory.redis.kind == EP_UNIX);
    check(!cfg->logs.enabled || cfg->logs.line_max <= cfg->logs.buffer / 4);
    check(!cfg->logs.enabled || cfg->logs.capture_stderr || cfg->logs.has_listen);
    check(!cfg->logs.enabled ||
          (cfg->logs.limits.max_streams >= 1 && cfg->logs.limits.max_streams <= CONF_STREAMS_MAX &&
           cfg->logs.limits.n_allow <= CONF_ALLOW_MAX));
    check(!cfg->logs.has_listen || endpoint_perm_check(&cfg->logs.listen) == NULL);
    check(!cfg->has_metrics || endpoint_perm_check(&cfg->metrics) == NULL);
    check(!cfg->has_control || endpoint_perm_check(&cfg->control) == NULL);
    for (size_t i = 0; i < cfg->n_sinks; i++) {
        check(cfg->sinks[i].limits.max_streams >= 1 &&
              cfg->sinks[i].limits.max_streams <= CONF_STREAMS_MAX);
        check(cfg->sinks[i].limits.n_allow == 0 || cfg->sinks[i].listen.kind == EP_TCP ||
              cfg->sinks[i].listen.kind == EP_VSOCK);
        check(endpoint_perm_check(&cfg->sinks[i].listen) == NULL);
        check(cfg->sinks[i].file[0] != '\0');
        check(cfg->sinks[i].line_max >= LOG_LINE_MIN && cfg->sinks[i].line_max <= LOG_LINE_MAX);
        for (size_t j = 0; j < i; j++)
            check(strcmp(cfg->sinks[i].name, cfg->sinks[j].name) != 0);
    }
    check(cfg->threads <= 256);
    check(cfg->log_level <= LOG_LVL_DEBUG);
    check(!cfg->has_metrics || cfg->metrics.kind != EP_UDP);
    for (size_t i = 0; i < cfg->n_relays; i++) {
        const struct relay_conf *rc = &cfg->relays[i];
        size_t len = strnlen(rc->name, CONF_NAME_MAX);

        check(len >= 1 && len < CONF_NAME_MAX);
        check(strspn(rc->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789_.-") == len);
        struct conf_fault f;
        check(relay_conf_check(rc, &f) == 0);
        check(rc->n_allow <= CONF_ALLOW_MAX);
        check(endpoint_perm_check(&rc->listen) == NULL);
        check(rc->max_connections <= 10000000);
        for (size_t j = 0; j < i; j++) {
            check(strcmp(rc->name, cfg->relays[j].name) != 0);
            check(!endpoint_equal(&rc->listen, &cfg->relays[j].listen));
        }
    }
}

static void
check_failed(const struct config *cfg, const char *err)
{
    static const struct config zero;

    check(memcmp(cfg, &zero, sizeof(zero)) == 0);
    check(strncmp(err, "fuzz:", 5) == 0);
    for (const char *p = err; *p != '\0'; p++)
        check((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
}

/* config_dump() of cfg parses, and dumps to the same text again. */
static void
check_dump(const struct config *cfg)
{
    struct strbuf a = {0}, b = {0};
    struct config again;
    char err[512];

    check(config_dump(cfg, &a, err, sizeof(err)) == 0 && !a.failed);
    if (config_parse("dump", a.data, a.len, &again, err, sizeof(err)) != 0) {
        fprintf(stderr, "the dump does not parse: %s\n%.*s", err, (int)a.len, a.data);
        abort();
    }
    check(config_dump(&again, &b, err, sizeof(err)) == 0 && !b.failed);
    check(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    config_free(&again);
    strbuf_free(&a);
    strbuf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config cfg;
    char err[512];

    if (config_parse("fuzz", (const char *)data, size, &cfg, err, sizeof(err)) == 0) {
        check_ok(&cfg);
        check_dump(&cfg);
    } else
        check_failed(&cfg, err);
    config_free(&cfg);
    config_free(&cfg);
    return 0;
}
