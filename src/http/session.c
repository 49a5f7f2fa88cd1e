/* session.c - a client's session of the HTTP proxy: reading requests
 * (resumable, bounded), routing and checking them, applying the route's
 * rules (rules.c) before handing them to upstream.c, the proxy's own
 * answers, writing responses, keep-alive and pipelining, timeouts and
 * closing. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "field/field.h"
#include "http/proxy_int.h"
#include "net/transport.h"

/* ---- buffers
 *
 * in and rin hold what the client and the backend sent: plaintext the host
 * must not see in freed memory. They are wiped where they move (growing),
 * where bytes are dropped (the next request, the next response) and at the
 * end (core/strbuf.h's buf_wipe_*; http_msg_squeeze() and _consume() wipe
 * what they drop). */

/* Makes room for at least want more bytes, the buffer at most max long.
 * Returns the room (0 when at max), or -ENOMEM. */
ssize_t
hbuf_room(struct hbuf *b, size_t want, size_t max)
{
    if (b->len >= max)
        return 0;
    if (want > max - b->len)
        want = max - b->len;
    if (b->cap - b->len < want) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < want)
            cap *= 2;
        char *nd = buf_wipe_realloc(b->data, b->len, b->cap, cap);
        if (nd == NULL)
            return -ENOMEM;
        b->data = nd;
        b->cap = cap;
    }
    return (ssize_t)(b->cap - b->len < max - b->len ? b->cap - b->len : max - b->len);
}

/* Drops the first n bytes; what is left after them is wiped. */
void
hbuf_drop(struct hbuf *b, size_t n)
{
    if (n == 0)
        return;
    memmove(b->data, b->data + n, b->len - n);
    explicit_bzero(b->data + b->len - n, n);
    b->len -= n;
}

void
hbuf_free(struct hbuf *b)
{
    buf_wipe_free(b->data, b->cap);
    memset(b, 0, sizeof(*b));
}

/* ---- closing */

void
sock_close(struct sess *s, struct io *io)
{
    if (io->fd < 0)
        return;
    io_stop(s->w->loop, io);
    close(io->fd);
    io->fd = -1;
}

static void
sess_reap(struct task *t)
{
    struct sess *s = t->data;

    if (task_queued(&s->work)) {
        loop_defer(s->w->loop, &s->reap, sess_reap, s);
        return;
    }
    hbuf_free(&s->in);
    hbuf_free(&s->rin);
    strbuf_free(&s->head);
    strbuf_free(&s->body);
    http_proxy_unref(s->p);
    free(s);
}

/* Ends s's part of its backend connection: one between two exchanges
 * outlives its client (kept for the next session), any other closes. */
static void
backend_release(struct sess *s)
{
    if (!(s->b_idle && !s->b_private && s->bio.fd >= 0 && !s->br.hup && !s->br.readable &&
          idle_put(s)))
        backend_close(s);
}

static bool sess_linger(struct sess *s);

/* s gives back the claim on its share that it was accepted with at
 * max_connections: refused waiting for its header (sess_begin()). */
static void
sess_unplace(struct sess *s)
{
    if (s->place) {
        unproven_unclaim(s->share);
        s->place = false;
    }
}

void
sess_close(struct sess *s)
{
    if (s->st == S_CLOSED)
        return;
    s->st = S_CLOSED;
    sess_unplace(s);
    backend_release(s);
    sock_close(s, &s->cio);
    timer_stop(s->w->loop, &s->timer);
    timer_stop(s->w->loop, &s->redial);
    loop_cancel(s->w->loop, &s->work);
    unproven_del(s->share, &s->unproven_link);
    unproven_client_give(&s->p->stats->unproven, &s->counted);
    list_del(&s->link);
    atomic_fetch_sub(&s->w->n, 1);
    atomic_fetch_sub_explicit(&s->p->stats->open, 1, memory_order_relaxed);
    log_debug("http proxy=%s conn=%llu closed", s->p->conf.name, (unsigned long long)s->id);
    loop_defer(s->w->loop, &s->reap, sess_reap, s);
}

bool
sess_evict_oldest(struct unproven_share *share)
{
    struct list *oldest = unproven_oldest(share);

    if (oldest == NULL)
        return false;
    struct sess *s = list_entry(oldest, struct sess, unproven_link);
    log_debug("http proxy=%s conn=%llu evicted: unproven, its place taken", s->p->conf.name,
              (unsigned long long)s->id);
    atomic_fetch_add_explicit(&s->p->stats->evicted, 1, memory_order_relaxed);
    sess_close(s);
    return true;
}

/* ---- timers */

static void
sess_timeout(struct timer *t)
{
    struct sess *s = t->data;

    switch (s->st) {
    case S_IDLE:
        sess_close(s);
        return;
    case S_HEAD:
        s->close_after = true;
        reply_error(s, 408, FAIL_HEADER_TIMEOUT, "the request head did not come in time");
        break;
    case S_BODY:
        s->close_after = true;
        reply_error(s, 408, FAIL_BODY_TIMEOUT, "the request body did not come in time");
        break;
    case S_BACKEND:
        backend_close(s);
        reply_error(s, 504, FAIL_BACKEND_TIMEOUT, "the backend did not answer in time");
        break;
    case S_WRITE: /* the client does not read its response */
    case S_LINGER:
    case S_CLOSED:
        sess_close(s);
        return;
    }
    sess_step(s);
}

void
sess_arm(struct sess *s, unsigned ms)
{
    if (ms > 0)
        timer_start(s->w->loop, &s->timer, ms, sess_timeout, s);
    else
        timer_stop(s->w->loop, &s->timer);
}

/* ---- answers */

/* Queues head (and body) for the client. */
void
send_client(struct sess *s, const char *body, size_t len)
{
    s->obody = body;
    s->olen = s->head.len + len;
    s->osent = 0;
    s->st = S_WRITE;
    sess_arm(s, s->p->conf.idle_timeout_ms);
}

/* An answer of the proxy's own: a JSON body naming why. A request whose
 * body was not read whole, or whose framing is in doubt, closes after it. */
/* reply_error() with more header lines (each ending "\r\n"). */
static void
reply_error_with(struct sess *s, int status, enum http_fail why, const char *text,
                 const char *headers)
{
    if (s->stream != STREAM_OFF) {
        /* the response's head is out: cut it short, so that the client
         * sees it incomplete (fewer bytes than its length, no last chunk) */
        count(&s->p->stats->failures[why], 1);
        log_info("http proxy=%s conn=%llu streamed response cut short reason=%s", s->p->conf.name,
                 (unsigned long long)s->id, fail_names[why]);
        sess_close(s);
        return;
    }
    backend_close(s);
    strbuf_free(&s->head);
    strbuf_free(&s->body);
    count(&s->p->stats->failures[why], 1);
    if (s->st != S_BACKEND && s->st != S_WRITE && !s->req.done)
        s->close_after = true;
    /* the message as a JSON string: one with a quote or a control byte
     * (a token's key id, say) cannot end it or break the body */
    strbuf_printf(&s->body, "{\"error\":\"%s\",\"message\":", fail_names[why]);
    strbuf_json_string(&s->body, text);
    strbuf_printf(&s->body, "}\n");
    strbuf_printf(&s->head,
                  "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
                  "%zu\r\nCache-Control: no-store\r\n%s%s\r\n",
                  status, http_status_str((enum http_status)status), s->body.len, headers,
                  s->close_after ? "Connection: close\r\n" : "");
    log_info("http proxy=%s conn=%llu status=%d reason=%s", s->p->conf.name,
             (unsigned long long)s->id, status, fail_names[why]);
    stats_observe(s, status);
    send_client(s, s->body.data, s->body.len);
}

void
reply_error(struct sess *s, int status, enum http_fail why, const char *text)
{
    reply_error_with(s, status, why, text, "");
}

/* 405 for a body by a method route rc does not take, where rc seals fields:
 * Allow names the methods it takes (RFC 9110 15.5.6). */
static void
reply_not_sealed(struct sess *s, const struct http_route_conf *rc)
{
    char allow[96] = "Allow: ";

    for (size_t i = 0, n = 0; i < HTTP_RM_COUNT; i++)
        if (rc->methods & 1u << i)
            snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s",
                     n++ > 0 ? ", " : "", http_route_method_names[i]);
    strcat(allow, "\r\n");
    s->close_after = true;
    reply_error_with(s, 405, FAIL_METHOD,
                     "this path's fields are encrypted for other methods: a body by this one "
                     "would pass in plaintext",
                     allow);
}

/* ---- the request */

/* Whether the normalized path is one of rc's (its prefix, without case). */
static bool
route_path(const struct http_route_conf *rc, const char *path)
{
    return strncasecmp(path, rc->prefix, strlen(rc->prefix)) == 0;
}

/* Whether route a seals every field route b does: each of b's paths is one
 * of a's (in either mode). */
static bool
route_covers(const struct http_route_conf *a, const struct http_route_conf *b)
{
    for (size_t i = 0; i < b->n_rules; i++) {
        size_t j = 0;
        while (j < a->n_rules && strcmp(a->rules[j].path, b->rules[i].path) != 0)
            j++;
        if (j == a->n_rules)
            return false;
    }
    return true;
}

/* Where field f of a parsed url starts and ends, and whether it is there. */
static size_t
url_from(const struct http_parser_url *u, int f)
{
    return u->field_data[f].off;
}

static size_t
url_to(const struct http_parser_url *u, int f)
{
    return (size_t)u->field_data[f].off + u->field_data[f].len;
}

static bool
url_has(const struct http_parser_url *u, int f)
{
    return (u->field_set & (1 << f)) != 0;
}

/* The path of url[0..len) (origin or absolute form), normalized into out
 * (http_path_normalize()), and in *t where its origin form (path and
 * query) and an absolute form's authority are. A target holds printable
 * ASCII but '#' (RFC 9112 3.2, RFC 3986): libhttp-parser also takes a tab,
 * bytes over 0x7f and a fragment, and backends read those differently.
 * "/x#/../pay" is /x to the parser and /pay to one that cleans the whole
 * target (Go's ServeMux; HAProxy's CVE-2023-45539), so it is refused, never
 * routed as /x. An absolute form is http or https without userinfo; a
 * path does not begin with "//". */
static enum http_path_result
url_path(const char *url, size_t len, char *out, size_t size, struct req_target *t)
{
    struct http_parser_url u;

    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= ' ' || (unsigned char)url[i] >= 0x7f || url[i] == '#')
            return HTTP_PATH_INVALID;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, len, 0, &u) != 0 || !url_has(&u, UF_PATH) ||
        url_has(&u, UF_USERINFO))
        return HTTP_PATH_INVALID;
    size_t path = url_from(&u, UF_PATH), path_len = url_to(&u, UF_PATH) - path;
    /* "//x/kids" is the path /x/kids to the routes and to nginx, and host x,
     * path /kids to a backend that reads it as a URL reference (Node's new
     * URL(), Python's urlsplit): no one safe reading */
    if (path_len >= 2 && url[path + 1] == '/')
        return HTTP_PATH_INVALID;
    *t = (struct req_target){.off = path,
                             .len = url_to(&u, url_has(&u, UF_QUERY) ? UF_QUERY : UF_PATH) - path};
    if (url_has(&u, UF_SCHEMA)) {
        size_t slen = url_to(&u, UF_SCHEMA) - url_from(&u, UF_SCHEMA);
        if (!((slen == 4 && strncasecmp(url + url_from(&u, UF_SCHEMA), "http", 4) == 0) ||
              (slen == 5 && strncasecmp(url + url_from(&u, UF_SCHEMA), "https", 5) == 0)) ||
            !url_has(&u, UF_HOST) || url_to(&u, UF_HOST) == url_from(&u, UF_HOST))
            return HTTP_PATH_INVALID;
        /* host[:port] as written, an IPv6 literal with its brackets */
        size_t from = url_from(&u, UF_HOST),
               to = url_has(&u, UF_PORT) ? url_to(&u, UF_PORT) : url_to(&u, UF_HOST);
        if (from > 0 && url[from - 1] == '[') {
            from--;
            to += url_has(&u, UF_PORT) ? 0 : 1;
        }
        t->authority_off = from;
        t->authority_len = to - from;
    }
    return http_path_normalize(url + path, path_len, out, size);
}

static unsigned
method_bit(unsigned m)
{
    switch (m) {
    case HTTP_GET:
        return HTTP_RM_GET;
    case HTTP_HEAD:
        return HTTP_RM_HEAD;
    case HTTP_POST:
        return HTTP_RM_POST;
    case HTTP_PUT:
        return HTTP_RM_PUT;
    case HTTP_PATCH:
        return HTTP_RM_PATCH;
    case HTTP_DELETE:
        return HTTP_RM_DELETE;
    case HTTP_OPTIONS:
        return HTTP_RM_OPTIONS;
    default:
        return 0;
    }
}

/* Whether v[0..n), a charset parameter's value, names UTF-8. */
static bool
charset_utf8(const char *v, size_t n)
{
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
        v++, n -= 2;
    return (n == 5 && strncasecmp(v, "utf-8", 5) == 0) ||
           (n == 4 && strncasecmp(v, "utf8", 4) == 0);
}

/* Narrows s[*b..*e) to leave out the spaces and tabs at its ends. */
static void
ows_trim(const char *s, size_t *b, size_t *e)
{
    while (*b < *e && (s[*b] == ' ' || s[*b] == '\t'))
        (*b)++;
    while (*e > *b && (s[*e - 1] == ' ' || s[*e - 1] == '\t'))
        (*e)--;
}

/* The media type of value[0..len), its parameters left out: [*b..*e). */
static void
media_type(const char *value, size_t len, size_t *b, size_t *e)
{
    const char *semi = memchr(value, ';', len);

    *b = 0;
    *e = semi != NULL ? (size_t)(semi - value) : len;
    ows_trim(value, b, e);
}

/* Whether the parameters of the media type in value[0..len) name no
 * charset but UTF-8. */
static bool
media_utf8(const char *value, size_t len)
{
    const char *semi = memchr(value, ';', len);

    /* each parameter, between ';'s */
    for (size_t i = semi != NULL ? (size_t)(semi - value) + 1 : len; i < len; i++) {
        size_t b = i, e;
        while (i < len && value[i] != ';')
            i++;
        e = i;
        ows_trim(value, &b, &e);
        const char *eq = memchr(value + b, '=', e - b);
        size_t nb = b, ne = eq != NULL ? (size_t)(eq - value) : e;
        size_t vb = eq != NULL ? ne + 1 : e, ve = e;
        ows_trim(value, &nb, &ne);
        ows_trim(value, &vb, &ve);
        if (ne - nb == 7 && strncasecmp(value + nb, "charset", 7) == 0 &&
            !charset_utf8(value + vb, ve - vb))
            return false;
    }
    return true;
}

bool
http_media_is(const char *value, size_t len, const char *type)
{
    size_t t = strlen(type), b, e;

    media_type(value, len, &b, &e);
    return e - b == t && strncasecmp(value + b, type, t) == 0 && media_utf8(value, len);
}

bool
http_media_json(const char *value, size_t len, const char *type, bool *utf8)
{
    size_t t = strlen(type), b, e;

    media_type(value, len, &b, &e);
    *utf8 = media_utf8(value, len);
    return (e - b == t && t > 0 && strncasecmp(value + b, type, t) == 0) ||
           (e - b == 16 && strncasecmp(value + b, "application/json", 16) == 0) ||
           (e - b > 5 && strncasecmp(value + e - 5, "+json", 5) == 0 &&
            memchr(value + b, '/', e - b) != NULL);
}

/* The route the method of bit mbit takes on path (-1: none), and in
 * *sealing a route of the path that seals fields it does not (-1: none).
 * A route's methods narrow where it applies, never where its fields are
 * sealed: a route whose path this is and which seals fields, by a method it
 * does not take, lets no body by, unless the route taken seals every field
 * it does. Before the route taken (or with none), and after it when the
 * route taken seals nothing: a rule-less GET route before a POST one that
 * seals passed GET bodies in plaintext. A later route that seals other
 * fields than a sealing route taken is that method's choice. */
static int
route_pick(const struct http_proxy_conf *pc, const char *path, unsigned mbit, int *sealing)
{
    int taken = -1;

    for (size_t i = 0; i < pc->n_routes && taken < 0; i++) {
        const struct http_route_conf *rc = &pc->routes[i];
        if (route_path(rc, path) && (rc->methods == 0 || (rc->methods & mbit) != 0))
            taken = (int)i;
    }
    *sealing = -1;
    for (size_t i = 0; i < pc->n_routes && *sealing < 0; i++) {
        const struct http_route_conf *rc = &pc->routes[i];
        const struct http_route_conf *t = taken >= 0 ? &pc->routes[taken] : NULL;
        if ((int)i == taken || rc->n_rules == 0 || !route_path(rc, path) || rc->methods == 0 ||
            (rc->methods & mbit) != 0)
            continue;
        if (t == NULL || (((int)i < taken || t->n_rules == 0) && !route_covers(t, rc)))
            *sealing = (int)i;
    }
    return taken;
}

/* The route that would take the request were it routed as path and the
 * methods mbit, when it would seal a field the route taken leaves in
 * plaintext, or refuse the body (route_pick()'s sealing), or -1. */
static int
unsealed_by(const struct sess *s, const char *path, unsigned mbit)
{
    const struct http_proxy_conf *pc = &s->p->conf;
    const struct http_route_conf *taken = s->route >= 0 ? &pc->routes[s->route] : NULL;
    int sealing, r = route_pick(pc, path, mbit, &sealing);

    if (r >= 0 && r != s->route && pc->routes[r].n_rules > 0 &&
        (taken == NULL || !route_covers(taken, &pc->routes[r])))
        return r;
    if (sealing >= 0 && (taken == NULL || !route_covers(taken, &pc->routes[sealing])))
        return sealing;
    return -1;
}

/* The route of path that would seal a field the route taken leaves in
 * plaintext were the request served as the method named v[0..len) (an
 * override's value), or -1. */
static int
override_route(const struct sess *s, const char *path, const char *v, size_t len)
{
    const struct http_proxy_conf *pc = &s->p->conf;
    const struct http_route_conf *taken = s->route >= 0 ? &pc->routes[s->route] : NULL;
    size_t b = 0, e = len;
    unsigned mbit = 0;

    ows_trim(v, &b, &e);
    for (size_t j = 0; j < HTTP_RM_COUNT; j++)
        if (strlen(http_route_method_names[j]) == e - b &&
            strncasecmp(http_route_method_names[j], v + b, e - b) == 0)
            mbit = 1u << j;
    /* a method routes cannot name: no telling what the backend makes of
     * it, so every route of the path must be sealed by the one taken */
    for (size_t j = 0; mbit == 0 && j < pc->n_routes; j++)
        if (pc->routes[j].n_rules > 0 && route_path(&pc->routes[j], path) &&
            (taken == NULL || !route_covers(taken, &pc->routes[j])))
            return (int)j;
    return unsealed_by(s, path, mbit);
}

/* The next character of a query's name or value q[*i..n), percent-decoded
 * ('+' is a space). */
static char
query_next(const char *q, size_t n, size_t *i)
{
    char c = q[(*i)++];

    if (c == '+')
        return ' ';
    if (c == '%' && *i + 1 < n && isxdigit((unsigned char)q[*i]) &&
        isxdigit((unsigned char)q[*i + 1])) {
        char hex[3] = {q[*i], q[*i + 1], 0};
        *i += 2;
        return (char)strtol(hex, NULL, 16);
    }
    return c;
}

/* Whether a query parameter's name q[0..n) is "_method" to a backend:
 * decoded, and as PHP reads names (leading spaces dropped; ' ', '.' and '['
 * are '_': "%5Fmethod", ".method", "_method[]" are its "_method"), without
 * case. */
static bool
query_method_name(const char *q, size_t n)
{
    static const char want[] = "_method";
    char name[sizeof(want)]; /* its first 8 characters */
    size_t i = 0, k = 0;

    while (i < n && k < sizeof(name)) {
        char c = query_next(q, n, &i);
        if (k == 0 && c == ' ')
            continue;
        if (c == ' ' || c == '.' || (c == '[' && k < sizeof(want) - 1))
            c = '_';
        name[k++] = (char)tolower((unsigned char)c);
    }
    return k >= sizeof(want) - 1 && memcmp(name, want, sizeof(want) - 1) == 0 &&
           (k == sizeof(want) - 1 ? i == n : name[sizeof(want) - 1] == '[');
}

/* A request whose body a method override gives another method: a backend
 * with such middleware (Express's method-override, Symfony, Laravel) serves
 * it as that method, whose route may seal fields the route taken does not.
 * The overrides are the headers X-HTTP-Method-Override, X-HTTP-Method and
 * X-Method-Override, and a query parameter "_method" (method-override's
 * methodOverride('_method'), Symfony and Laravel with their parameter
 * override; the body's "_method": body_override_sealing()). Returns a route
 * of the path that would seal a field the route taken leaves in plaintext
 * (its 405), or -1. */
static int
override_sealing(const struct sess *s, const char *path)
{
    static const char *const names[] = {"x-http-method-override", "x-http-method",
                                        "x-method-override"};
    const struct http_msg *m = &s->req;
    int r;

    for (size_t i = 0; i < m->n_hdr; i++) {
        const struct http_hdr *h = &m->hdr[i];
        const char *name = s->in.data + h->name.off, *v = s->in.data + h->value.off;
        size_t k = 0;
        while (k < sizeof(names) / sizeof(names[0]) &&
               !(strlen(names[k]) == h->name.len && strncasecmp(names[k], name, h->name.len) == 0))
            k++;
        if (k < sizeof(names) / sizeof(names[0]) &&
            (r = override_route(s, path, v, h->value.len)) >= 0)
            return r;
    }
    /* the query: each parameter between '&' (or ';', which some backends
     * also split on) */
    const char *t = s->in.data + m->url.off + s->target.off;
    const char *q = memchr(t, '?', s->target.len);
    const char *end = t + s->target.len;
    while (q != NULL && q < end) {
        const char *p = q + 1, *e = p;
        while (e < end && *e != '&' && *e != ';')
            e++;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        if (query_method_name(p, (size_t)((eq != NULL ? eq : e) - p))) {
            /* its value decoded; one longer than a method: none routes know */
            char value[16];
            size_t vn = 0, i = 0, n = eq != NULL ? (size_t)(e - eq - 1) : 0;
            while (i < n && vn < sizeof(value))
                value[vn++] = query_next(eq + 1, n, &i);
            if ((r = override_route(s, path, value, i < n ? 0 : vn)) >= 0)
                return r;
        }
        q = e;
    }
    return -1;
}

/* The same for a member "_method" of the JSON body body[0..len) (at its
 * top level): Laravel reads a JSON body's members as its parameters, and
 * method-override's getters commonly read req.body._method. Every one
 * counts (a backend may take the first or the last); one that is not a
 * string names no method routes know. */
static int
body_override_sealing(struct sess *s, const char *body, size_t len)
{
    char path[HTTP_REQ_PATH_MAX + 2];
    struct req_target target;
    struct strbuf values = {0};
    int r = -1;

    /* a method no route names is the widest: when it would not be
     * refused, no override is (most paths: the body is not read again) */
    if (url_path(s->in.data + s->req.url.off, s->req.url.len, path, sizeof(path), &target) !=
            HTTP_PATH_OK ||
        override_route(s, path, "", 0) < 0 ||
        route_members(s, body, len, "_method", &values) != 0) {
        strbuf_free(&values);
        return -1; /* a body that is not JSON is refused by its rules */
    }
    for (size_t off = 0; r < 0 && off < values.len; off += strlen(values.data + off) + 1)
        r = override_route(s, path, values.data + off, strlen(values.data + off));
    strbuf_free(&values);
    return r;
}

/* A route that would seal a field of a body that the route taken leaves in
 * plaintext, or refuse the body, were its path read with a last '/': a
 * router that takes a last '/' as optional serves "/v2/pay" at its route
 * "/v2/pay/" (Express's default, path-to-regexp's non-strict mode:
 * "/v2/pay/" is ^\/v2\/pay\/?$), and one that redirects it (Flask, Go's
 * ServeMux) is sent the body all the same. path[0..size) is the normalized
 * path (at most HTTP_REQ_PATH_MAX + 1 bytes and a NUL: size one more, for
 * the '/'). Returns it, or -1. */
static int
slash_sealing(const struct sess *s, char *path, size_t size)
{
    size_t n = strlen(path);

    if (path[n - 1] == '/' || n + 2 > size)
        return -1; /* not with on_request_head()'s buffer */
    path[n] = '/';
    path[n + 1] = '\0';
    int r = unsealed_by(s, path, method_bit(s->req.parser.method));
    path[n] = '\0';
    return r;
}

/* The head is whole: the route, refusals that need no body, 100-continue. */
static void
on_request_head(struct sess *s)
{
    struct http_msg *m = &s->req;
    const struct http_proxy_conf *pc = &s->p->conf;
    char path[HTTP_REQ_PATH_MAX + 3]; /* room for slash_sealing()'s '/' */
    size_t vlen, other;
    const char *v;

    s->is_head = m->parser.method == HTTP_HEAD;
    if (!m->keep_alive)
        s->close_after = true;
    /* HTTP/2.0 or 9.9 in a request line is no HTTP/1.x request: read as
     * one, it would reach the backend as what it is not (RFC 9110 15.6.6) */
    if (m->parser.http_major != 1) {
        s->close_after = true;
        reply_error(s, 505, FAIL_BAD_REQUEST, "only HTTP/1.0 and HTTP/1.1 requests are proxied");
        return;
    }
    if (m->parser.method == HTTP_CONNECT || m->parser.upgrade) {
        s->close_after = true;
        reply_error(s, 501, FAIL_METHOD, "CONNECT and protocol upgrades are not proxied");
        return;
    }
    switch (url_path(s->in.data + m->url.off, m->url.len, path, sizeof(path), &s->target)) {
    case HTTP_PATH_OK:
        break;
    case HTTP_PATH_INVALID:
        s->close_after = true;
        reply_error(s, 400, FAIL_BAD_REQUEST, "the request target has no valid path");
        return;
    case HTTP_PATH_TOO_LONG:
        s->close_after = true;
        reply_error(s, 414, FAIL_URI_TOO_LONG, "the request's path is too long");
        return;
    }
    /* headers read as one value must be there once: with two, the proxy and the
     * backend could each read another (RFC 9110 8.3, RFC 9112 3.2) */
    if (http_msg_count(m, "host") > 1 || http_msg_count(m, "content-type") > 1) {
        s->close_after = true;
        reply_error(s, 400, FAIL_BAD_REQUEST, "Host or Content-Type is given more than once");
        return;
    }
    /* a backend behind a rewriting front (Symfony and Zend behind IIS:
     * CVE-2018-14773) serves the path these name, not the one the routes
     * read: another route's rules (fields in plaintext, tokens opened where
     * that path does not allow it). A client has no need of them */
    if (http_msg_count(m, "x-original-url") > 0 || http_msg_count(m, "x-rewrite-url") > 0) {
        s->close_after = true;
        reply_error(s, 400, FAIL_BAD_REQUEST,
                    "X-Original-URL and X-Rewrite-URL are refused: a backend may route by them");
        return;
    }
    if (m->parser.http_minor >= 1 && http_msg_count(m, "host") == 0) {
        s->close_after = true;
        reply_error(s, 400, FAIL_BAD_REQUEST, "an HTTP/1.1 request needs a Host (RFC 9112 3.2)");
        return;
    }
    /* the body is de-chunked and sent on with a length: a coding the proxy does not
     * remove would reach the backend unannounced (RFC 9112 6.1: chunked once, last) */
    if (http_msg_count(m, "transfer-encoding") > 0 &&
        (http_msg_list(m, "transfer-encoding", "chunked", &other) != 1 || other != 0)) {
        s->close_after = true;
        reply_error(s, 400, FAIL_BAD_REQUEST, "the only transfer coding accepted is chunked");
        return;
    }
    int sealing = -1;
    s->route = route_pick(pc, path, method_bit(m->parser.method), &sealing);
    bool body =
        m->chunked || (m->parser.content_length != ULLONG_MAX && m->parser.content_length > 0);
    bool out = pc->mode == HTTP_OUTBOUND;
    if (body && sealing < 0)
        sealing = override_sealing(s, path);
    if (body && sealing >= 0) {
        reply_not_sealed(s, &pc->routes[sealing]);
        return;
    }
    if (body && !out && (sealing = slash_sealing(s, path, sizeof(path))) >= 0) {
        s->close_after = true;
        reply_error(s, 400, FAIL_BAD_REQUEST,
                    "this path with a last '/' is another route's, whose fields it would pass in "
                    "plaintext: send it with the '/'");
        return;
    }
    if (out && s->route < 0) {
        s->close_after = true;
        reply_error(s, 404, FAIL_NO_ROUTE, "no route names a destination for this path");
        return;
    }
    /* before a token of the body is opened: a destination outside egress_allow never gets
     * one (its address is checked again when dialled) */
    enum egress_verdict ev = out ? outbound_allowed(s->p, (size_t)s->route) : EGRESS_OK;
    if (ev != EGRESS_OK) {
        log_warnx("http proxy=%s conn=%llu upstream %s refused: %s", pc->name,
                  (unsigned long long)s->id, s->p->routes[s->route].up_name,
                  egress_verdict_name(ev));
        s->close_after = true;
        reply_error(s, 403, FAIL_DEST_DENIED,
                    "the destination is not in egress_allow: nothing was sent");
        return;
    }
    if (s->route >= 0) {
        const struct http_route_conf *rc = &pc->routes[s->route];
        /* the route rewrites request bodies: encrypts (inbound) or decrypts (outbound) */
        bool reads = rc->n_rules > 0 || (out && rc->decrypt);
        s->strip_encoding = rc->decrypt && !out;
        v = http_msg_header(m, "content-type", &vlen);
        if (body && reads && (v == NULL || !http_media_is(v, vlen, rc->content_type))) {
            s->close_after = true;
            reply_error(s, 415, FAIL_CONTENT_TYPE,
                        "this route rewrites fields of JSON bodies: expected its content type");
            return;
        }
        if (body && reads && http_msg_coded(m)) {
            s->close_after = true;
            reply_error(s, 415, FAIL_CONTENT_TYPE, "this route cannot read encoded bodies");
            return;
        }
    }
    if (body && m->parser.http_minor >= 1 && http_msg_list(m, "expect", "100-continue", NULL) > 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        /* nothing else is queued for the client while a request is read */
        if (write(s->cio.fd, cont, sizeof(cont) - 1) != (ssize_t)sizeof(cont) - 1) {
            sess_close(s);
            return;
        }
    }
    s->st = S_BODY;
    sess_arm(s, pc->body_timeout_ms);
}

static bool
skip_request_header(const struct sess *s, const char *name, size_t len)
{
    static const char *const own[] = {"content-length", "expect"};
    bool out = s->p->conf.mode == HTTP_OUTBOUND;

    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (strlen(own[i]) == len && strncasecmp(own[i], name, len) == 0)
            return true;
    if (len == 15 && strncasecmp(name, "x-forwarded-for", len) == 0)
        return !out; /* inbound: the client's address is appended */
    if (len == 4 && strncasecmp(name, "host", len) == 0)
        return out || s->target.authority_len > 0; /* the upstream's; the target's authority */
    /* a response to decrypt is asked uncoded and whole (response_unreadable()) */
    if (s->strip_encoding && ((len == 15 && strncasecmp(name, "accept-encoding", len) == 0) ||
                              (len == 5 && strncasecmp(name, "range", len) == 0)))
        return true;
    return http_msg_hop(&s->req, name, len);
}

/* Appends the Host line naming ep, an inbound proxy's backend: its host
 * and port over tcp, "localhost" over a socket file. */
static void
backend_host(struct strbuf *head, const struct endpoint *ep)
{
    if (ep->kind != EP_TCP)
        strbuf_printf(head, "Host: localhost\r\n");
    else if (strchr(ep->host, ':') != NULL)
        strbuf_printf(head, "Host: [%s]:%u\r\n", ep->host, (unsigned)ep->port);
    else
        strbuf_printf(head, "Host: %s:%u\r\n", ep->host, (unsigned)ep->port);
}

/* The request is whole: its rules, then the head for the backend. */
static void
on_request(struct sess *s)
{
    struct http_msg *m = &s->req;
    const char *body = s->in.data + m->body.off;
    size_t blen = m->body.len;

    s->t_req = now_us();
    if (atomic_load(&s->p->env->draining))
        s->close_after = true;
    bool out = s->p->conf.mode == HTTP_OUTBOUND;
    /* inbound: fields encrypted; outbound: tokens opened, right before they leave */
    if (s->route >= 0 && blen > 0 &&
        (out ? s->p->conf.routes[s->route].decrypt : s->p->routes[s->route].rules != NULL)) {
        char err[FIELD_ERR_MAX];
        enum http_fail why;
        int sealing = out ? -1 : body_override_sealing(s, body, blen);
        if (sealing >= 0) {
            reply_not_sealed(s, &s->p->conf.routes[sealing]);
            return;
        }
        int status = route_rewrite(s, !out, body, blen, &why, err);
        if (status != 200) {
            reply_error(s, status, why, err);
            return;
        }
        body = s->body.data;
        blen = s->body.len;
    }
    /* in origin form: an absolute form's authority is not passed on (a
     * server reads it over Host: an upstream's other virtual host) */
    strbuf_printf(&s->head, "%s %.*s HTTP/1.1\r\n", http_method_str(m->parser.method),
                  (int)s->target.len, s->in.data + m->url.off + s->target.off);
    for (size_t i = 0; i < m->n_hdr; i++) {
        const struct http_hdr *h = &m->hdr[i];
        if (!skip_request_header(s, s->in.data + h->name.off, h->name.len))
            strbuf_printf(&s->head, "%.*s: %.*s\r\n", (int)h->name.len, s->in.data + h->name.off,
                          (int)h->value.len, s->in.data + h->value.off);
    }
    if (out) {
        char host[EP_HOST_MAX + 16];
        http_upstream_authority(&s->p->conf.routes[s->route].upstream, false, host, sizeof(host));
        strbuf_printf(&s->head, "Host: %s\r\n", host);
    } else {
        /* an absolute form's authority is the Host (RFC 9112 3.2.2); an
         * HTTP/1.0 request may come without a Host, but it goes on as
         * HTTP/1.1, which must have one: the backend's */
        if (s->target.authority_len > 0)
            strbuf_printf(&s->head, "Host: %.*s\r\n", (int)s->target.authority_len,
                          s->in.data + m->url.off + s->target.authority_off);
        else if (http_msg_count(m, "host") == 0)
            backend_host(&s->head, &s->p->conf.backend);
        /* every X-Forwarded-For the client sent, in order (one list), then its address */
        const char *sep = "X-Forwarded-For: ";
        for (size_t i = 0; i < m->n_hdr; i++) {
            const struct http_hdr *h = &m->hdr[i];
            if (h->name.len != 15 ||
                strncasecmp(s->in.data + h->name.off, "x-forwarded-for", 15) != 0)
                continue;
            strbuf_printf(&s->head, "%s%.*s", sep, (int)h->value.len, s->in.data + h->value.off);
            sep = ", ";
        }
        if (s->client_ip[0] != '\0')
            strbuf_printf(&s->head, "%s%s", sep, s->client_ip);
        if (s->client_ip[0] != '\0' || sep[0] == ',')
            strbuf_printf(&s->head, "\r\n");
    }
    if (blen > 0 || m->chunked || m->parser.content_length != ULLONG_MAX)
        strbuf_printf(&s->head, "Content-Length: %zu\r\n", blen);
    strbuf_printf(&s->head, "\r\n");
    if (s->head.failed || s->body.failed) {
        reply_error(s, 500, FAIL_INTERNAL, "out of memory");
        return;
    }
    s->obody = body;
    s->olen = s->head.len + blen;
    s->osent = 0;
    s->st = S_BACKEND;
    sess_arm(s, s->p->conf.response_timeout_ms);
    backend_start(s);
}

static void
request_fault(struct sess *s)
{
    s->close_after = true;
    switch (s->req.fault) {
    case HTTP_FAULT_HEAD_LARGE:
    case HTTP_FAULT_HEADERS:
        reply_error(s, 431, FAIL_HEADER_LARGE, "the request head is too large");
        break;
    case HTTP_FAULT_BODY_LARGE:
        reply_error(s, 413, FAIL_BODY_LARGE, "the request body is too large");
        break;
    default:
        reply_error(s, 400, FAIL_BAD_REQUEST, "malformed HTTP request");
        break;
    }
}

/* s was accepted at max_connections on a claim of s->share: it takes the
 * place of the oldest unproven session there (not its own: off the list
 * meanwhile, the caller puts it back), and gives the claim back. False
 * (counted refused; the caller closes s) when there was none left (it
 * proved itself meanwhile) and the proxy is still over its bound. */
static bool
take_place(struct sess *s)
{
    struct http_proxy *p = s->p;

    unproven_del(s->share, &s->unproven_link);
    bool took = sess_evict_oldest(s->share);

    unproven_unclaim(s->share);
    s->place = false;
    if (took || atomic_load(&p->stats->open) <= p->conf.max_connections)
        return true;
    atomic_fetch_add_explicit(&p->stats->refused, 1, memory_order_relaxed);
    return false;
}

bool
sess_client(struct sess *s, const struct sockaddr *sa, socklen_t len)
{
    unsigned max = http_proxy_per_client(&s->p->conf);
    char key[TRANSPORT_CLIENT_MAX], desc[TRANSPORT_DESC_MAX];
    int err;

    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, s->client_ip,
                  sizeof(s->client_ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, s->client_ip,
                  sizeof(s->client_ip));
    if (max == 0)
        return true;
    transport_client_key(-1, sa, key, sizeof(key));
    if ((err = unproven_client_take(&s->p->stats->unproven, key, max, &s->counted)) == 0)
        return true;
    transport_describe(sa, len, desc, sizeof(desc));
    http_refused(s->p, desc, err == -EBUSY ? "max_unproven_per_client" : "out_of_memory");
    return false;
}

/* accept_proxy: reads the PROXY v2 header the connection begins with (at
 * most PROXY_V2_READ_MAX bytes, within header_timeout), whose source is
 * the client. Returns true when the request may be read; false to wait
 * for more, or when s was closed (a client at its bound) or lingers (a bad
 * header: what the client sent on is unread, and a close would reset). */
static bool
read_preamble(struct sess *s)
{
    struct proxy_info info;
    size_t hdr_len;
    const char *err = NULL;
    enum parse_result pr =
        proxy_v2_parse((const uint8_t *)s->in.data, s->in.len, &info, &hdr_len, &err);

    if (pr == PARSE_AGAIN && s->in.len < PROXY_V2_READ_MAX && !s->cr.hup)
        return false;
    if (pr != PARSE_OK) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        char desc[TRANSPORT_DESC_MAX] = "-";
        if (getpeername(s->cio.fd, (struct sockaddr *)&peer, &len) == 0)
            transport_describe((struct sockaddr *)&peer, len, desc, sizeof(desc));
        log_warnx("http proxy=%s conn=%llu client=%s bad PROXY v2 header: %s", s->p->conf.name,
                  (unsigned long long)s->id, desc,
                  pr == PARSE_INVALID ? err
                  : s->cr.hup         ? "connection closed inside the header"
                                      : "header larger than 4096 bytes");
        if (!sess_linger(s))
            sess_close(s);
        return false;
    }
    s->preamble = false;
    bool ok = info.cmd != PROXY_CMD_PROXY || info.family == AF_UNSPEC ||
              sess_client(s, (struct sockaddr *)&info.src, sizeof(info.src));
    if (ok && s->place)
        ok = take_place(s);
    if (ok) /* back on the list, the newest: it took its place */
        unproven_add(s->share, &s->unproven_link);
    hbuf_drop(&s->in, hdr_len);
    if (!ok)
        sess_close(s);
    return ok;
}

/* Parses what the client sent, or reads more. Returns true on progress. */
static bool
read_request(struct sess *s)
{
    const struct http_proxy_conf *pc = &s->p->conf;

    if (s->preamble && s->in.len > 0) {
        if (read_preamble(s))
            return true;
        if (s->st != S_IDLE) /* closed, or lingering */
            return false;
        /* not whole yet: read more below */
    } else if (s->in.len > s->req.fed) {
        if (s->st == S_IDLE) {
            s->st = S_HEAD;
            sess_arm(s, pc->header_timeout_ms);
        }
        enum http_msg_result fed = http_msg_feed(&s->req, s->in.data, s->in.len);
        /* a whole request (or a bad one): no newcomer's place. Not a whole
         * head: a body announced and never sent would hold the place for
         * body_timeout, and a client could hold every place that way */
        if (fed == HTTP_MSG_DONE || fed == HTTP_MSG_INVALID) {
            unproven_del(s->share, &s->unproven_link);
            unproven_client_give(&s->p->stats->unproven, &s->counted);
        }
        switch (fed) {
        case HTTP_MSG_AGAIN:
            http_msg_squeeze(&s->req, s->in.data, &s->in.len);
            break;
        case HTTP_MSG_HEAD:
            on_request_head(s);
            break;
        case HTTP_MSG_DONE:
            if (s->st == S_HEAD || s->st == S_BODY)
                on_request(s);
            break;
        case HTTP_MSG_INVALID:
            request_fault(s);
            break;
        }
        return true;
    }
    if (!s->cr.readable)
        return false;
    ssize_t room = hbuf_room(&s->in, READ_CHUNK, pc->max_header + pc->max_body + READ_CHUNK);
    if (room <= 0) {
        if (room < 0) {
            sess_close(s);
            return false;
        }
        s->req.fault = HTTP_FAULT_BODY_LARGE;
        request_fault(s);
        return true;
    }
    ssize_t n = read(s->cio.fd, s->in.data + s->in.len, (size_t)room);
    if (n > 0) {
        /* a short read drained the socket: the next data brings a new edge
         * (not after a FIN, whose edge has been consumed) */
        if ((size_t)n < (size_t)room && !s->cr.hup)
            s->cr.readable = false;
        s->in.len += (size_t)n;
        return true;
    }
    if (n < 0 && errno == EAGAIN) {
        s->cr.readable = false;
        return false;
    }
    if (n == 0 && s->st != S_IDLE)
        log_info("http proxy=%s conn=%llu client closed inside a request", pc->name,
                 (unsigned long long)s->id);
    sess_close(s);
    return false;
}

/* ---- the client's side */

/* s answered (or refused a bad PROXY header) and ends: a FIN after the
 * answer, and what the client still sends (the rest of a refused request)
 * read and dropped until it closes, for at most TRANSPORT_LINGER_MS:
 * closing with input unread would send a reset, which can discard the
 * answer before the client reads it. The backend is let go at once, and a
 * claim s still holds (sess_unplace()); s keeps its place as an unproven
 * session, which a newcomer may take. Returns false when s may close now
 * (its client closed already, sent too much, or the socket failed). */
static bool
sess_linger(struct sess *s)
{
    sess_unplace(s);
    backend_release(s);
    if (shutdown(s->cio.fd, SHUT_WR) != 0 || transport_linger(s->cio.fd, &s->lingered) != 0)
        return false;
    s->st = S_LINGER;
    s->cr.readable = false;
    unproven_add(s->share, &s->unproven_link);
    sess_arm(s, TRANSPORT_LINGER_MS);
    return true;
}

/* The exchange is over: the next request, or the end. */
void
exchange_done(struct sess *s)
{
    const struct http_proxy_conf *pc = &s->p->conf;
    size_t used = s->req.done ? s->req.end : s->in.len;

    s->b_idle = true; /* a response was whole: what is left of the backend is reusable */
    if (s->close_after) {
        if (!sess_linger(s))
            sess_close(s);
        return;
    }
    hbuf_drop(&s->in, used);
    strbuf_free(&s->head);
    strbuf_free(&s->body);
    hbuf_drop(&s->rin, s->rin.len);
    s->route = -1;
    s->retried = s->is_head = s->strip_encoding = false;
    s->redial_until = 0;
    s->t_req = 0;
    s->st = S_IDLE;
    if (!sess_follow(s))
        return;
    pc = &s->p->conf;
    http_msg_init(&s->req, false, pc->max_header, pc->max_headers, pc->max_body);
    unproven_add(s->share, &s->unproven_link); /* between requests: the newest */
    sess_arm(s, pc->idle_timeout_ms);
}

bool
sess_follow(struct sess *s)
{
    struct http_proxy *p = s->p;

    while (atomic_load_explicit(&p->retired, memory_order_acquire)) {
        if (p->successor == NULL) {
            sess_close(s);
            return false;
        }
        p = p->successor;
    }
    if (p == s->p)
        return true;
    backend_close(s);
    proxy_ref(p);
    http_proxy_unref(s->p);
    s->p = p;
    http_msg_init(&s->req, false, p->conf.max_header, p->conf.max_headers, p->conf.max_body);
    return true;
}

static bool
write_client(struct sess *s)
{
    if (!client_flush(s))
        return false;
    exchange_done(s);
    return true;
}

static void
sess_work(struct task *t)
{
    sess_step(t->data);
}

void
sess_step(struct sess *s)
{
    for (int i = 0; i < STEP_BUDGET; i++) {
        bool more = false;
        switch (s->st) {
        case S_IDLE:
        case S_HEAD:
        case S_BODY:
            more = read_request(s);
            break;
        case S_BACKEND:
            more = backend_step(s);
            break;
        case S_WRITE:
            more = write_client(s);
            break;
        case S_LINGER:
            if (s->cr.readable && transport_linger(s->cio.fd, &s->lingered) != 0)
                sess_close(s);
            s->cr.readable = false;
            return;
        case S_CLOSED:
            return;
        }
        if (!more)
            return;
    }
    if (s->st != S_CLOSED)
        loop_defer(s->w->loop, &s->work, sess_work, s);
}

static void
client_event(struct io *io, uint32_t events)
{
    struct sess *s = io->data;

    ready_update(&s->cr, events);
    sess_step(s);
}

void
sess_unbegun(struct sess *s)
{
    unproven_client_give(&s->p->stats->unproven, &s->counted);
    close(s->cio.fd);
    atomic_fetch_sub(&s->w->n, 1);
    atomic_fetch_sub(&s->p->stats->open, 1);
    http_proxy_unref(s->p);
    free(s);
}

void
sess_begin(void *arg)
{
    struct sess *s = arg;
    const struct http_proxy_conf *pc = &s->p->conf;

    /* with accept_proxy, only once its header named a client within its
     * bound (read_preamble()): a client beyond never takes another's place.
     * Meanwhile it is unproven like the others: newcomers may take its */
    if (s->place && !s->preamble && !take_place(s)) {
        sess_unbegun(s);
        return;
    }
    list_add_tail(&s->w->sessions, &s->link);
    unproven_add(s->share, &s->unproven_link);
    if (io_start(s->w->loop, &s->cio, s->cio.fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, client_event,
                 s) != 0) {
        close(s->cio.fd);
        s->cio.fd = -1;
        sess_close(s);
        return;
    }
    if (!sess_follow(s)) /* accepted as a reload replaced its proxy */
        return;
    pc = &s->p->conf;
    sess_arm(s, pc->header_timeout_ms);
    sess_step(s);
}
