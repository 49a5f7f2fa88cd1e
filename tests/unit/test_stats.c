/* test_stats.c - unit tests for `airlock ctl stats`'s table: the series it
 * knows land in their section's row and column (pool instances: a column
 * per state), rows keep their order, a value missing from a row shows "-",
 * and comments, other series, malformed lines and an unterminated last
 * line are skipped or read without harm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/stats.h"

static const char *
kind(const char *name, void *arg)
{
    (void)arg;
    return strcmp(name, "sni") == 0 ? "router" : "relay";
}

static char *
table(const char *text)
{
    struct strbuf out = {0};

    stats_table(text, strlen(text), kind, NULL, &out);
    assert_false(out.failed);
    return out.data;
}

static void
test_sections(void **state)
{
    (void)state;
    char *t = table("# HELP airlock_connections_open Connections open now.\n"
                    "# TYPE airlock_connections_open gauge\n"
                    "airlock_connections_open{relay=\"web\"} 2\n"
                    "airlock_connections_open{relay=\"sni\"} 0\n"
                    "airlock_connections_total{relay=\"web\"} 17\n"
                    "airlock_connections_total{relay=\"sni\"} 3\n"
                    "airlock_bytes_in_total{relay=\"sni\"} 1234567\n"
                    "airlock_connections_closed_total{relay=\"web\",end=\"eof\"} 15\n"
                    "airlock_pool_instances{pool=\"grid\",state=\"idle\"} 2\n"
                    "airlock_pool_instances{pool=\"grid\",state=\"active\"} 1\n"
                    "airlock_pool_starts_total{pool=\"grid\"} 3\n"
                    "airlock_resolver_threads 1\n"
                    "garbage line\n"
                    "airlock_connections_open{relay=\"x\"}\n"
                    "airlock_connections_open{relay=\"x\" 1\n"
                    "airlock_connections_open{pool=\"x\"} 1\n");
    assert_string_equal(t, "2 relays, 1 pools, 0 proxies\n"
                           "\n"
                           "RELAY  KIND    OPEN  TOTAL  BYTES_IN\n"
                           "web    relay      2     17         -\n"
                           "sni    router     0      3   1234567\n"
                           "\n"
                           "POOL  IDLE  ACTIVE  STARTS\n"
                           "grid     2       1       3\n");
    free(t);
}

static void
test_empty(void **state)
{
    (void)state;
    char *t = table("");
    assert_string_equal(t, "0 relays, 0 pools, 0 proxies\n");
    free(t);
    /* the last line without its newline still counts */
    t = table("airlock_http_connections_open{proxy=\"api\"} 4");
    assert_string_equal(t, "0 relays, 0 pools, 1 proxies\n\nPROXY  OPEN\napi       4\n");
    free(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_empty),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
