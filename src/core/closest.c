/* closest.c - "did you mean"; see closest.h. */
#include "core/closest.h"

#include <stdint.h>
#include <string.h>

static int
lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

size_t
closest_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t d[CLOSEST_MAX + 1][CLOSEST_MAX + 1];

    if (la > CLOSEST_MAX || lb > CLOSEST_MAX)
        return SIZE_MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = lower(a[i - 1]) != lower(b[j - 1]);
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1]) && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

bool
closest_near(size_t d, size_t klen)
{
    return d <= (klen >= 6 ? 2 : 1);
}

const char *
closest_word(const char *s, size_t len, const char *const *words, size_t n)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;

    for (size_t i = 0; i < n; i++) {
        size_t lk = strlen(words[i]);
        size_t d = closest_distance(s, len, words[i], lk);
        if (closest_near(d, lk) && d < best_d) {
            best = words[i];
            best_d = d;
        }
    }
    return best;
}

void
closest_option_hint(FILE *f, const char *prog, const char *arg, const struct option *opts)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;

    if (strncmp(arg, "--", 2) != 0)
        return;
    arg += 2;
    size_t len = strcspn(arg, "=");
    for (const struct option *o = opts; o->name != NULL; o++) {
        size_t lk = strlen(o->name);
        if (lk == len && strncmp(arg, o->name, len) == 0)
            return; /* known: getopt_long complained of its argument */
        size_t d = closest_distance(arg, len, o->name, lk);
        if (closest_near(d, lk) && d < best_d) {
            best = o->name;
            best_d = d;
        }
    }
    if (best != NULL)
        fprintf(f, "%s: did you mean '--%s'?\n", prog, best);
}

void
closest_unknown(FILE *f, const char *prog, const char *what, const char *word,
                const char *const *words, size_t n)
{
    const char *hint = closest_word(word, strlen(word), words, n);

    if (hint != NULL)
        fprintf(f, "%s: unknown %s '%s' (did you mean '%s'?)\n", prog, what, word, hint);
    else
        fprintf(f, "%s: unknown %s '%s'\n", prog, what, word);
}
