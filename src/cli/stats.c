/* stats.c - see stats.h. */
#include "cli/stats.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 64 /* a relay, pool or proxy name (63) and its NUL */
#define HEAD_MAX 32
#define VALUE_MAX 24
#define COLS_MAX 16 /* columns of a section */

enum section { SEC_RELAY, SEC_POOL, SEC_PROXY, SEC_COUNT };

static const char *const sec_label[SEC_COUNT] = {"relay", "pool", "proxy"};
static const char *const sec_head[SEC_COUNT] = {"RELAY", "POOL", "PROXY"};
static const char *const sec_noun[SEC_COUNT] = {"relays", "pools", "proxies"};

/* The series shown: a column each, or (by) one per value of that label. */
static const struct {
    enum section sec;
    const char *metric, *head, *by;
} series[] = {
    {SEC_RELAY, "airlock_connections_open", "OPEN", NULL},
    {SEC_RELAY, "airlock_connections_total", "TOTAL", NULL},
    {SEC_RELAY, "airlock_connections_refused_total", "REFUSED", NULL},
    {SEC_RELAY, "airlock_connect_errors_total", "CONNECT_ERRORS", NULL},
    {SEC_RELAY, "airlock_bytes_in_total", "BYTES_IN", NULL},
    {SEC_RELAY, "airlock_bytes_out_total", "BYTES_OUT", NULL},
    {SEC_POOL, "airlock_pool_instances", NULL, "state"},
    {SEC_POOL, "airlock_pool_starts_total", "STARTS", NULL},
    {SEC_POOL, "airlock_pool_restarts_total", "RESTARTS", NULL},
    {SEC_PROXY, "airlock_http_connections_open", "OPEN", NULL},
    {SEC_PROXY, "airlock_http_connections_total", "TOTAL", NULL},
    {SEC_PROXY, "airlock_http_connections_refused_total", "REFUSED", NULL},
};

struct row {
    char name[NAME_MAX_LEN];
    char value[COLS_MAX][VALUE_MAX];
};

struct table {
    char head[COLS_MAX][HEAD_MAX];
    size_t n_cols;
    struct row *rows;
    size_t n_rows, cap, last; /* last: where the previous lookup hit */
    int failed;
};

/* Copies the value of label (as `label="..."`) from the label set
 * s[0..len) into out; returns 0, or -1 when it is absent or too long. */
static int
label_value(const char *s, size_t len, const char *label, char *out, size_t outlen)
{
    size_t ll = strlen(label);

    for (size_t i = 0; i + ll + 2 <= len; i++) {
        if ((i > 0 && s[i - 1] != ',') || memcmp(s + i, label, ll) != 0 || s[i + ll] != '=' ||
            s[i + ll + 1] != '"')
            continue;
        const char *v = s + i + ll + 2, *end = memchr(v, '"', len - (size_t)(v - s));
        if (end == NULL || (size_t)(end - v) >= outlen)
            return -1;
        memcpy(out, v, (size_t)(end - v));
        out[end - v] = '\0';
        return 0;
    }
    return -1;
}

/* The row called name, added when new. Series list their owners in the
 * same order, so the row after the last one found is tried first. */
static struct row *
row_of(struct table *t, const char *name)
{
    for (size_t k = 0; k < t->n_rows; k++) {
        size_t i = (t->last + 1 + k) % t->n_rows;
        if (strcmp(t->rows[i].name, name) == 0)
            return &t->rows[t->last = i];
    }
    if (t->n_rows == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 8;
        struct row *r = realloc(t->rows, cap * sizeof(*r));
        if (r == NULL) {
            t->failed = 1;
            return NULL;
        }
        t->rows = r;
        t->cap = cap;
    }
    struct row *r = &t->rows[t->last = t->n_rows++];
    memset(r, 0, sizeof(*r));
    strcpy(r->name, name); /* fits: label_value() bounded it */
    return r;
}

/* The index of column head, added when new; -1 when the section is full. */
static int
col_of(struct table *t, const char *head)
{
    for (size_t i = 0; i < t->n_cols; i++)
        if (strcmp(t->head[i], head) == 0)
            return (int)i;
    if (t->n_cols == COLS_MAX)
        return -1;
    snprintf(t->head[t->n_cols], HEAD_MAX, "%s", head);
    return (int)t->n_cols++;
}

/* Files one sample line, "metric{labels} value", when it is a series shown. */
static void
sample(struct table *tables, const char *line, size_t len)
{
    const char *brace = memchr(line, '{', len);
    const char *close = brace != NULL ? memchr(brace, '}', len - (size_t)(brace - line)) : NULL;

    if (close == NULL || (size_t)(close - line) + 2 > len || close[1] != ' ')
        return;
    for (size_t k = 0; k < sizeof(series) / sizeof(series[0]); k++) {
        size_t ml = strlen(series[k].metric);
        if ((size_t)(brace - line) != ml || memcmp(line, series[k].metric, ml) != 0)
            continue;
        struct table *t = &tables[series[k].sec];
        const char *labels = brace + 1;
        size_t llen = (size_t)(close - labels);
        char name[NAME_MAX_LEN], head[HEAD_MAX], value[VALUE_MAX];
        const char *v = close + 2;
        size_t vlen = len - (size_t)(v - line);
        if (label_value(labels, llen, sec_label[series[k].sec], name, sizeof(name)) != 0 ||
            vlen == 0 || vlen >= sizeof(value))
            return;
        if (series[k].by == NULL)
            snprintf(head, sizeof(head), "%s", series[k].head);
        else if (label_value(labels, llen, series[k].by, head, sizeof(head)) != 0)
            return;
        for (char *h = head; *h != '\0'; h++) /* a head, like the others */
            *h = (char)toupper((unsigned char)*h);
        memcpy(value, v, vlen);
        value[vlen] = '\0';
        struct row *r = row_of(t, name);
        int c = col_of(t, head);
        if (r != NULL && c >= 0)
            snprintf(r->value[c], VALUE_MAX, "%s", value);
        return;
    }
}

static size_t
wider(size_t w, const char *s)
{
    size_t n = strlen(s);
    return n > w ? n : w;
}

static void
print_section(const struct table *t, enum section sec, stats_kind_fn kind, void *arg,
              struct strbuf *out)
{
    size_t w0 = strlen(sec_head[sec]), wk = 4, w[COLS_MAX];

    for (size_t c = 0; c < t->n_cols; c++)
        w[c] = strlen(t->head[c]);
    for (size_t i = 0; i < t->n_rows; i++) {
        w0 = wider(w0, t->rows[i].name);
        if (sec == SEC_RELAY)
            wk = wider(wk, kind(t->rows[i].name, arg));
        for (size_t c = 0; c < t->n_cols; c++)
            w[c] = wider(w[c], t->rows[i].value[c][0] ? t->rows[i].value[c] : "-");
    }
    strbuf_printf(out, "%-*s", (int)w0, sec_head[sec]);
    if (sec == SEC_RELAY)
        strbuf_printf(out, "  %-*s", (int)wk, "KIND");
    for (size_t c = 0; c < t->n_cols; c++)
        strbuf_printf(out, "  %*s", (int)w[c], t->head[c]);
    strbuf_printf(out, "\n");
    for (size_t i = 0; i < t->n_rows; i++) {
        const struct row *r = &t->rows[i];
        strbuf_printf(out, "%-*s", (int)w0, r->name);
        if (sec == SEC_RELAY)
            strbuf_printf(out, "  %-*s", (int)wk, kind(r->name, arg));
        for (size_t c = 0; c < t->n_cols; c++)
            strbuf_printf(out, "  %*s", (int)w[c], r->value[c][0] ? r->value[c] : "-");
        strbuf_printf(out, "\n");
    }
}

void
stats_table(const char *text, size_t len, stats_kind_fn kind, void *arg, struct strbuf *out)
{
    struct table tables[SEC_COUNT] = {0};
    size_t off = 0;

    while (off < len) {
        const char *line = text + off, *nl = memchr(line, '\n', len - off);
        size_t n = nl != NULL ? (size_t)(nl - line) : len - off;
        if (n > 0 && line[0] != '#')
            sample(tables, line, n);
        off += n + 1;
    }
    for (int s = 0; s < SEC_COUNT; s++)
        strbuf_printf(out, "%s%zu %s", s ? ", " : "", tables[s].n_rows, sec_noun[s]);
    strbuf_printf(out, "\n");
    for (int s = 0; s < SEC_COUNT; s++) {
        if (tables[s].failed)
            out->failed = 1;
        else if (tables[s].n_rows > 0) {
            strbuf_printf(out, "\n");
            print_section(&tables[s], s, kind, arg, out);
        }
        free(tables[s].rows);
    }
}
