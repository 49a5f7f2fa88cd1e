/* log.h - one line per event to stderr, relayd style.
 *
 * log_warn() appends strerror(errno); log_warnx() does not. The level is
 * checked before the arguments are evaluated, so a disabled log_debug()
 * costs one comparison. Lines never carry payload or secrets. */
#ifndef AIRLOCK_CORE_LOG_H
#define AIRLOCK_CORE_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* How a line is written (log_format:): text is "TS LEVEL MESSAGE[: ERROR]";
 * logfmt and json split MESSAGE into msg (its words without '=') and its
 * k=v fields, in order, after ts and level, with error last. */
enum log_format { LOG_FMT_TEXT, LOG_FMT_LOGFMT, LOG_FMT_JSON };

extern enum log_level log_threshold;
extern enum log_format log_format;

/* Receives each formatted line (newline included) after it went to stderr,
 * on the thread that logged it. It must not block, allocate without bound,
 * or log. */
typedef void (*log_tee_fn)(const char *line, size_t len, void *arg);

/* Installs fn (NULL removes it) to be handed every line from now on. When
 * this returns, no call to the previous fn is running any more, so its arg
 * may be freed. */
void log_set_tee(log_tee_fn fn, void *arg);

/* From now on, lines never wait for stderr's reader (a pipe or a socket:
 * journald, a container runtime, a terminal), which would hold every
 * thread that logs, the relays' too: a line it does not take at once is
 * dropped, and the next one it takes follows a warning with how many were
 * ("lines_dropped=N"). Call it before threads log. Returns 0 or -errno
 * (lines then wait as before). */
int log_stderr_nowait(void);

/* Opens /dev/null (read and write) on each of fds 0, 1 and 2 that is not
 * open. Started with them closed (a supervisor, a script's `2>&-`), a
 * process would give their numbers to the first files and sockets it opens,
 * and its log lines (fd 2) and output (fd 1) would go into a listener, a
 * client's connection or a file. Call it first in main(), before anything
 * opens a file. Exits (fatal) when /dev/null cannot be opened. */
void log_std_fds(void);

/* Makes s, text a peer chose, fit for a quoted field (key="s") in place:
 * control bytes, bytes outside ASCII and quotes become '?', so the value
 * ends at airlock's closing quote in every format and can forge neither a
 * line nor a field of one. */
void log_quotable(char *s);

/* Copies s into buf (len bytes, cut to fit) and makes the copy
 * log_quotable(); returns buf, the value of a quoted field (key="%s"). */
char *log_quoted(char *buf, size_t len, const char *s);

/* Parses "error", "warn", "info" or "debug"; returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

/* Parses "text", "logfmt" or "json"; returns 0 or -EINVAL. */
int log_format_parse(const char *s, enum log_format *out);

/* Writes one line (newline included) of format f into out (cap bytes, at
 * least LOG_OUT_MAX) from the timestamp ts, the level lvl, the message msg
 * (NUL-terminated) and err (strerror text, or NULL); returns its length.
 * Values are escaped (quotes, backslashes, control bytes, invalid UTF-8 as
 * U+FFFD), so a logfmt or json line always parses. */
size_t log_format_line(char *out, size_t cap, enum log_format f, const char *ts, enum log_level lvl,
                       const char *msg, const char *err);

/* A message is cut at LOG_MSG_MAX bytes; escaped it fits in LOG_OUT_MAX. */
#define LOG_MSG_MAX 2048
#define LOG_OUT_MAX (8 * LOG_MSG_MAX + 512)

void log_emit(enum log_level lvl, int with_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
noreturn void log_fatal(int with_errno, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One kind of line that a peer can make airlock log at will (a refusal, a
 * timeout): at most one line per period, any thread. Zero it to start. */
struct log_rate {
    _Atomic uint64_t last_ms; /* when the last line went out; 0: never */
    atomic_ulong quiet;       /* events not logged since */
};

/* Returns true when the event at now_ms (a monotonic clock in ms) may be
 * logged: the first one, then one per period_ms. *quiet gets the number of
 * events counted quietly since the last line (to print with this one). */
bool log_rate_ok(struct log_rate *r, uint64_t now_ms, unsigned period_ms, unsigned long *quiet);

#define log_at(lvl, e, ...)                                                                        \
    do {                                                                                           \
        if ((lvl) <= log_threshold)                                                                \
            log_emit((lvl), (e), __VA_ARGS__);                                                     \
    } while (0)

#define log_warn(...) log_at(LOG_LVL_WARN, 1, __VA_ARGS__)
#define log_warnx(...) log_at(LOG_LVL_WARN, 0, __VA_ARGS__)
#define log_info(...) log_at(LOG_LVL_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_at(LOG_LVL_DEBUG, 0, __VA_ARGS__)
#define fatal(...) log_fatal(1, __VA_ARGS__)
#define fatalx(...) log_fatal(0, __VA_ARGS__)

#endif
