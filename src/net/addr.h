/* addr.h - the number and address pieces that endpoint, allow and egress
 * rules are built from.
 *
 * Pure: no syscalls, no allocation. Every parser takes a slice (pointer and
 * length, not NUL-terminated) of the caller's text. */
#ifndef AIRLOCK_NET_ADDR_H
#define AIRLOCK_NET_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Returns true for the ASCII digits '0'-'9'. */
bool addr_is_digit(char c);

/* Reads p[0..len) as decimal digits only, at least one, value <= max.
 * Leading zeros are accepted; the value is checked after each digit so a long
 * run of digits cannot overflow. Returns true and sets *out, or false (and
 * leaves *out alone). */
bool addr_parse_decimal(const char *p, size_t len, uint32_t max, uint32_t *out);

/* Reads p[0..len) as an address of family af (AF_INET or AF_INET6) with
 * inet_pton() into addr (4 or 16 bytes, caller's storage). Returns true when
 * it is one. */
bool addr_parse_ip(int af, const char *p, size_t len, void *addr);

/* Returns true when the first prefix bits of a and b agree. */
bool addr_prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix);

#endif
