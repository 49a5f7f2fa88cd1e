/* backoff.h - the one doubling backoff: min_ms, then twice the last delay,
 * up to max_ms, until a success resets it.
 *
 *   struct backoff b = BACKOFF_INIT(100, 5000);
 *   timer_start(loop, &t, backoff_next(&b), retry, arg);   100, 200, 400...
 *   backoff_reset(&b);                                      it worked
 *
 * A zeroed struct with min_ms and max_ms set is a reset one. Nothing
 * allocates; callers may change min_ms and max_ms at any time (a reload):
 * the next delay respects them. */
#ifndef AIRLOCK_CORE_BACKOFF_H
#define AIRLOCK_CORE_BACKOFF_H

struct backoff {
    unsigned min_ms, max_ms; /* the first delay, the longest one */
    unsigned cur_ms;         /* the last delay given; 0: none since the reset */
};

#define BACKOFF_INIT(min, max)                                                                     \
    {                                                                                              \
        .min_ms = (min), .max_ms = (max), .cur_ms = 0                                              \
    }

/* Returns the delay to wait before the next attempt: min_ms after a reset,
 * then twice the last one, never more than max_ms. */
static inline unsigned
backoff_next(struct backoff *b)
{
    unsigned next = b->cur_ms == 0 ? b->min_ms : b->cur_ms * 2;

    /* cur_ms > max_ms / 2 also keeps the doubling from wrapping around */
    if (b->cur_ms > b->max_ms / 2 || next > b->max_ms)
        next = b->max_ms;
    b->cur_ms = next;
    return next;
}

/* An attempt worked: the next failure waits min_ms again. */
static inline void
backoff_reset(struct backoff *b)
{
    b->cur_ms = 0;
}

#endif
