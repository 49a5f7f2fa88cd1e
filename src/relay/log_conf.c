/* log_conf.c - the settings of log forwarding and sinks; see log_conf.h. */
#include "relay/log_conf.h"

#include <string.h>

void
log_conf_defaults(struct log_conf *lc)
{
    memset(lc, 0, sizeof(*lc));
    lc->buffer = LOG_BUFFER_DEFAULT;
    lc->line_max = LOG_LINE_DEFAULT;
    lc->limits.max_streams = LOG_STREAMS_DEFAULT;
}

void
log_sink_conf_defaults(struct log_sink_conf *sc)
{
    memset(sc, 0, sizeof(*sc));
    sc->line_max = LOG_SINK_LINE_DEFAULT;
    sc->limits.max_streams = LOG_STREAMS_DEFAULT;
    sc->limits.idle_timeout_ms = LOG_SINK_IDLE_DEFAULT;
    sc->mark_unverified = true;
}

const char *
log_conf_listen_only(const struct log_conf *lc)
{
    return lc->has_listen ? NULL : "applies to the apps on logs.listen, which is not set";
}

int
log_conf_check(const struct log_conf *lc, struct conf_fault *f)
{
    if (!lc->capture_stderr && !lc->has_listen)
        return conf_fault(f, NULL,
                          "expected capture_stderr: true or a listen endpoint; nothing would be "
                          "forwarded");
    if (lc->has_listen && endpoint_equal(&lc->listen, &lc->forward))
        return conf_fault(f, "listen",
                          "expected an endpoint other than forward (lines would loop)");
    if (lc->has_listen &&
        allow_check(lc->listen.kind, lc->limits.allow, lc->limits.n_allow, "allow", f) != 0)
        return -1;
    /* the default line_max fits the smallest buffer: only a given one can fail */
    if (lc->line_max > lc->buffer / 4)
        return conf_fault(f, "line_max",
                          "expected line_max (%zu) to be at most a quarter of buffer (%zu)",
                          lc->line_max, lc->buffer);
    return 0;
}

int
log_sink_conf_check(const struct log_sink_conf *sc, struct conf_fault *f)
{
    return allow_check(sc->listen.kind, sc->limits.allow, sc->limits.n_allow, "allow", f);
}

/* log_sink_conf_equal() compares each field: a new one must be added
 * there, and these sizes (LP64 ABIs) with it. */
#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(struct log_sink_conf) == 6496,
               "log_sink_conf_equal(): compare the new field");
_Static_assert(sizeof(struct stream_limits) == 1808,
               "log_sink_conf_equal(): compare the new field");
#endif

bool
log_sink_conf_equal(const struct log_sink_conf *a, const struct log_sink_conf *b)
{
    const struct stream_limits *x = &a->limits, *y = &b->limits;

    if (strncmp(a->name, b->name, sizeof(a->name)) != 0 ||
        !endpoint_conf_equal(&a->listen, &b->listen) ||
        strncmp(a->file, b->file, sizeof(a->file)) != 0 || a->line_max != b->line_max ||
        x->n_allow != y->n_allow || x->max_streams != y->max_streams ||
        x->idle_timeout_ms != y->idle_timeout_ms || a->mark_unverified != b->mark_unverified)
        return false;
    return allow_rules_equal(x->allow, y->allow, x->n_allow);
}
