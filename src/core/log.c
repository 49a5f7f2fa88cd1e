/* log.c - formatting of log lines; see log.h. */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/utf8.h"

enum log_level log_threshold = LOG_LVL_INFO;
enum log_format log_format = LOG_FMT_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const format_names[] = {"text", "logfmt", "json"};

/* The tee is called under this lock so that log_set_tee() can promise that
 * the old one is no longer running. It is held for one bounded call. */
static pthread_mutex_t tee_lock = PTHREAD_MUTEX_INITIALIZER;
static log_tee_fn tee_fn;
static void *tee_arg;

/* Where lines go: stderr, or (log_stderr_nowait()) a description of it of
 * our own that never waits for its reader. */
static int out_fd = STDERR_FILENO;
static bool out_sock;         /* send() it: a socket (journald's) */
static atomic_ulong out_lost; /* lines stderr did not take since one it did */
static atomic_bool out_torn;  /* the last of them went out in part */

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

int
log_format_parse(const char *s, enum log_format *out)
{
    for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
        if (strcmp(s, format_names[i]) == 0) {
            *out = (enum log_format)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- formatting */

/* The line being written; one byte is kept for the newline, and what does
 * not fit is cut (never for logfmt and json: LOG_OUT_MAX is enough). */
struct wbuf {
    char *p;
    size_t cap, n;
};

static void
put(struct wbuf *w, const char *s, size_t len)
{
    if (len > w->cap - 1 - w->n)
        len = w->cap - 1 - w->n;
    memcpy(w->p + w->n, s, len);
    w->n += len;
}

static void
puts0(struct wbuf *w, const char *s)
{
    put(w, s, strlen(s));
}

/* s on a text line: a control byte (a newline, a carriage return, an
 * escape) as \xNN, so that no byte a peer chose (a socket's name, a
 * header) can end the line and forge the next one, or drive a terminal. */
static void
puts_text(struct wbuf *w, const char *s)
{
    for (const char *p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f) {
            char esc[5];
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            put(w, esc, 4);
        } else {
            put(w, p, 1);
        }
    }
}

/* s as the inside of a JSON string, which logfmt's quoted values share
 * (utf8_json_char()). */
static void
put_escaped(struct wbuf *w, const char *s, size_t len)
{
    char esc[UTF8_JSON_CHAR_MAX];

    for (size_t i = 0, used; i < len; i += used)
        put(w, esc, utf8_json_char((const uint8_t *)s + i, len - i, esc, &used));
}

/* A logfmt value bare when it can be (printable ASCII without spaces,
 * quotes, '=' or backslashes), quoted otherwise. */
static bool
logfmt_bare(const char *s, size_t len)
{
    bool bare = len > 0;

    for (size_t i = 0; i < len && bare; i++)
        bare = s[i] > ' ' && s[i] < 0x7f && s[i] != '"' && s[i] != '=' && s[i] != '\\';
    return bare;
}

static void
put_logfmt_value(struct wbuf *w, const char *s, size_t len)
{
    if (logfmt_bare(s, len)) {
        put(w, s, len);
        return;
    }
    put(w, "\"", 1);
    put_escaped(w, s, len);
    put(w, "\"", 1);
}

/* One word of a message: a field (key=value, key=\"quoted value\") or a
 * word of msg (key == NULL). */
struct token {
    const char *key, *val;
    size_t klen, vlen;
};

static bool
is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/* Reads the token at *p into t and moves *p past it; false at the end. A
 * quoted value ends at the quote before a space or the end (airlock quotes
 * values that may hold spaces, not ones that hold quotes before spaces). */
static bool
next_token(const char **p, struct token *t)
{
    const char *s = *p, *e;

    while (*s == ' ')
        s++;
    if (*s == '\0')
        return false;
    for (e = s; is_key_char(*e); e++)
        ;
    if (e > s && *e == '=') {
        t->key = s;
        t->klen = (size_t)(e - s);
        s = e + 1;
        if (*s == '"') {
            s++;
            for (e = s; *e != '\0' && !(*e == '"' && (e[1] == ' ' || e[1] == '\0')); e++)
                ;
            t->val = s;
            t->vlen = (size_t)(e - s);
            *p = *e == '"' ? e + 1 : e;
            return true;
        }
    } else {
        t->key = NULL;
        t->klen = 0;
    }
    for (e = s; *e != '\0' && *e != ' '; e++)
        ;
    t->val = s;
    t->vlen = (size_t)(e - s);
    /* "pool=P instance=I: why": the colon ends the fields, it is no part
     * of the value (airlock writes addresses as [v6]:port, never with a
     * ':' at the end) */
    if (t->key != NULL && t->vlen > 0 && s[t->vlen - 1] == ':')
        t->vlen--;
    *p = e;
    return true;
}

/* The keys a line has anyway; a field of the message named like one of
 * them gets a leading '_' so that every key stays unique. */
static bool
is_fixed_key(const struct token *t)
{
    static const char *const fixed[] = {"ts", "level", "msg", "error"};

    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (t->klen == strlen(fixed[i]) && memcmp(t->key, fixed[i], t->klen) == 0)
            return true;
    return false;
}

/* Writes KEY=VALUE (logfmt) or ,"KEY":"VALUE" (json); the first json key
 * comes with the opening brace instead of a comma. */
static void
put_field(struct wbuf *w, enum log_format f, const char *key, size_t klen, bool rename,
          const char *val, size_t vlen)
{
    if (f == LOG_FMT_JSON) {
        puts0(w, w->n == 0 ? "{\"" : ",\"");
        if (rename)
            put(w, "_", 1);
        put(w, key, klen);
        puts0(w, "\":\"");
        put_escaped(w, val, vlen);
        put(w, "\"", 1);
        return;
    }
    if (w->n > 0)
        put(w, " ", 1);
    if (rename)
        put(w, "_", 1);
    put(w, key, klen);
    put(w, "=", 1);
    put_logfmt_value(w, val, vlen);
}

/* msg: the message's words that are not fields, in order, one space
 * apart, as one value. */
static void
put_msg(struct wbuf *w, enum log_format f, const char *msg)
{
    struct token t;
    const char *p = msg;
    size_t start;
    bool first = true;

    puts0(w, f == LOG_FMT_JSON ? ",\"msg\":\"" : " msg=\"");
    start = w->n;
    while (next_token(&p, &t)) {
        if (t.key != NULL)
            continue;
        if (!first)
            put(w, " ", 1);
        first = false;
        put_escaped(w, t.val, t.vlen);
    }
    if (f == LOG_FMT_LOGFMT && logfmt_bare(w->p + start, w->n - start)) {
        /* one word needs no quotes, like any other logfmt value (escaped
         * words hold a backslash, so they stay quoted) */
        memmove(w->p + start - 1, w->p + start, w->n - start);
        w->n--;
        return;
    }
    put(w, "\"", 1);
}

size_t
log_format_line(char *out, size_t cap, enum log_format f, const char *ts, enum log_level lvl,
                const char *msg, const char *err)
{
    struct wbuf w = {.p = out, .cap = cap};
    struct token t;
    const char *p = msg;

    if (f == LOG_FMT_TEXT) {
        /* today's lines, cut where they always were */
        if (w.cap > LOG_MSG_MAX - 1)
            w.cap = LOG_MSG_MAX - 1;
        puts0(&w, ts);
        put(&w, " ", 1);
        puts0(&w, level_names[lvl]);
        put(&w, " ", 1);
        puts_text(&w, msg);
        if (err != NULL) {
            put(&w, ": ", 2);
            puts_text(&w, err);
        }
    } else {
        put_field(&w, f, "ts", 2, false, ts, strlen(ts));
        put_field(&w, f, "level", 5, false, level_names[lvl], strlen(level_names[lvl]));
        put_msg(&w, f, msg);
        while (next_token(&p, &t))
            if (t.key != NULL)
                put_field(&w, f, t.key, t.klen, is_fixed_key(&t), t.val, t.vlen);
        if (err != NULL)
            put_field(&w, f, "error", 5, false, err, strlen(err));
        if (f == LOG_FMT_JSON)
            put(&w, "}", 1);
    }
    w.p[w.n++] = '\n';
    return w.n;
}

void
log_quotable(char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f || *s == '"')
            *s = '?';
}

char *
log_quoted(char *buf, size_t len, const char *s)
{
    snprintf(buf, len, "%s", s);
    log_quotable(buf);
    return buf;
}

/* The time of now as a line starts with it: 2025-01-01T10:00:00.123Z. */
static void
log_stamp(char *stamp, size_t len)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(stamp, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + k, len - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

void
log_std_fds(void)
{
    for (int fd = 0; fd <= STDERR_FILENO; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        /* open() takes the lowest free number: fd, as those below are open */
        if (open("/dev/null", O_RDWR) < 0)
            fatal("cannot open /dev/null for the closed fd %d", fd);
    }
}

int
log_stderr_nowait(void)
{
    struct stat st;
    int fd;

    if (fstat(STDERR_FILENO, &st) != 0)
        return -errno;
    if (S_ISSOCK(st.st_mode)) {
        out_sock = true;
        return 0;
    }
    if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
        return 0; /* a file: it waits for the disk, never for a reader */
    /* a description of our own: O_NONBLOCK on fd 2's would reach every
     * process that shares it (the shell's terminal) */
    if ((fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0)
        return -errno;
    out_fd = fd;
    return 0;
}

/* Whether all of line went to stderr at once; a line cut short is lost
 * too, and the next one stderr takes begins on a line of its own. */
static bool
out_put(const char *line, size_t n)
{
    ssize_t w =
        out_sock ? send(out_fd, line, n, MSG_DONTWAIT | MSG_NOSIGNAL) : write(out_fd, line, n);

    if (w > 0 && (size_t)w < n)
        atomic_store(&out_torn, true);
    return w == (ssize_t)n;
}

/* Writes line to stderr, after a note of the lines it did not take before
 * (formatted in note, LOG_OUT_MAX + 1 bytes). Nothing waits for stderr's
 * reader: a line it does not take at once is counted and dropped, as the
 * forward buffer drops lines (docs/observability.md). */
static void
out_write(const char *line, size_t n, const char *stamp, char *note)
{
    unsigned long lost = atomic_exchange(&out_lost, 0);
    char msg[96];

    if (lost > 0) {
        size_t torn = atomic_exchange(&out_torn, false) ? 1 : 0;
        snprintf(msg, sizeof(msg), "log: stderr took no more lines: lines_dropped=%lu", lost);
        note[0] = '\n';
        size_t k =
            log_format_line(note + torn, LOG_OUT_MAX, log_format, stamp, LOG_LVL_WARN, msg, NULL);
        if (!out_put(note, k + torn)) {
            atomic_fetch_add(&out_lost, lost + 1);
            return;
        }
    }
    if (!out_put(line, n))
        atomic_fetch_add(&out_lost, 1);
}

/* Formats the whole line first and writes it with one write(2), so lines
 * from several threads never interleave. */
static void
log_vemit(enum log_level lvl, int with_errno, const char *fmt, va_list ap)
{
    static _Thread_local char line[LOG_OUT_MAX], note[LOG_OUT_MAX + 1];
    int saved = errno;
    char msg[LOG_MSG_MAX], stamp[40];

    log_stamp(stamp, sizeof(stamp));
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = '\0';
    size_t n = log_format_line(line, sizeof(line), log_format, stamp, lvl, msg,
                               with_errno ? strerror(saved) : NULL);
    out_write(line, n, stamp, note);
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
