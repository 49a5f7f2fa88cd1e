/* units.h - the values a setting is written in: bounded unsigned integers,
 * durations, sizes, octal file modes, ranges, names and account names; and
 * what a module's block check reports (struct conf_fault).
 *
 * Pure: no syscalls, no allocation, no YAML. The config file, the command
 * line and the programs of apps/ read their numbers through these, so one
 * spelling means the same everywhere. Every parser takes a NUL-terminated
 * string and returns 0, or -EINVAL (the output untouched) for anything
 * else: signs, spaces, base prefixes, other units, values past the bound. */
#ifndef AIRLOCK_CORE_UNITS_H
#define AIRLOCK_CORE_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONF_NAME_MAX 64        /* a relay, sink or pool name, incl. NUL */
#define CONF_FILE_PATH_MAX 4096 /* a file or directory path, incl. NUL */
#define UNITS_ACCOUNT_MAX 64    /* a user or group name or number, incl. NUL */
#define UNITS_KEY_MAX 128       /* a user key, incl. NUL */

/* Reads decimal digits only (at least one), value <= max, into *out. */
int units_uint(const char *s, uint64_t max, uint64_t *out);

/* A duration ("250ms", "5s", "2m", "1h"; a bare integer is seconds) into
 * *ms; compound forms like "1h30m" and values past UINT_MAX ms are refused. */
int units_duration(const char *s, unsigned *ms);

/* A size ("1MiB", "512KiB", "4096", "64B", "1GiB"; a bare integer is
 * bytes) into *bytes; values past 2^40 are refused. */
int units_size(const char *s, size_t *bytes);

/* A decimal number with at most places digits after the point ("0.5",
 * "2", "1.25": at least one digit before it, none or 1..places after it)
 * into *out in units of 10^-places ("0.5" with 2 places: 50); a value past
 * max (in those units) is refused. */
int units_fixed(const char *s, unsigned places, uint64_t max, uint64_t *out);

/* An octal file mode ("0660", "600": 1-4 octal digits, 0001-0777). */
int units_mode(const char *s, unsigned *mode);

/* A range FIRST-LAST of integers with 1 <= FIRST <= LAST <= max. */
int units_range(const char *s, uint64_t max, unsigned *first, unsigned *last);

/* Returns 0 when s is a name of 1 to size-1 characters from A-Z a-z 0-9
 * _ . - (what relay, sink and pool names are: safe in logs and in
 * Prometheus labels), else -EINVAL. */
int units_name(const char *s, size_t size);

/* Returns 0 when s is a user key (what a pool's login names and the
 * directory holds): 1 to UNITS_KEY_MAX-1 characters from A-Z a-z 0-9 _ . @ -,
 * not starting with '-' or '.' (safe in logs and in file names), else
 * -EINVAL. */
int units_key(const char *s);

/* Returns 0 when s can name a user or group (or be a uid or gid): a name
 * (units_name(), UNITS_ACCOUNT_MAX) not starting with '-'; else -EINVAL. */
int units_account(const char *s);

/* Hex digits (an even number, upper or lower case, nothing else) into at
 * most cap bytes at out; *len is the number of bytes. "" is 0 bytes. */
int units_hex(const char *s, uint8_t *out, size_t cap, size_t *len);

/* The value of one hex digit, or -1. */
int units_hex_digit(char c);

/* What a module's check of a whole block (rules that span its keys)
 * objects to: key is the setting at fault as the block spells it
 * ("send_proxy"), or NULL for the block as a whole; item is the index of
 * the element at fault when key is a list, else CONF_NO_ITEM. The front
 * end (file or command line) adds where the block is. */
#define CONF_NO_ITEM SIZE_MAX
struct conf_fault {
    const char *key;
    size_t item;
    bool at_block; /* a rule of the block's: point at the block, not at key's value */
    char msg[512]; /* what was expected */
};

/* Fills *f (key, CONF_NO_ITEM, the formatted message) and returns -1. */
int conf_fault(struct conf_fault *f, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
