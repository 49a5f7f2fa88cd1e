/* units.c - values of settings; see units.h. */
#include "core/units.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"

/* Digits only: no sign, no spaces, no base prefixes, so "-1", "+3", " 5",
 * "0x10" and "1e3" are all refused rather than read as something else. The
 * value is checked after each digit, so a long run cannot overflow. */
int
units_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (s == NULL || *s == '\0')
        return -EINVAL;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return -EINVAL;
    }
    *out = v;
    return 0;
}

/* One unit a number may carry: "ms", "KiB", or "" for a bare number. */
struct unit {
    const char *suffix;
    uint64_t mult;
};

/* Reads decimal digits followed by exactly one of the n suffixes in units and
 * stores digits * multiplier in *out. The digits alone and the product must
 * both stay within limit. */
static int
parse_scaled(const char *s, const struct unit *units, size_t n, uint64_t limit, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;

    if (s == NULL || *p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > limit)
            return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(p, units[i].suffix) != 0)
            continue;
        if (v > limit / units[i].mult)
            return -EINVAL;
        *out = v * units[i].mult;
        return 0;
    }
    return -EINVAL;
}

int
units_duration(const char *s, unsigned *ms)
{
    static const struct unit units[] = {
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}};
    uint64_t v;
    int rc = parse_scaled(s, units, sizeof(units) / sizeof(units[0]), UINT_MAX, &v);

    if (rc == 0)
        *ms = (unsigned)v;
    return rc;
}

int
units_size(const char *s, size_t *bytes)
{
    static const struct unit units[] = {
        {"", 1}, {"B", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", 1024 * 1024 * 1024}};
    uint64_t v;
    int rc = parse_scaled(s, units, sizeof(units) / sizeof(units[0]), (uint64_t)1 << 40, &v);

    if (rc == 0)
        *bytes = (size_t)v;
    return rc;
}

int
units_fixed(const char *s, unsigned places, uint64_t max, uint64_t *out)
{
    char whole[24];
    const char *dot = s != NULL ? strchr(s, '.') : NULL;
    size_t len = dot != NULL ? (size_t)(dot - s) : (s != NULL ? strlen(s) : 0);
    size_t decimals = dot != NULL ? strlen(dot + 1) : 0;
    uint64_t v, frac = 0, scale = 1;

    if (s == NULL || len == 0 || len >= sizeof(whole) || (dot != NULL && decimals == 0) ||
        decimals > places || places > 9)
        return -EINVAL;
    memcpy(whole, s, len);
    whole[len] = '\0';
    for (unsigned i = 0; i < places; i++)
        scale *= 10;
    if (units_uint(whole, max / scale, &v) != 0 ||
        (decimals > 0 && units_uint(dot + 1, UINT64_MAX, &frac) != 0))
        return -EINVAL;
    for (size_t i = decimals; i < places; i++)
        frac *= 10;
    if (v * scale + frac > max)
        return -EINVAL;
    *out = v * scale + frac;
    return 0;
}

int
units_mode(const char *s, unsigned *mode)
{
    unsigned v = 0;
    size_t n = strlen(s);

    if (n == 0 || n > 4 || strspn(s, "01234567") != n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        v = v * 8 + (unsigned)(s[i] - '0');
    if (v == 0 || v > 0777)
        return -EINVAL;
    *mode = v;
    return 0;
}

int
units_range(const char *s, uint64_t max, unsigned *first, unsigned *last)
{
    char a[16], b[16];
    uint64_t lo, hi;
    const char *dash = strchr(s, '-');

    if (dash == NULL || dash == s || (size_t)(dash - s) >= sizeof(a) ||
        strlen(dash + 1) >= sizeof(b))
        return -EINVAL;
    memcpy(a, s, (size_t)(dash - s));
    a[dash - s] = '\0';
    memcpy(b, dash + 1, strlen(dash + 1) + 1);
    if (units_uint(a, max, &lo) != 0 || units_uint(b, max, &hi) != 0 || lo == 0 || hi < lo)
        return -EINVAL;
    *first = (unsigned)lo;
    *last = (unsigned)hi;
    return 0;
}

int
units_name(const char *s, size_t size)
{
    size_t len = strlen(s);

    if (len == 0 || len >= size || strspn(s, NAME_CHARS) != len)
        return -EINVAL;
    return 0;
}

int
units_key(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len >= UNITS_KEY_MAX || s[0] == '-' || s[0] == '.' ||
        strspn(s, NAME_CHARS "@") != len)
        return -EINVAL;
    return 0;
}

int
units_account(const char *s)
{
    return s[0] == '-' ? -EINVAL : units_name(s, UNITS_ACCOUNT_MAX);
}

int
units_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
units_hex(const char *s, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(s);

    if (n % 2 != 0 || n / 2 > cap)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (units_hex_digit(s[i]) < 0)
            return -EINVAL;
    for (size_t i = 0; i < n / 2; i++)
        out[i] = (uint8_t)(units_hex_digit(s[2 * i]) << 4 | units_hex_digit(s[2 * i + 1]));
    *len = n / 2;
    return 0;
}

int
conf_fault(struct conf_fault *f, const char *key, const char *fmt, ...)
{
    va_list ap;

    f->key = key;
    f->item = CONF_NO_ITEM;
    f->at_block = false;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
    va_end(ap);
    return -1;
}
