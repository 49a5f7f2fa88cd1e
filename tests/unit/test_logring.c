/* test_logring.c - unit tests for the bounded line buffer: lines go out
 * whole and in order across the wrap, a full buffer drops the newest line
 * and counts it, the "lines dropped" marker lands where the gap is, a
 * partly written line is sent again whole after a rewind, and producers on
 * several threads never interleave inside a line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>

#include "core/logring.h"

/* Takes everything ready, writing at most chunk bytes per "write", into
 * out (NUL-terminated). Returns the bytes taken. */
static size_t
drain(struct logring *r, size_t chunk, char *out, size_t outlen)
{
    struct iovec iov[2];
    size_t o = 0;
    int n;

    while ((n = logring_peek(r, iov)) > 0) {
        size_t left = chunk;
        for (int i = 0; i < n && left > 0; i++) {
            size_t k = iov[i].iov_len < left ? iov[i].iov_len : left;
            assert_true(o + k < outlen);
            memcpy(out + o, iov[i].iov_base, k);
            o += k;
            left -= k;
        }
        logring_sent(r, chunk - left);
    }
    out[o] = '\0';
    return o;
}

static void
put(struct logring *r, const char *line, int expect)
{
    assert_int_equal(logring_put(r, LOG_SRC_APP, "t: ", 3, line, strlen(line), false), expect);
}

static void
test_ring_order_and_wrap(void **state)
{
    struct logring r;
    char out[4096];
    (void)state;

    assert_int_equal(logring_init(&r, 64), 0);
    for (int round = 0; round < 20; round++) { /* many trips around 64 bytes */
        put(&r, "one", 1);
        put(&r, "two two", 0);
        assert_int_equal(logring_put(&r, LOG_SRC_AIRLOCK, "", 0, "cut line", 3, true), 0);
        drain(&r, 5, out, sizeof(out));
        assert_string_equal(out, "t: one\nt: two two\ncut [cut]\n");
    }
    struct logring_stats st;
    logring_stats(&r, &st);
    assert_int_equal(st.lines[LOG_SRC_APP], 40);
    assert_int_equal(st.lines[LOG_SRC_AIRLOCK], 20);
    assert_int_equal(st.cut[LOG_SRC_AIRLOCK], 20);
    assert_int_equal(st.buffered, 0);
    assert_int_equal(st.sent_bytes, 20 * strlen("t: one\nt: two two\ncut [cut]\n"));
    logring_free(&r);
    logring_free(&r); /* twice is harmless */
}

static void
test_ring_full_drops_newest(void **state)
{
    struct logring r;
    char out[4096];
    (void)state;

    assert_int_equal(logring_init(&r, 64), 0);
    put(&r, "0123456789012345678901234567890", 1);   /* 35 bytes */
    put(&r, "abcdefghijklmnopqrstuvwxyz", -ENOBUFS); /* 30: 65 > 64 */
    put(&r, "abcdefghijklmnopqrstuvwxyz", -ENOBUFS);
    put(&r, "small", -ENOBUFS); /* the marker would not fit with it */
    struct logring_stats st;
    logring_stats(&r, &st);
    assert_int_equal(st.dropped[LOG_SRC_APP], 3);
    assert_int_equal(st.lines[LOG_SRC_APP], 1);
    /* sending frees room: the marker goes in at once, then new lines */
    drain(&r, 1000, out, sizeof(out));
    assert_string_equal(out, "t: 0123456789012345678901234567890\n"
                             "airlock: log buffer full: 3 lines dropped\n");
    put(&r, "after", 1);
    drain(&r, 1000, out, sizeof(out));
    assert_string_equal(out, "t: after\n");
    logring_free(&r);
}

static void
test_ring_rewind_resends_line(void **state)
{
    struct logring r;
    struct iovec iov[2];
    char out[256];
    (void)state;

    assert_int_equal(logring_init(&r, 128), 0);
    put(&r, "first", 1);
    put(&r, "second", 0);
    assert_int_equal(logring_peek(&r, iov), 1);
    logring_sent(&r, 12); /* "t: first\nt: " */
    struct logring_stats st;
    logring_stats(&r, &st);
    assert_int_equal(st.sent_bytes, 9);
    assert_int_equal(st.buffered, 10);
    /* a new line while the stream is mid-line is not "empty -> ready" */
    put(&r, "third", 0);
    logring_rewind(&r);
    drain(&r, 3, out, sizeof(out));
    assert_string_equal(out, "t: second\nt: third\n");
    logring_free(&r);
}

struct producer {
    struct logring *r;
    int id;
};

static void *
produce(void *arg)
{
    struct producer *p = arg;
    char line[64];

    for (int i = 0; i < 2000; i++) {
        int n = snprintf(line, sizeof(line), "p%d %05d %.*s", p->id, i, i % 40,
                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        logring_put(p->r, LOG_SRC_AIRLOCK, "", 0, line, (size_t)n, false);
    }
    return NULL;
}

static void
test_ring_threads(void **state)
{
    struct logring r;
    pthread_t t[4];
    struct producer p[4];
    char *out = malloc(1 << 20);
    int next[4] = {0};
    (void)state;

    assert_non_null(out);
    assert_int_equal(logring_init(&r, 1 << 20), 0);
    for (int i = 0; i < 4; i++) {
        p[i] = (struct producer){&r, i};
        assert_int_equal(pthread_create(&t[i], NULL, produce, &p[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    drain(&r, 777, out, 1 << 20);
    /* each line whole, each producer's lines in order */
    size_t lines = 0;
    for (char *s = out, *nl; (nl = strchr(s, '\n')) != NULL; s = nl + 1, lines++) {
        int id, seq, len = (int)(nl - s);
        assert_int_equal(sscanf(s, "p%d %d", &id, &seq), 2);
        assert_true(id >= 0 && id < 4);
        assert_int_equal(seq, next[id]);
        next[id]++;
        assert_int_equal(len, 9 + seq % 40);
    }
    assert_int_equal(lines, 8000);
    logring_free(&r);
    free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_order_and_wrap),
        cmocka_unit_test(test_ring_full_drops_newest),
        cmocka_unit_test(test_ring_rewind_resends_line),
        cmocka_unit_test(test_ring_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
