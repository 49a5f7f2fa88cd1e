/* health.c - the targets of a relay, their checks and the choice of one
 * per connection; see health.h. */
#include "relay/health.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "net/dial.h"
#include "relay/relay.h"

/* One target's active check: on the relay's accepting loop only. */
struct health_check {
    struct relay *r; /* not a reference: the relay stops its checks before it goes */
    struct relay_target *t;
    struct dial dial;
    struct timer timer;
};

static void
target_unref(struct relay_target *t)
{
    if (t != NULL && atomic_fetch_sub(&t->refs, 1) == 1)
        free(t);
}

int
relay_targets_new(struct relay *r)
{
    size_t n = r->conf.n_targets;

    if (n == 0)
        return 0;
    if ((r->targets = calloc(n, sizeof(*r->targets))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct relay_target *t = calloc(1, sizeof(*t));
        if (t == NULL)
            return -ENOMEM;
        atomic_init(&t->refs, 1);
        atomic_init(&t->up, true);
        t->ep = r->conf.targets[i];
        endpoint_format(&t->ep, t->text, sizeof(t->text));
        r->targets[i] = t;
    }
    return 0;
}

void
relay_targets_free(struct relay *r)
{
    for (size_t i = 0; r->targets != NULL && i < r->conf.n_targets; i++)
        target_unref(r->targets[i]);
    free(r->targets);
    r->targets = NULL;
    free(r->checks);
    r->checks = NULL;
}

void
relay_targets_adopt(struct relay *r, const struct relay *prev)
{
    for (size_t i = 0; prev != NULL && prev->targets != NULL && i < r->conf.n_targets; i++)
        for (size_t j = 0; j < prev->conf.n_targets; j++) {
            struct relay_target *t = prev->targets[j];
            if (!endpoint_equal(&t->ep, &r->targets[i]->ep))
                continue;
            atomic_fetch_add(&t->refs, 1);
            target_unref(r->targets[i]);
            r->targets[i] = t;
            break;
        }
}

void
relay_target_failed(struct relay *r, struct relay_target *t, int err, enum dial_result why)
{
    atomic_fetch_add_explicit(&t->failures, 1, memory_order_relaxed);
    atomic_store(&t->oks, 0);
    unsigned fails = atomic_fetch_add(&t->fails, 1) + 1;
    log_debug("relay=%s target=%s check failed (%u in a row): %s: %s", r->conf.name, t->text, fails,
              dial_result_name(why), strerror(-err));
    /* the exchange makes one thread the one that logs the change */
    if (fails >= r->conf.health.fall && atomic_exchange(&t->up, false))
        log_warnx("relay=%s target=%s down: %s: %s (%u failed checks in a row)", r->conf.name,
                  t->text, dial_result_name(why), strerror(-err), fails);
}

static void
target_ok(struct relay *r, struct relay_target *t)
{
    atomic_store(&t->fails, 0);
    unsigned oks = atomic_fetch_add(&t->oks, 1) + 1;
    if (oks >= r->conf.health.rise && !atomic_exchange(&t->up, true))
        log_info("relay=%s target=%s up (%u good checks in a row)", r->conf.name, t->text, oks);
}

static void check_fire(struct timer *tm);

static void
check_done(void *arg, int fd, enum dial_result why)
{
    struct health_check *hc = arg;
    struct relay *r = hc->r;

    if (fd >= 0) {
        close(fd);
        target_ok(r, hc->t);
    } else if (why == DIAL_TIMEOUT || !relay_local_error(r->stats, fd)) {
        /* a shortage of this process (counted above) says nothing of the target */
        relay_target_failed(r, hc->t, fd, why);
    }
    timer_start(r->loop, &hc->timer, r->conf.health.interval_ms, check_fire, hc);
}

static void
check_fire(struct timer *tm)
{
    struct health_check *hc = tm->data;

    dial_start(&hc->dial, hc->r->loop, &hc->t->ep, hc->r->conf.health.timeout_ms, NULL, check_done,
               hc);
}

int
relay_health_start(struct relay *r)
{
    size_t n = r->conf.n_targets;

    if (n == 0)
        return 0;
    relay_health_stop(r);
    if (r->checks == NULL && (r->checks = calloc(n, sizeof(*r->checks))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct health_check *hc = &r->checks[i];
        hc->r = r;
        hc->t = r->targets[i];
        timer_start(r->loop, &hc->timer, 0, check_fire, hc);
    }
    return 0;
}

void
relay_health_stop(struct relay *r)
{
    for (size_t i = 0; r->checks != NULL && r->loop != NULL && i < r->conf.n_targets; i++) {
        dial_cancel(&r->checks[i].dial);
        timer_stop(r->loop, &r->checks[i].timer);
    }
}

struct relay_target *
relay_target_pick(struct relay *r, const struct relay_target *skip)
{
    struct relay_target *best = NULL;
    uint_fast64_t best_open = 0;

    for (size_t i = 0; i < r->conf.n_targets; i++) {
        struct relay_target *t = r->targets[i];
        if (t == skip || !atomic_load(&t->up))
            continue;
        uint_fast64_t open = atomic_load(&t->open);
        if (best == NULL || open < best_open) {
            best = t;
            best_open = open;
        }
        if (r->conf.balance == BALANCE_FIRST)
            break;
    }
    if (best != NULL) {
        atomic_fetch_add(&best->open, 1);
        atomic_fetch_add_explicit(&best->total, 1, memory_order_relaxed);
    }
    return best;
}

void
relay_target_release(struct relay_target *t)
{
    atomic_fetch_sub(&t->open, 1);
}

bool
relay_targets_healthy(const struct relay *r)
{
    for (size_t i = 0; i < r->conf.n_targets; i++)
        if (atomic_load(&r->targets[i]->up))
            return true;
    return r->conf.n_targets == 0;
}

/* The target's endpoint as a label value: \, " and newline escaped. */
static void
label_value(struct strbuf *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            strbuf_printf(out, "\\%c", *s);
        else if (*s == '\n')
            strbuf_printf(out, "\\n");
        else
            strbuf_append(out, s, 1);
    }
}

void
relay_targets_render(struct relay *const *relays, size_t n, struct strbuf *out)
{
    static const struct {
        const char *name, *type, *help;
    } metrics[] = {
        {"airlock_relay_target_up", "gauge",
         "Whether the target is up (1) or down (0) by its health checks."},
        {"airlock_relay_target_connections", "gauge", "Connections open to the target now."},
        {"airlock_relay_target_connections_total", "counter",
         "Connections that picked the target."},
        {"airlock_relay_target_check_failures_total", "counter",
         "Failed health checks of the target, active and passive (a connection's failed "
         "connect)."},
    };
    bool any = false;

    for (size_t i = 0; i < n; i++)
        any = any || relays[i]->conf.n_targets > 0;
    if (!any)
        return;
    for (size_t k = 0; k < sizeof(metrics) / sizeof(metrics[0]); k++) {
        strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", metrics[k].name, metrics[k].help,
                      metrics[k].name, metrics[k].type);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < relays[i]->conf.n_targets; j++) {
                struct relay_target *t = relays[i]->targets[j];
                uint_fast64_t v = k == 0   ? atomic_load(&t->up)
                                  : k == 1 ? atomic_load(&t->open)
                                  : k == 2 ? atomic_load(&t->total)
                                           : atomic_load(&t->failures);
                strbuf_printf(out, "%s{relay=\"%s\",target=\"", metrics[k].name,
                              relays[i]->conf.name);
                label_value(out, t->text);
                strbuf_printf(out, "\"} %llu\n", (unsigned long long)v);
            }
    }
}
