/* log.c - formatting of log lines; see log.h. */
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum log_level log_threshold = LOG_LVL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* The tee is called under this lock so that log_set_tee() can promise that
 * the old one is no longer running. It is held for one bounded call. */
static pthread_mutex_t tee_lock = PTHREAD_MUTEX_INITIALIZER;
static log_tee_fn tee_fn;
static void *tee_arg;

void
log_set_tee(log_tee_fn fn, void *arg)
{
    pthread_mutex_lock(&tee_lock);
    tee_fn = fn;
    tee_arg = arg;
    pthread_mutex_unlock(&tee_lock);
}

int
log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* Formats the whole line first and writes it with one write(2), so lines
 * from several threads never interleave. */
static void
log_vemit(enum log_level lvl, int with_errno, const char *fmt, va_list ap)
{
    int saved = errno;
    char line[2048];
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ", ts.tv_nsec / 1000000,
                          level_names[lvl]);
    int k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    if (k > 0)
        n += (size_t)k;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    if (with_errno) {
        k = snprintf(line + n, sizeof(line) - n, ": %s", strerror(saved));
        if (k > 0)
            n += (size_t)k;
        if (n > sizeof(line) - 2)
            n = sizeof(line) - 2;
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
    pthread_mutex_lock(&tee_lock);
    if (tee_fn != NULL)
        tee_fn(line, n, tee_arg);
    pthread_mutex_unlock(&tee_lock);
    errno = saved;
}

void
log_emit(enum log_level lvl, int with_errno, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vemit(lvl, with_errno, fmt, ap);
    va_end(ap);
}

void
log_fatal(int with_errno, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vemit(LOG_LVL_ERROR, with_errno, fmt, ap);
    va_end(ap);
    exit(1);
}

bool
log_rate_ok(struct log_rate *r, uint64_t now_ms, unsigned period_ms, unsigned long *quiet)
{
    uint64_t last = atomic_load(&r->last_ms);

    /* one thread wins the period's line; the others count themselves quiet
     * (now_ms + 1: a line at time 0 still counts as logged) */
    if ((last == 0 || now_ms + 1 >= last + period_ms) &&
        atomic_compare_exchange_strong(&r->last_ms, &last, now_ms + 1)) {
        *quiet = atomic_exchange(&r->quiet, 0);
        return true;
    }
    atomic_fetch_add(&r->quiet, 1);
    return false;
}
