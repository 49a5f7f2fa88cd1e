/* test_relay_conf.c - relay_conf_equal(): settings compared field by
 * field, strings by their text. Configs equal in every setting but with
 * other bytes after their strings' NULs (memory reused by the parser) or
 * other loaded certificates are equal (a reload keeps the relay); a change
 * of any one setting is not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>

#include "relay/conf.h"

/* Fills what follows the NUL of the string s (size bytes) with c. */
static void
scribble(char *s, size_t size, int c)
{
    size_t n = strnlen(s, size);

    if (n + 1 < size)
        memset(s + n + 1, c, size - n - 1);
}

static void
scribble_ep(struct endpoint *ep, int c)
{
    scribble(ep->host, sizeof(ep->host), c);
    scribble(ep->path, sizeof(ep->path), c);
    scribble(ep->perm.owner, sizeof(ep->perm.owner), c);
    scribble(ep->perm.group, sizeof(ep->perm.group), c);
}

static void
parse_ep(const char *text, struct endpoint *ep)
{
    const char *why = NULL;

    assert_int_equal(endpoint_parse(text, ep, &why), PARSE_OK);
}

/* A relay with a string in every string setting. */
static void
fill(struct relay_conf *rc)
{
    const char *why = NULL;
    struct route r;

    relay_conf_defaults(rc);
    snprintf(rc->name, sizeof(rc->name), "web");
    parse_ep("unix:/run/airlock/web.sock", &rc->listen);
    snprintf(rc->listen.perm.owner, sizeof(rc->listen.perm.owner), "www");
    snprintf(rc->listen.perm.group, sizeof(rc->listen.perm.group), "www-data");
    rc->listen.perm.mode = 0660;
    parse_ep("tcp:backend.example:8080", &rc->target);
    parse_ep("tcp:a.example:1", &rc->targets[0]);
    parse_ep("hvsock:/run/h.sock:5000", &rc->targets[1]);
    rc->n_targets = 2;
    assert_int_equal(allow_parse("10.0.0.0/8", &rc->allow[0], &why), PARSE_OK);
    assert_int_equal(allow_parse("cid:16", &rc->allow[1], &why), PARSE_OK);
    rc->n_allow = 2;
    assert_int_equal(egress_rule_parse("api.example:443", &rc->egress_allow[0], &why), PARSE_OK);
    assert_int_equal(egress_rule_parse("192.0.2.0/24:80", &rc->egress_allow[1], &why), PARSE_OK);
    rc->n_egress_allow = 2;
    snprintf(rc->dns_allow[0], sizeof(rc->dns_allow[0]), "example.org");
    rc->n_dns_allow = 1;
    memset(&r, 0, sizeof(r));
    assert_int_equal(route_name_parse("a.example", r.name, &why), PARSE_OK);
    parse_ep("tcp:127.0.0.1:1", &r.target);
    assert_int_equal(route_table_add(&rc->router.table, &r), 0);
    parse_ep("tcp:127.0.0.1:2", &rc->router.table.def);
    rc->router.table.has_default = true;
    snprintf(rc->router.table.domain, sizeof(rc->router.table.domain), "grid.example");
    rc->tls.enabled = true;
    snprintf(rc->tls.provider, sizeof(rc->tls.provider), "sim");
    snprintf(rc->tls.sim_root, sizeof(rc->tls.sim_root), "/etc/airlock/root.pem");
    rc->verify.enabled = true;
    snprintf(rc->verify.server_name, sizeof(rc->verify.server_name), "enclave.example");
    snprintf(rc->verify.policy.roots, sizeof(rc->verify.policy.roots), "/etc/airlock/roots.pem");
    snprintf(rc->verify.policy.sim_root, sizeof(rc->verify.policy.sim_root), "/etc/s.pem");
    rc->verify.policy.npcrs = 1;
    rc->verify.policy.pcrs[0].index = 8;
    rc->verify.policy.pcrs[0].len = 48;
    memset(rc->verify.policy.pcrs[0].value, 0x11, 48);
}

/* b as a copy of a, with other bytes after every string's NUL. */
static void
garbled_copy(const struct relay_conf *a, struct relay_conf *b, int c)
{
    *b = *a;
    scribble(b->name, sizeof(b->name), c);
    scribble_ep(&b->listen, c);
    scribble_ep(&b->target, c);
    for (size_t i = 0; i < CONF_TARGETS_MAX; i++)
        scribble_ep(&b->targets[i], c);
    for (size_t i = 0; i < CONF_EGRESS_MAX; i++)
        scribble(b->egress_allow[i].name, sizeof(b->egress_allow[i].name), c);
    for (size_t i = 0; i < CONF_DNS_ALLOW_MAX; i++)
        scribble(b->dns_allow[i], sizeof(b->dns_allow[i]), c);
    scribble(b->tls.provider, sizeof(b->tls.provider), c);
    scribble(b->tls.sim_root, sizeof(b->tls.sim_root), c);
    scribble(b->verify.server_name, sizeof(b->verify.server_name), c);
    scribble(b->verify.policy.roots, sizeof(b->verify.policy.roots), c);
    scribble(b->verify.policy.sim_root, sizeof(b->verify.policy.sim_root), c);
    scribble(b->router.table.domain, sizeof(b->router.table.domain), c);
    scribble(b->router.table.directory, sizeof(b->router.table.directory), c);
    scribble_ep(&b->router.table.def, c);
    /* the table's routes are shared by the struct copy: a copy of its own */
    assert_int_equal(route_table_own(&b->router.table), 0);
    scribble(b->router.table.routes[0].name, sizeof(b->router.table.routes[0].name), c);
    scribble_ep(&b->router.table.routes[0].target, c);
}

static void
test_equal_whatever_follows_nul(void **state)
{
    static struct relay_conf a, b;
    (void)state;

    fill(&a);
    garbled_copy(&a, &b, 0x5a);
    assert_true(relay_conf_equal(&a, &b));
    assert_true(relay_conf_equal(&b, &a));
    /* certificates loaded from the same settings are the relay's: not
     * compared (their pointers differ from a fresh config's NULL) */
    b.verify.policy.sim_cert = (X509 *)&b;
    assert_true(relay_conf_equal(&a, &b));
    route_table_free(&a.router.table);
    route_table_free(&b.router.table);
}

/* Each change of one setting, on a garbled copy. */
static void
test_each_change_differs(void **state)
{
    static struct relay_conf a, b;
    const char *why = NULL;
    (void)state;

    fill(&a);
    for (int k = 0; k < 22; k++) {
        garbled_copy(&a, &b, 0xa5);
        switch (k) {
        case 0:
            b.name[0] = 'x';
            break;
        case 1:
            b.listen.perm.owner[0] = 'x';
            break;
        case 2:
            b.listen.perm.mode = 0600;
            break;
        case 3:
            b.target.host[0] = 'x';
            break;
        case 4:
            b.targets[1].path[5] = 'x';
            break;
        case 5:
            b.n_targets = 1;
            break;
        case 6:
            b.allow[0].prefix = 9;
            break;
        case 7:
            b.allow[1].cid = 17;
            break;
        case 8:
            b.egress_allow[0].name[0] = 'x';
            break;
        case 9:
            b.egress_allow[1].port_hi = 81;
            break;
        case 10:
            b.dns_allow[0][0] = 'x';
            break;
        case 11:
            b.router.table.domain[0] = 'x';
            break;
        case 12:
            b.router.table.routes[0].target.port = 3;
            break;
        case 13:
            b.tls.sim_root[1] = 'x';
            break;
        case 14:
            b.tls.provider[0] = 'x';
            break;
        case 15:
            b.verify.server_name[0] = 'x';
            break;
        case 16:
            b.verify.policy.roots[1] = 'x';
            break;
        case 17:
            b.verify.policy.pcrs[0].value[47] = 0x12;
            break;
        case 18:
            b.health.rise++;
            break;
        case 19:
            b.max_fds = 7;
            break;
        case 20:
            b.listen.nofollow = true;
            break;
        case 21:
            assert_int_equal(egress_rule_parse("192.0.3.0/24:80", &b.egress_allow[1], &why),
                             PARSE_OK);
            break;
        }
        if (relay_conf_equal(&a, &b))
            fail_msg("change %d: still equal", k);
        route_table_free(&b.router.table);
    }
    route_table_free(&a.router.table);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_whatever_follows_nul),
        cmocka_unit_test(test_each_change_differs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
