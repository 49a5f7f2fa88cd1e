/* wipe_watch.h - for the tests that check that no plaintext stays in the
 * memory airlock gives back (test_http_session, test_relay_tls,
 * test_broker_wrap, test_file). Include it once per test program.
 *
 * free() and realloc() are wrapped (link with
 * -Wl,--wrap=free,--wrap=realloc), and with wipe_watch_openssl() every
 * allocation OpenSSL makes goes through them too. While watching, a block
 * given back by the watched thread (wipe_leaks), or moved by realloc()
 * (wipe_moved: it may leave the old block as it was), while it holds the
 * marker is counted. */
#ifndef AIRLOCK_TESTS_WIPE_WATCH_H
#define AIRLOCK_TESTS_WIPE_WATCH_H

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

void __real_free(void *p);
void *__real_realloc(void *p, size_t n);
void __wrap_free(void *p);
void *__wrap_realloc(void *p, size_t n);

static pthread_t wipe_thread;
static const char *wipe_marker;
static atomic_bool wipe_on;
static atomic_int wipe_leaks, wipe_moved;

/* Counts from zero what thread gives back holding marker. */
static inline void
wipe_watch(pthread_t thread, const char *marker)
{
    wipe_thread = thread;
    wipe_marker = marker;
    atomic_store(&wipe_leaks, 0);
    atomic_store(&wipe_moved, 0);
    atomic_store(&wipe_on, true);
}

static inline void
wipe_unwatch(void)
{
    atomic_store(&wipe_on, false);
}

static inline bool
wipe_holds_marker(void *p)
{
    return p != NULL && atomic_load(&wipe_on) && pthread_equal(pthread_self(), wipe_thread) &&
           memmem(p, malloc_usable_size(p), wipe_marker, strlen(wipe_marker)) != NULL;
}

void
__wrap_free(void *p)
{
    if (wipe_holds_marker(p))
        atomic_fetch_add(&wipe_leaks, 1);
    __real_free(p);
}

void *
__wrap_realloc(void *p, size_t n)
{
    if (wipe_holds_marker(p))
        atomic_fetch_add(&wipe_moved, 1);
    return __real_realloc(p, n);
}

static inline void *
wipe_crypto_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return malloc(n);
}

static inline void *
wipe_crypto_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return __wrap_realloc(p, n);
}

static inline void
wipe_crypto_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    __wrap_free(p);
}

/* OpenSSL's allocations through the wrappers: call before OpenSSL
 * allocates anything (first thing in main()). Returns 0 or -1. */
static inline int
wipe_watch_openssl(void)
{
    return CRYPTO_set_mem_functions(wipe_crypto_malloc, wipe_crypto_realloc, wipe_crypto_free) == 1
               ? 0
               : -1;
}

/* Writes n bytes of numbered lines that hold the marker to path (after
 * what it holds when append is set; a new file is 0600: a secret's).
 * Returns 0 or -1. */
static inline int
wipe_marker_file(const char *path, const char *marker, size_t n, bool append)
{
    char line[128];
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0600);

    for (size_t done = 0; fd >= 0 && done < n;) {
        int len = snprintf(line, sizeof(line), "%s %08zu\n", marker, done);
        size_t w = (size_t)len < n - done ? (size_t)len : n - done;
        if (write(fd, line, w) != (ssize_t)w) {
            close(fd);
            return -1;
        }
        done += w;
    }
    return fd >= 0 && close(fd) == 0 ? 0 : -1;
}

#endif
