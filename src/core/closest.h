/* closest.h - "did you mean": the known word closest to a mistyped one.
 *
 * One measure for every hint airlock gives: config keys (cli/confmap.c),
 * commands and long options (cli/main.c, attest.c, field.c). No state, no
 * allocation; only closest_option_hint() and closest_unknown() write (to a
 * FILE). */
#ifndef AIRLOCK_CORE_CLOSEST_H
#define AIRLOCK_CORE_CLOSEST_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLOSEST_MAX 32 /* longer words are never compared */

/* Optimal string alignment distance, case-insensitive: insertions,
 * deletions, substitutions and swaps of adjacent letters each cost one.
 * SIZE_MAX when either word is longer than CLOSEST_MAX. */
size_t closest_distance(const char *a, size_t la, const char *b, size_t lb);

/* Whether a word at distance d from the known word known (klen letters) is
 * close enough to suggest it: one edit away, or two for words of six
 * letters or more, where two typos are still recognisable. */
bool closest_near(size_t d, size_t klen);

/* The word of words[0..n) closest to s and near it, or NULL. */
const char *closest_word(const char *s, size_t len, const char *const *words, size_t n);

/* After getopt_long() returned '?' for arg (argv[optind - 1]): when arg is
 * an unknown long option ("--name" or "--name=VALUE") near one of opts,
 * prints "PROG: did you mean '--NAME'?" to f. Nothing otherwise. */
void closest_option_hint(FILE *f, const char *prog, const char *arg, const struct option *opts);

/* Prints "PROG: unknown WHAT 'word'" to f, with " (did you mean 'W'?)"
 * when the closest of words[0..n) is near: a mistyped command or
 * subcommand. */
void closest_unknown(FILE *f, const char *prog, const char *what, const char *word,
                     const char *const *words, size_t n);

#endif
