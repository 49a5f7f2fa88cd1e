/* conn_egress.c - the egress variant of a connection (target: egress): the
 * destination comes with the connection.
 *
 * Its preamble step reads either a PROXY v2 header (the enclave-side
 * relay's destination) or an HTTP CONNECT request, tells which by the first
 * byte, and checks the destination against egress_allow - the name before it
 * is resolved, the address after (conn_connect calls the admit hook), so a
 * permitted name cannot lead to a private address (DNS rebinding). From then
 * on the connection runs like any other, towards its destination instead of
 * the relay's target. A CONNECT client learns every outcome from an HTTP
 * status line; a PROXY client from a plain close. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "net/egress.h"
#include "net/transport.h"
#include "proto/http_connect.h"
#include "relay/conn_int.h"

/* How an egress connection named its destination. */
enum egress_via {
    EGRESS_VIA_PROXY,   /* a PROXY v2 header: refusals are a plain close */
    EGRESS_VIA_CONNECT, /* an HTTP CONNECT request: refusals get an HTTP status */
};

/* The per-connection target of an egress relay. */
struct egress_dest {
    enum egress_via via;
    struct endpoint ep; /* tcp: a host name or an address literal, and a port */
    int is_name;        /* ep.host is a name: its resolved address is checked too */
    int replied;        /* CONNECT: the HTTP status line was sent */
    /* why admit refused the address, for refuse */
    enum egress_verdict denied;
    struct sockaddr_storage denied_addr;
    const char *denied_range;
};

/* Writes an HTTP response with a one-line text body to a CONNECT client.
 * Best effort: the client socket is fresh, so a short reply fits. Any
 * status but 200 ends the connection: its close lingers (conn_close()). */
static void
egress_reply(struct conn *c, int status, const char *reason, const char *body)
{
    char buf[512];
    int len;

    if (c->egress == NULL || c->egress->via != EGRESS_VIA_CONNECT || c->egress->replied ||
        c->client.io.fd < 0)
        return;
    c->egress->replied = 1;
    c->linger = status != 200;
    if (status == 200)
        len = snprintf(buf, sizeof(buf), "HTTP/1.1 200 Connection established\r\n\r\n");
    else
        len = snprintf(buf, sizeof(buf),
                       "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n%s\n",
                       status, reason, strlen(body) + 1, body);
    if (len > 0 && (size_t)len < sizeof(buf) && write(c->client.io.fd, buf, (size_t)len) != len)
        log_debug("relay=%s conn=%llu: short HTTP reply", c->relay->conf.name,
                  (unsigned long long)c->id);
}

static void
egress_dest_text(const struct conn *c, char *buf, size_t len)
{
    const struct endpoint *ep = &c->egress->ep;

    snprintf(buf, len, strchr(ep->host, ':') ? "[%s]:%u" : "%s:%u", ep->host, ep->port);
}

/* The answer hook: the status line of a connect's outcome. */
static void
egress_answer(struct conn *c, int status)
{
    switch (status) {
    case 200:
        egress_reply(c, 200, NULL, NULL);
        break;
    case 502:
        egress_reply(c, 502, "Bad Gateway", "egress: connect failed");
        break;
    case 503:
        egress_reply(c, 503, "Service Unavailable", "egress: relay out of resources");
        break;
    case 504:
        egress_reply(c, 504, "Gateway Timeout", "egress: connect timed out");
        break;
    }
}

/* The closing hook: a CONNECT client whose connect failed or timed out
 * learns it from the status line; the close line names the destination. */
static void
egress_closing(struct conn *c, enum conn_end end, char *tag, size_t len)
{
    char dest[EP_HOST_MAX + 16];

    if (end == END_CONNECT_FAIL)
        egress_answer(c, 502);
    else if (end == END_CONNECT_TIMEOUT)
        egress_answer(c, 504);
    if (c->egress != NULL && c->egress->ep.port != 0) {
        egress_dest_text(c, dest, sizeof(dest));
        snprintf(tag, len, " dest=%s", dest);
    }
}

/* Refuses the destination: one log line, one count, an HTTP status for a
 * CONNECT client (a plain close for PROXY), then the close. sa is the
 * address that was checked, or NULL. */
static void
egress_deny(struct conn *c, enum egress_verdict v, const struct sockaddr *sa, const char *range)
{
    char dest[EP_HOST_MAX + 16], addr[TRANSPORT_DESC_MAX] = "-", body[128];

    atomic_fetch_add_explicit(&c->relay->stats->egress_denied[v], 1, memory_order_relaxed);
    egress_dest_text(c, dest, sizeof(dest));
    if (sa != NULL)
        transport_describe(sa, sizeof(struct sockaddr_storage), addr, sizeof(addr));
    log_info("egress denied relay=%s conn=%llu via=%s dest=%s addr=%s range=%s reason=%s",
             c->relay->conf.name, (unsigned long long)c->id,
             c->egress->via == EGRESS_VIA_CONNECT ? "connect" : "proxy", dest, addr,
             range != NULL ? range : "-", egress_verdict_name(v));
    snprintf(body, sizeof(body), "egress denied: %s", egress_verdict_name(v));
    c->linger = true; /* a PROXY client too: a FIN, not a reset, ends it */
    if (v == EGRESS_RESOLVE_FAILED) {
        egress_reply(c, 502, "Bad Gateway", body);
        atomic_fetch_add_explicit(&c->relay->stats->connect_errors, 1, memory_order_relaxed);
        conn_close(c, END_CONNECT_FAIL);
        return;
    }
    if (v == EGRESS_BAD_DESTINATION)
        egress_reply(c, 400, "Bad Request", body);
    else
        egress_reply(c, 403, "Forbidden", body);
    conn_close(c, END_DENIED);
}

/* The allowlist that decides for c now, in *rules: its relay's, or that of
 * the relay that replaced it at a reload since c was accepted (so a
 * destination taken off the list is refused to a client that names it
 * after the reload); none when the relay was removed. Returns its length. */
static size_t
egress_rules(const struct conn *c, const struct egress_rule **rules)
{
    const struct relay *now = relay_current(c->relay);

    *rules = now != NULL ? now->conf.egress_allow : NULL;
    return now != NULL ? now->conf.n_egress_allow : 0;
}

/* Sets the destination from host[0..len) (a name or an address literal)
 * and port, checks a name against the rules, and connects (which checks
 * the address). */
static void
egress_go(struct conn *c, const char *host, size_t len, uint16_t port)
{
    const struct relay_conf *rc = &c->relay->conf;
    struct endpoint *ep = &c->egress->ep;
    uint8_t raw[16];
    const char *why = NULL;

    ep->kind = EP_TCP;
    ep->port = port;
    if (len < sizeof(ep->host)) {
        memcpy(ep->host, host, len);
        ep->host[len] = '\0';
    }
    if (len < sizeof(ep->host) &&
        (inet_pton(AF_INET, ep->host, raw) == 1 || inet_pton(AF_INET6, ep->host, raw) == 1)) {
        c->egress->is_name = 0; /* checked as an address by egress_admit() */
    } else {
        c->egress->is_name = 1;
        if (egress_name_normalize(host, len, ep->host, &why) != PARSE_OK) {
            snprintf(ep->host, sizeof(ep->host), "-");
            log_warnx("relay=%s conn=%llu bad destination name: %s", rc->name,
                      (unsigned long long)c->id, why);
            egress_deny(c, EGRESS_BAD_DESTINATION, NULL, NULL);
            return;
        }
        const struct egress_rule *rules;
        size_t n = egress_rules(c, &rules);
        enum egress_verdict v = egress_check_name(rules, n, ep->host, port);
        if (v != EGRESS_OK) {
            egress_deny(c, v, NULL, NULL);
            return;
        }
    }
    c->route = ep;
    conn_connect(c);
}

static void
egress_from_proxy(struct conn *c, const uint8_t *buf, size_t n)
{
    struct proxy_info info;
    size_t hdr_len;
    enum parse_result pr = conn_take_proxy_header(c, buf, n, &info, &hdr_len);

    if (pr == PARSE_AGAIN)
        return;
    if (pr == PARSE_INVALID) {
        conn_close(c, END_BAD_PREAMBLE);
        return;
    }
    c->egress->via = EGRESS_VIA_PROXY;

    /* the destination: the authority TLV's name if there is one, else the
     * header's destination address; the port is always the header's */
    char host[INET6_ADDRSTRLEN] = "";
    const char *name = NULL;
    size_t name_len = 0;
    uint16_t port = 0;
    if (info.cmd == PROXY_CMD_PROXY && info.family == AF_INET) {
        const struct sockaddr_in *d = (const struct sockaddr_in *)&info.dst;
        inet_ntop(AF_INET, &d->sin_addr, host, sizeof(host));
        port = ntohs(d->sin_port);
    } else if (info.cmd == PROXY_CMD_PROXY && info.family == AF_INET6) {
        const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)&info.dst;
        inet_ntop(AF_INET6, &d->sin6_addr, host, sizeof(host));
        port = ntohs(d->sin6_port);
    }
    const uint8_t *p = info.tlv, *end = info.tlv + info.tlv_len, *val;
    uint8_t type;
    uint16_t vlen;
    while (proxy_v2_tlv_next(&p, end, &type, &val, &vlen) == PARSE_OK) {
        if (type == PP2_TYPE_AUTHORITY) {
            name = (const char *)val;
            name_len = vlen;
        }
    }
    if (port == 0) {
        snprintf(c->egress->ep.host, sizeof(c->egress->ep.host), "-");
        log_warnx("relay=%s conn=%llu PROXY v2 header without a tcp destination",
                  c->relay->conf.name, (unsigned long long)c->id);
        egress_deny(c, EGRESS_BAD_DESTINATION, NULL, NULL);
        return;
    }
    if (name != NULL)
        egress_go(c, name, name_len, port);
    else
        egress_go(c, host, strlen(host), port);
}

static void
egress_from_connect(struct conn *c, const uint8_t *buf, size_t n)
{
    struct http_connect req;
    size_t head_len;
    const char *err = NULL;
    enum parse_result pr = http_connect_parse(buf, n, PREAMBLE_MAX, &req, &head_len, &err);

    if (pr == PARSE_AGAIN && !c->client.hup)
        return;
    c->egress->via = EGRESS_VIA_CONNECT;
    if (pr == PARSE_AGAIN)
        err = "connection closed inside the request";
    if (pr != PARSE_OK || !req.is_connect) {
        if (pr != PARSE_OK)
            log_warnx("relay=%s conn=%llu bad HTTP request: %s", c->relay->conf.name,
                      (unsigned long long)c->id, err);
        else
            log_warnx("relay=%s conn=%llu HTTP %s request: only CONNECT is served",
                      c->relay->conf.name, (unsigned long long)c->id, req.method);
        if (pr != PARSE_OK)
            egress_reply(c, 400, "Bad Request", "egress: expected CONNECT host:port HTTP/1.1");
        else
            egress_reply(c, 405, "Method Not Allowed", "egress: only CONNECT is served");
        conn_close(c, END_BAD_PREAMBLE);
        return;
    }
    /* req.host points into buf, a copy: the socket may be consumed first */
    if (side_consume(&c->client, head_len) != 0) {
        conn_close(c, END_ERROR);
        return;
    }
    egress_go(c, req.host, req.host_len, req.port);
}

/* The preamble hook. The first bytes tell the two ways apart: a PROXY v2
 * header starts with "\r\n\r\n\0\r\nQUIT\n", an HTTP request with a
 * method name. */
static void
egress_preamble(struct conn *c)
{
    uint8_t buf[PREAMBLE_MAX];
    ssize_t n;

    if (c->egress == NULL && (c->egress = calloc(1, sizeof(*c->egress))) == NULL) {
        conn_close(c, END_ERROR);
        return;
    }
    n = side_peek(&c->client, buf, sizeof(buf));
    if (n == -EAGAIN)
        return;
    if (n <= 0) {
        log_warnx("relay=%s conn=%llu closed before naming a destination", c->relay->conf.name,
                  (unsigned long long)c->id);
        conn_close(c, END_BAD_PREAMBLE);
        return;
    }
    if (proxy_v2_signature_prefix(buf, (size_t)n))
        egress_from_proxy(c, buf, (size_t)n);
    else
        egress_from_connect(c, buf, (size_t)n);
}

/* The admit hook: checks the address a destination resolved to (or was
 * given as). Returns 0 to go on, or -EACCES with the verdict kept for
 * egress_refuse(). */
static int
egress_admit(struct conn *c, const struct sockaddr *sa)
{
    const struct egress_rule *rules;
    size_t n = egress_rules(c, &rules);
    struct egress_dest *e = c->egress;

    e->denied = egress_check_addr(rules, n, sa, e->is_name, &e->denied_range);
    if (e->denied == EGRESS_OK)
        return 0;
    memcpy(&e->denied_addr, sa,
           sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    return -EACCES;
}

/* The refuse hook: a name that did not resolve, or an address admit
 * refused, is refused with that reason. */
static void
egress_refuse(struct conn *c, int err, enum dial_result why)
{
    struct egress_dest *e = c->egress;

    (void)err;
    if (why == DIAL_ADMIT_REFUSED)
        egress_deny(c, e->denied, (struct sockaddr *)&e->denied_addr, e->denied_range);
    else
        egress_deny(c, EGRESS_RESOLVE_FAILED, NULL, NULL);
}

const struct conn_ops conn_egress_ops = {
    .preamble = egress_preamble,
    .start = conn_connect,
    .admit = egress_admit,
    .refuse = egress_refuse,
    .answer = egress_answer,
    .closing = egress_closing,
};
