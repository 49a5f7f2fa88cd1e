/* test_proxy_v2.c - PROXY protocol v2 parser and encoder.
 *
 * Every parse goes through parse_guarded(), which places the input right
 * before an unreadable page: an over-read crashes the test instead of
 * passing by luck. Headers are also written out byte by byte, as haproxy
 * lays them out, so that encode is not only checked against parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "guard.h"
#include "proto/proxy_v2.h"

#define SIG 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A

/* The literal headers below are laid out one field per line, as in the
 * spec; clang-format would pack them into an unreadable grid. */
/* clang-format off */

/* 192.0.2.1:56324 -> 198.51.100.7:443 over TCP, as haproxy sends it. */
static const uint8_t hdr_inet[] = {
    SIG,
    0x21,                   /* version 2, PROXY */
    0x11,                   /* INET, STREAM */
    0x00, 0x0C,             /* 12 bytes follow */
    0xC0, 0x00, 0x02, 0x01, /* src 192.0.2.1 */
    0xC6, 0x33, 0x64, 0x07, /* dst 198.51.100.7 */
    0xDC, 0x04,             /* src port 56324 */
    0x01, 0xBB,             /* dst port 443 */
};

/* [2001:db8::1]:40000 -> [2001:db8::2]:8443 over TCP. */
static const uint8_t hdr_inet6[] = {
    SIG,
    0x21,
    0x21,                   /* INET6, STREAM */
    0x00, 0x24,             /* 36 bytes follow */
    0x20, 0x01, 0x0D, 0xB8, 0x00, 0x00, 0x00, 0x00, /* src 2001:db8::1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x20, 0x01, 0x0D, 0xB8, 0x00, 0x00, 0x00, 0x00, /* dst 2001:db8::2 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x9C, 0x40,             /* src port 40000 */
    0x20, 0xFB,             /* dst port 8443 */
};

/* The same INET addresses followed by ALPN "h2", AUTHORITY "example.com"
 * and an empty NOOP TLV. */
static const uint8_t hdr_inet_tlv[] = {
    SIG,
    0x21,
    0x11,
    0x00, 0x22,             /* 12 + 5 + 14 + 3 = 34 bytes follow */
    0xC0, 0x00, 0x02, 0x01,
    0xC6, 0x33, 0x64, 0x07,
    0xDC, 0x04,
    0x01, 0xBB,
    0x01, 0x00, 0x02, 'h', '2',                 /* PP2_TYPE_ALPN */
    0x02, 0x00, 0x0B, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm', /* AUTHORITY */
    0x04, 0x00, 0x00,                           /* PP2_TYPE_NOOP, empty */
};

/* vsock cid 3 port 1234 -> cid 2 port 5000: UNSPEC family, STREAM, and the
 * airlock TLV. */
static const uint8_t hdr_vsock[] = {
    SIG,
    0x21,
    0x01,                   /* UNSPEC, STREAM */
    0x00, 0x13,             /* 19 bytes follow */
    0xE0, 0x00, 0x10,       /* PP2_TYPE_AIRLOCK_VSOCK, 16 bytes */
    0x00, 0x00, 0x00, 0x03, /* src cid 3 */
    0x00, 0x00, 0x04, 0xD2, /* src port 1234 */
    0x00, 0x00, 0x00, 0x02, /* dst cid 2 (host) */
    0x00, 0x00, 0x13, 0x88, /* dst port 5000 */
};

/* What haproxy sends for health checks: LOCAL, UNSPEC, no body. */
static const uint8_t hdr_local[] = {SIG, 0x20, 0x00, 0x00, 0x00};

/* clang-format on */

static enum parse_result
parse_guarded(const uint8_t *h, size_t n, struct proxy_info *info, size_t *hdr_len,
              const char **err)
{
    struct guard g;
    uint8_t *p = guard_copy(&g, h, n);

    *err = NULL;
    enum parse_result r = proxy_v2_parse(p, n, info, hdr_len, err);
    if (r == PARSE_INVALID)
        assert_non_null(*err);
    guard_free(&g);
    /* info->tlv pointed into the unmapped copy: point it at h instead. */
    if (r == PARSE_OK && info->tlv != NULL)
        info->tlv = h + (info->tlv - p);
    return r;
}

/* Every strict prefix is AGAIN and the whole header is OK with hdr_len n. */
static void
check_prefixes(const uint8_t *h, size_t n, struct proxy_info *info)
{
    size_t hl = 0;
    const char *err;

    for (size_t i = 0; i < n; i++) {
        if (parse_guarded(h, i, info, &hl, &err) != PARSE_AGAIN)
            fail_msg("prefix %zu of %zu: not AGAIN (%s)", i, n, err ? err : "OK");
    }
    assert_int_equal(parse_guarded(h, n, info, &hl, &err), PARSE_OK);
    assert_int_equal(hl, n);
}

/* The first len bytes are a valid prefix, byte len breaks it: INVALID from
 * len + 1 bytes on, without waiting for the rest of the header. */
static void
check_invalid_at(const uint8_t *h, size_t n, size_t bad, const char *want)
{
    struct proxy_info info;
    size_t hl;
    const char *err;

    for (size_t i = 0; i <= bad; i++)
        assert_int_equal(parse_guarded(h, i, &info, &hl, &err), PARSE_AGAIN);
    for (size_t i = bad + 1; i <= n; i++) {
        assert_int_equal(parse_guarded(h, i, &info, &hl, &err), PARSE_INVALID);
        assert_string_equal(err, want);
    }
}

static struct sockaddr_storage
sa_inet(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

    memset(&ss, 0, sizeof(ss));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage
sa_inet6(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

    memset(&ss, 0, sizeof(ss));
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
    return ss;
}

/* Fills with 0xAA past the terminator, as an uninitialized stack buffer
 * might be, to check that none of it reaches the wire. */
static struct sockaddr_storage
sa_unix(const char *path)
{
    struct sockaddr_storage ss;
    struct sockaddr_un *sun = (struct sockaddr_un *)&ss;

    memset(&ss, 0xAA, sizeof(ss));
    sun->sun_family = AF_UNIX;
    strcpy(sun->sun_path, path);
    return ss;
}

static struct sockaddr_storage
sa_vsock(uint32_t cid, uint32_t port)
{
    struct sockaddr_storage ss;
    struct sockaddr_vm *svm = (struct sockaddr_vm *)&ss;

    memset(&ss, 0, sizeof(ss));
    svm->svm_family = AF_VSOCK;
    svm->svm_cid = cid;
    svm->svm_port = port;
    return ss;
}

static void
assert_sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    assert_int_equal(a->ss_family, b->ss_family);
    switch (a->ss_family) {
    case AF_INET: {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        assert_memory_equal(&x->sin_addr, &y->sin_addr, 4);
        assert_int_equal(x->sin_port, y->sin_port);
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        assert_memory_equal(&x->sin6_addr, &y->sin6_addr, 16);
        assert_int_equal(x->sin6_port, y->sin6_port);
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *x = (const void *)a, *y = (const void *)b;
        size_t n = sizeof(x->sun_path);
        if (x->sun_path[0] != '\0')
            n = strnlen(x->sun_path, n);
        assert_memory_equal(x->sun_path, y->sun_path, n);
        break;
    }
    case AF_VSOCK: {
        const struct sockaddr_vm *x = (const void *)a, *y = (const void *)b;
        assert_int_equal(x->svm_cid, y->svm_cid);
        assert_int_equal(x->svm_port, y->svm_port);
        break;
    }
    default:
        fail_msg("unexpected family %d", a->ss_family);
    }
}

/* Builds sig | ver_cmd | fam | be16 len | body. */
static size_t
build(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t body_len)
{
    static const uint8_t sig[] = {SIG};

    memcpy(out, sig, sizeof(sig));
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(body_len >> 8);
    out[15] = (uint8_t)body_len;
    if (body_len > 0)
        memcpy(out + 16, body, body_len);
    return 16 + body_len;
}

static const uint8_t tlvs[] = {0x01, 0x00, 0x02, 'h', '2', 0x05, 0x00, 0x03, 'a', 'b', 'c'};

static void
roundtrip(const struct sockaddr_storage *src, const struct sockaddr_storage *dst, size_t want_len)
{
    uint8_t out[512];
    struct proxy_info info;

    size_t n = proxy_v2_encode(out, sizeof(out), (const struct sockaddr *)src,
                               (const struct sockaddr *)dst, tlvs, sizeof(tlvs));
    assert_int_equal(n, want_len);
    check_prefixes(out, n, &info);
    assert_int_equal(info.cmd, PROXY_CMD_PROXY);
    assert_int_equal(info.family, src->ss_family);
    assert_int_equal(info.socktype, SOCK_STREAM);
    assert_sa_equal(&info.src, src);
    assert_sa_equal(&info.dst, dst);

    /* The caller's TLVs come last, verbatim, after any vsock TLV. */
    assert_true(info.tlv_len >= sizeof(tlvs));
    assert_memory_equal(info.tlv + info.tlv_len - sizeof(tlvs), tlvs, sizeof(tlvs));
    assert_ptr_equal(info.tlv + info.tlv_len, out + n);
}

static void
test_roundtrip_inet(void **state)
{
    (void)state;
    struct sockaddr_storage s = sa_inet("192.0.2.1", 56324), d = sa_inet("198.51.100.7", 443);
    roundtrip(&s, &d, 16 + 12 + sizeof(tlvs));
    s = sa_inet("0.0.0.0", 0), d = sa_inet("255.255.255.255", 65535);
    roundtrip(&s, &d, 16 + 12 + sizeof(tlvs));
}

static void
test_roundtrip_inet6(void **state)
{
    (void)state;
    struct sockaddr_storage s = sa_inet6("2001:db8::1", 40000), d = sa_inet6("::ffff:1.2.3.4", 1);
    roundtrip(&s, &d, 16 + 36 + sizeof(tlvs));
}

static void
test_roundtrip_unix(void **state)
{
    (void)state;
    struct sockaddr_storage s = sa_unix("/run/a.sock"), d = sa_unix("/run/airlock/b.sock");
    roundtrip(&s, &d, 16 + 216 + sizeof(tlvs));

    /* A path of all 108 bytes has no terminator. */
    struct sockaddr_un *sun = (struct sockaddr_un *)&s;
    memset(sun->sun_path, 'x', sizeof(sun->sun_path));
    roundtrip(&s, &d, 16 + 216 + sizeof(tlvs));

    /* Abstract names are sent whole, embedded NULs included. */
    memset(sun->sun_path, 0, sizeof(sun->sun_path));
    memcpy(sun->sun_path, "\0abs\0tract", 10);
    roundtrip(&s, &d, 16 + 216 + sizeof(tlvs));
}

static void
test_roundtrip_vsock(void **state)
{
    (void)state;
    struct sockaddr_storage s = sa_vsock(3, 1234), d = sa_vsock(VMADDR_CID_HOST, 5000);
    roundtrip(&s, &d, 16 + 19 + sizeof(tlvs));
    s = sa_vsock(VMADDR_CID_ANY, VMADDR_PORT_ANY), d = sa_vsock(0x12345678, 0x9ABCDEF0);
    roundtrip(&s, &d, 16 + 19 + sizeof(tlvs));
}

static void
test_literal_inet(void **state)
{
    (void)state;
    struct proxy_info info;

    check_prefixes(hdr_inet, sizeof(hdr_inet), &info);
    assert_int_equal(info.cmd, PROXY_CMD_PROXY);
    assert_int_equal(info.family, AF_INET);
    assert_int_equal(info.socktype, SOCK_STREAM);
    const struct sockaddr_in *s = (const void *)&info.src, *d = (const void *)&info.dst;
    assert_int_equal(ntohl(s->sin_addr.s_addr), 0xC0000201);
    assert_int_equal(ntohs(s->sin_port), 56324);
    assert_int_equal(ntohl(d->sin_addr.s_addr), 0xC6336407);
    assert_int_equal(ntohs(d->sin_port), 443);
    assert_int_equal(info.tlv_len, 0);

    /* And encode produces exactly these bytes. */
    struct sockaddr_storage ss = sa_inet("192.0.2.1", 56324), ds = sa_inet("198.51.100.7", 443);
    uint8_t out[64];
    assert_int_equal(
        proxy_v2_encode(out, sizeof(out), (struct sockaddr *)&ss, (struct sockaddr *)&ds, NULL, 0),
        sizeof(hdr_inet));
    assert_memory_equal(out, hdr_inet, sizeof(hdr_inet));
}

static void
test_literal_inet6(void **state)
{
    (void)state;
    struct proxy_info info;

    check_prefixes(hdr_inet6, sizeof(hdr_inet6), &info);
    assert_int_equal(info.family, AF_INET6);
    struct sockaddr_storage ss = sa_inet6("2001:db8::1", 40000), ds = sa_inet6("2001:db8::2", 8443);
    assert_sa_equal(&info.src, &ss);
    assert_sa_equal(&info.dst, &ds);

    uint8_t out[64];
    assert_int_equal(
        proxy_v2_encode(out, sizeof(out), (struct sockaddr *)&ss, (struct sockaddr *)&ds, NULL, 0),
        sizeof(hdr_inet6));
    assert_memory_equal(out, hdr_inet6, sizeof(hdr_inet6));
}

static void
test_literal_unix(void **state)
{
    (void)state;
    uint8_t body[216] = {0}, h[16 + 216];
    memcpy(body, "/run/a.sock", 11);
    memcpy(body + 108, "/run/b.sock", 11);
    size_t n = build(h, 0x21, 0x31, body, sizeof(body));
    assert_int_equal(h[14], 0x00);
    assert_int_equal(h[15], 0xD8);

    struct proxy_info info;
    check_prefixes(h, n, &info);
    assert_int_equal(info.family, AF_UNIX);
    assert_int_equal(info.socktype, SOCK_STREAM);
    assert_string_equal(((struct sockaddr_un *)&info.src)->sun_path, "/run/a.sock");
    assert_string_equal(((struct sockaddr_un *)&info.dst)->sun_path, "/run/b.sock");

    /* The 0xAA filler after each NUL must come out as zeros. */
    struct sockaddr_storage ss = sa_unix("/run/a.sock"), ds = sa_unix("/run/b.sock");
    uint8_t out[300];
    assert_int_equal(
        proxy_v2_encode(out, sizeof(out), (struct sockaddr *)&ss, (struct sockaddr *)&ds, NULL, 0),
        n);
    assert_memory_equal(out, h, n);

    /* Unix datagram. */
    h[13] = 0x32;
    assert_int_equal(parse_guarded(h, n, &info, &(size_t){0}, &(const char *){NULL}), PARSE_OK);
    assert_int_equal(info.socktype, SOCK_DGRAM);
}

static void
test_literal_vsock(void **state)
{
    (void)state;
    struct proxy_info info;

    check_prefixes(hdr_vsock, sizeof(hdr_vsock), &info);
    assert_int_equal(info.cmd, PROXY_CMD_PROXY);
    assert_int_equal(info.family, AF_VSOCK);
    assert_int_equal(info.socktype, SOCK_STREAM);
    const struct sockaddr_vm *s = (const void *)&info.src, *d = (const void *)&info.dst;
    assert_int_equal(s->svm_family, AF_VSOCK);
    assert_int_equal(s->svm_cid, 3);
    assert_int_equal(s->svm_port, 1234);
    assert_int_equal(d->svm_family, AF_VSOCK);
    assert_int_equal(d->svm_cid, 2);
    assert_int_equal(d->svm_port, 5000);
    /* The vsock TLV stays in the slice, for the caller to walk or forward. */
    assert_ptr_equal(info.tlv, hdr_vsock + 16);
    assert_int_equal(info.tlv_len, 19);

    struct sockaddr_storage ss = sa_vsock(3, 1234), ds = sa_vsock(2, 5000);
    uint8_t out[64];
    assert_int_equal(
        proxy_v2_encode(out, sizeof(out), (struct sockaddr *)&ss, (struct sockaddr *)&ds, NULL, 0),
        sizeof(hdr_vsock));
    assert_memory_equal(out, hdr_vsock, sizeof(hdr_vsock));
}

static void
test_udp(void **state)
{
    (void)state;
    uint8_t h[sizeof(hdr_inet)];
    struct proxy_info info;

    memcpy(h, hdr_inet, sizeof(h));
    h[13] = 0x12;
    check_prefixes(h, sizeof(h), &info);
    assert_int_equal(info.family, AF_INET);
    assert_int_equal(info.socktype, SOCK_DGRAM);
}

static void
test_bad_signature(void **state)
{
    (void)state;
    uint8_t h[sizeof(hdr_inet)];

    for (size_t i = 0; i < PROXY_V2_SIG_LEN; i++) {
        memcpy(h, hdr_inet, sizeof(h));
        h[i] ^= 0x20;
        check_invalid_at(h, sizeof(h), i, "bad signature");
    }
    /* A PROXY v1 line and an HTTP request fail on their first byte. */
    check_invalid_at((const uint8_t *)"PROXY TCP4 ", 11, 0, "bad signature");
    check_invalid_at((const uint8_t *)"GET / HTTP/1.1\r\n", 16, 0, "bad signature");
}

static void
test_bad_version(void **state)
{
    (void)state;
    uint8_t h[sizeof(hdr_inet)];

    for (unsigned v = 0; v < 16; v++) {
        if (v == 2)
            continue;
        memcpy(h, hdr_inet, sizeof(h));
        h[12] = (uint8_t)(v << 4 | 0x1);
        check_invalid_at(h, sizeof(h), 12, "bad version");
    }
}

static void
test_bad_command(void **state)
{
    (void)state;
    uint8_t h[sizeof(hdr_inet)];

    for (unsigned c = 2; c < 16; c++) {
        memcpy(h, hdr_inet, sizeof(h));
        h[12] = (uint8_t)(0x20 | c);
        check_invalid_at(h, sizeof(h), 12, "bad command");
    }
}

static void
test_bad_family(void **state)
{
    (void)state;
    uint8_t h[sizeof(hdr_inet)];

    for (unsigned f = 4; f < 16; f++) {
        for (unsigned cmd = 0; cmd < 2; cmd++) {
            memcpy(h, hdr_inet, sizeof(h));
            h[12] = (uint8_t)(0x20 | cmd);
            h[13] = (uint8_t)(f << 4 | 0x1);
            check_invalid_at(h, sizeof(h), 13, "bad address family");
        }
    }
}

static void
test_bad_transport(void **state)
{
    (void)state;
    uint8_t h[sizeof(hdr_inet)];

    for (unsigned t = 3; t < 16; t++) {
        memcpy(h, hdr_inet, sizeof(h));
        h[13] = (uint8_t)(0x10 | t);
        check_invalid_at(h, sizeof(h), 13, "bad transport");
    }
}

static void
test_length_too_short(void **state)
{
    (void)state;
    static const struct {
        uint8_t fam;
        size_t alen;
    } fams[] = {{0x11, 12}, {0x21, 36}, {0x31, 216}};
    uint8_t body[216] = {0}, h[16 + 216];
    struct proxy_info info;
    size_t hl;
    const char *err;

    for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
        for (unsigned cmd = 0; cmd < 2; cmd++) {
            /* INVALID as soon as the length is read, before the body. */
            size_t n = build(h, (uint8_t)(0x20 | cmd), fams[i].fam, body, fams[i].alen - 1);
            check_invalid_at(h, n, 15, "length too short for address family");
            build(h, (uint8_t)(0x20 | cmd), fams[i].fam, body, 0);
            check_invalid_at(h, 16, 15, "length too short for address family");

            /* Exactly the address block: fine, no TLVs. */
            n = build(h, (uint8_t)(0x20 | cmd), fams[i].fam, body, fams[i].alen);
            assert_int_equal(parse_guarded(h, n, &info, &hl, &err), PARSE_OK);
            assert_int_equal(hl, n);
            assert_int_equal(info.tlv_len, 0);
        }
    }
}

static void
test_tlvs_valid(void **state)
{
    (void)state;
    struct proxy_info info;

    check_prefixes(hdr_inet_tlv, sizeof(hdr_inet_tlv), &info);
    assert_int_equal(info.family, AF_INET);
    assert_ptr_equal(info.tlv, hdr_inet_tlv + 28);
    assert_int_equal(info.tlv_len, sizeof(hdr_inet_tlv) - 28);

    const uint8_t *p = info.tlv, *end = info.tlv + info.tlv_len, *val;
    uint8_t type;
    uint16_t vlen;
    assert_int_equal(proxy_v2_tlv_next(&p, end, &type, &val, &vlen), PARSE_OK);
    assert_int_equal(type, 0x01);
    assert_int_equal(vlen, 2);
    assert_memory_equal(val, "h2", 2);
    assert_int_equal(proxy_v2_tlv_next(&p, end, &type, &val, &vlen), PARSE_OK);
    assert_int_equal(type, 0x02);
    assert_int_equal(vlen, 11);
    assert_memory_equal(val, "example.com", 11);
    assert_int_equal(proxy_v2_tlv_next(&p, end, &type, &val, &vlen), PARSE_OK);
    assert_int_equal(type, 0x04);
    assert_int_equal(vlen, 0);
    assert_int_equal(proxy_v2_tlv_next(&p, end, &type, &val, &vlen), PARSE_AGAIN);
    assert_ptr_equal(p, end);
}

static void
test_tlvs_empty(void **state)
{
    (void)state;
    struct proxy_info info;

    check_prefixes(hdr_inet, sizeof(hdr_inet), &info);
    assert_int_equal(info.tlv_len, 0);
    const uint8_t *p = info.tlv, *val;
    uint8_t type;
    uint16_t vlen;
    assert_int_equal(proxy_v2_tlv_next(&p, info.tlv + info.tlv_len, &type, &val, &vlen),
                     PARSE_AGAIN);
}

static void
test_tlvs_overrun(void **state)
{
    (void)state;
    uint8_t h[sizeof(hdr_inet_tlv) + 64];
    struct proxy_info info;
    size_t hl;
    const char *err;

    /* The last TLV claims one byte more than the header holds, even though
     * the buffer has payload bytes after the header it could borrow. */
    memcpy(h, hdr_inet_tlv, sizeof(hdr_inet_tlv));
    memset(h + sizeof(hdr_inet_tlv), 'P', 64);
    h[sizeof(hdr_inet_tlv) - 1] = 0x01;
    for (size_t n = 0; n < sizeof(hdr_inet_tlv); n++)
        assert_int_equal(parse_guarded(h, n, &info, &hl, &err), PARSE_AGAIN);
    for (size_t n = sizeof(hdr_inet_tlv); n <= sizeof(h); n++) {
        assert_int_equal(parse_guarded(h, n, &info, &hl, &err), PARSE_INVALID);
        assert_string_equal(err, "TLV overruns the header");
    }

    /* Header length cuts a TLV's own 3-byte header short: 1 and 2 bytes. */
    uint8_t body[12 + 5] = {0};
    body[12] = 0x01;
    body[13] = 0x00;
    body[14] = 0x00;
    for (size_t left = 1; left <= 2; left++) {
        size_t n = build(h, 0x21, 0x11, body, 12 + left);
        assert_int_equal(parse_guarded(h, n, &info, &hl, &err), PARSE_INVALID);
        assert_string_equal(err, "TLV overruns the header");
    }
    /* All 3 present with a zero length: a valid empty TLV. */
    size_t n = build(h, 0x21, 0x11, body, 12 + 3);
    assert_int_equal(parse_guarded(h, n, &info, &hl, &err), PARSE_OK);
    assert_int_equal(info.tlv_len, 3);
}

static void
test_tlv_next(void **state)
{
    (void)state;
    static const uint8_t t[] = {0x30, 0x00, 0x02, 'o', 'k'};
    const uint8_t *p, *val = NULL;
    uint8_t type = 0;
    uint16_t vlen = 0;

    for (size_t n = 1; n < sizeof(t); n++) {
        struct guard g;
        const uint8_t *b = guard_copy(&g, t, n);
        p = b;
        assert_int_equal(proxy_v2_tlv_next(&p, b + n, &type, &val, &vlen), PARSE_INVALID);
        assert_ptr_equal(p, b); /* no progress on failure */
        guard_free(&g);
    }
    struct guard g;
    const uint8_t *b = guard_copy(&g, t, sizeof(t));
    p = b;
    assert_int_equal(proxy_v2_tlv_next(&p, b + sizeof(t), &type, &val, &vlen), PARSE_OK);
    assert_int_equal(type, 0x30);
    assert_int_equal(vlen, 2);
    assert_ptr_equal(val, b + 3);
    assert_ptr_equal(p, b + sizeof(t));
    assert_int_equal(proxy_v2_tlv_next(&p, b + sizeof(t), &type, &val, &vlen), PARSE_AGAIN);
    guard_free(&g);
}

static void
test_payload(void **state)
{
    (void)state;
    static const char payload[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    uint8_t h[sizeof(hdr_inet_tlv) + sizeof(payload)];
    struct proxy_info info;
    size_t hl = 0;
    const char *err;

    memcpy(h, hdr_inet_tlv, sizeof(hdr_inet_tlv));
    memcpy(h + sizeof(hdr_inet_tlv), payload, sizeof(payload));
    for (size_t n = sizeof(hdr_inet_tlv); n <= sizeof(h); n++) {
        assert_int_equal(parse_guarded(h, n, &info, &hl, &err), PARSE_OK);
        assert_int_equal(hl, sizeof(hdr_inet_tlv));
        /* The TLV slice stops at the header, not at the end of the buffer. */
        assert_ptr_equal(info.tlv + info.tlv_len, h + sizeof(hdr_inet_tlv));
    }
    assert_memory_equal(h + hl, payload, sizeof(payload));
}

static void
test_local(void **state)
{
    (void)state;
    struct proxy_info info;

    check_prefixes(hdr_local, sizeof(hdr_local), &info);
    assert_int_equal(info.cmd, PROXY_CMD_LOCAL);
    assert_int_equal(info.family, AF_UNSPEC);
    assert_int_equal(info.socktype, 0);
    assert_int_equal(info.tlv_len, 0);

    /* LOCAL with an address block: receivers must skip it, not use it. */
    uint8_t h[sizeof(hdr_inet_tlv)];
    memcpy(h, hdr_inet_tlv, sizeof(h));
    h[12] = 0x20;
    check_prefixes(h, sizeof(h), &info);
    assert_int_equal(info.cmd, PROXY_CMD_LOCAL);
    assert_int_equal(info.family, AF_UNSPEC);
    assert_int_equal(info.socktype, 0);
    assert_ptr_equal(info.tlv, h + 28); /* TLVs still start after the addresses */

    /* LOCAL with the vsock TLV: still no address. */
    uint8_t v[sizeof(hdr_vsock)];
    memcpy(v, hdr_vsock, sizeof(v));
    v[12] = 0x20;
    check_prefixes(v, sizeof(v), &info);
    assert_int_equal(info.family, AF_UNSPEC);
    assert_int_equal(info.tlv_len, 19);
}

static void
test_vsock_tlv_rules(void **state)
{
    (void)state;
    uint8_t body[64], h[96];
    struct proxy_info info;
    size_t hl, n;
    const char *err;

    /* Not 16 bytes: 15 and 17. */
    for (int d = -1; d <= 1; d += 2) {
        memset(body, 0, sizeof(body));
        body[0] = 0xE0;
        body[2] = (uint8_t)(16 + d);
        n = build(h, 0x21, 0x01, body, (size_t)(3 + 16 + d));
        assert_int_equal(parse_guarded(h, n, &info, &hl, &err), PARSE_INVALID);
        assert_string_equal(err, "vsock TLV is not 16 bytes");
    }

    /* Twice: ambiguous source, refused. */
    memcpy(body, hdr_vsock + 16, 19);
    memcpy(body + 19, hdr_vsock + 16, 19);
    n = build(h, 0x21, 0x01, body, 38);
    assert_int_equal(parse_guarded(h, n, &info, &hl, &err), PARSE_INVALID);
    assert_string_equal(err, "duplicate vsock TLV");

    /* After another TLV, and with no transport: found all the same. */
    static const uint8_t alpn[] = {0x01, 0x00, 0x02, 'h', '2'};
    memcpy(body, alpn, sizeof(alpn));
    memcpy(body + sizeof(alpn), hdr_vsock + 16, 19);
    n = build(h, 0x21, 0x00, body, sizeof(alpn) + 19);
    check_prefixes(h, n, &info);
    assert_int_equal(info.family, AF_VSOCK);
    assert_int_equal(info.socktype, 0);
    assert_int_equal(((struct sockaddr_vm *)&info.src)->svm_cid, 3);

    /* With a real address family the header's own addresses win and 0xE0 is
     * just another TLV, whatever its length. */
    memcpy(body, hdr_inet + 16, 12);
    memcpy(body + 12, hdr_vsock + 16, 19);
    body[12 + 2] = 4;
    n = build(h, 0x21, 0x11, body, 12 + 3 + 4);
    check_prefixes(h, n, &info);
    assert_int_equal(info.family, AF_INET);
    assert_int_equal(info.tlv_len, 7);

    /* UNSPEC without the TLV: PROXY, but no address. */
    n = build(h, 0x21, 0x01, alpn, sizeof(alpn));
    check_prefixes(h, n, &info);
    assert_int_equal(info.cmd, PROXY_CMD_PROXY);
    assert_int_equal(info.family, AF_UNSPEC);
    assert_int_equal(info.socktype, SOCK_STREAM);
}

static void
test_max_length(void **state)
{
    (void)state;
    static uint8_t h[PROXY_V2_MAX_LEN];
    static uint8_t body[65535];
    struct proxy_info info;
    size_t hl;
    const char *err;

    memcpy(body, hdr_inet + 16, 12);
    body[12] = 0xEE;
    body[13] = (65535 - 15) >> 8;
    body[14] = (65535 - 15) & 0xFF;
    size_t n = build(h, 0x21, 0x11, body, sizeof(body));
    assert_int_equal(n, PROXY_V2_MAX_LEN);
    assert_int_equal(parse_guarded(h, n - 1, &info, &hl, &err), PARSE_AGAIN);
    assert_int_equal(parse_guarded(h, n, &info, &hl, &err), PARSE_OK);
    assert_int_equal(hl, PROXY_V2_MAX_LEN);
    assert_int_equal(info.tlv_len, 65535 - 12);

    /* Encode fits exactly that much and refuses one byte more. */
    static uint8_t out[PROXY_V2_MAX_LEN + 1];
    struct sockaddr_storage s = sa_inet("192.0.2.1", 1), d = sa_inet("192.0.2.2", 2);
    assert_int_equal(proxy_v2_encode(out, sizeof(out), (struct sockaddr *)&s, (struct sockaddr *)&d,
                                     body + 12, 65535 - 12),
                     PROXY_V2_MAX_LEN);
    assert_int_equal(proxy_v2_encode(out, sizeof(out), (struct sockaddr *)&s, (struct sockaddr *)&d,
                                     body + 11, 65535 - 11),
                     0);
    s = sa_vsock(3, 1), d = sa_vsock(2, 2);
    assert_int_equal(proxy_v2_encode(out, sizeof(out), (struct sockaddr *)&s, (struct sockaddr *)&d,
                                     body, 65535 - 18),
                     0);
}

static void
test_encode_small_cap(void **state)
{
    (void)state;
    struct sockaddr_storage pairs[][2] = {
        {sa_inet("192.0.2.1", 56324), sa_inet("198.51.100.7", 443)},
        {sa_inet6("2001:db8::1", 1), sa_inet6("2001:db8::2", 2)},
        {sa_unix("/a"), sa_unix("/b")},
        {sa_vsock(3, 1), sa_vsock(2, 2)},
    };
    uint8_t out[512], ref[512];

    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        const struct sockaddr *s = (struct sockaddr *)&pairs[i][0];
        const struct sockaddr *d = (struct sockaddr *)&pairs[i][1];
        size_t need = proxy_v2_encode(ref, sizeof(ref), s, d, tlvs, sizeof(tlvs));
        assert_true(need > 16);
        for (size_t cap = 0; cap < need; cap++) {
            memset(out, 0x5A, sizeof(out));
            assert_int_equal(proxy_v2_encode(out, cap, s, d, tlvs, sizeof(tlvs)), 0);
            for (size_t j = 0; j < sizeof(out); j++)
                assert_int_equal(out[j], 0x5A); /* nothing written */
        }
        assert_int_equal(proxy_v2_encode(out, need, s, d, tlvs, sizeof(tlvs)), need);
        assert_memory_equal(out, ref, need);
    }
    assert_int_equal(proxy_v2_encode(out, 15, NULL, NULL, NULL, 0), 0);
    assert_int_equal(proxy_v2_encode(out, 16, NULL, NULL, NULL, 0), 16);
}

static void
test_encode_local(void **state)
{
    (void)state;
    struct sockaddr_storage v4 = sa_inet("192.0.2.1", 1), v6 = sa_inet6("2001:db8::1", 1);
    struct sockaddr_storage pk;
    memset(&pk, 0, sizeof(pk));
    pk.ss_family = AF_PACKET;
    uint8_t out[64];
    struct proxy_info info;

    /* No source, no destination, mixed families, unknown family. */
    const struct sockaddr *cases[][2] = {
        {NULL, (struct sockaddr *)&v4},
        {(struct sockaddr *)&v4, NULL},
        {(struct sockaddr *)&v4, (struct sockaddr *)&v6},
        {(struct sockaddr *)&pk, (struct sockaddr *)&pk},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = proxy_v2_encode(out, sizeof(out), cases[i][0], cases[i][1], NULL, 0);
        assert_int_equal(n, sizeof(hdr_local));
        assert_memory_equal(out, hdr_local, sizeof(hdr_local));
    }

    /* The caller's TLVs still go out with a LOCAL header. */
    size_t n = proxy_v2_encode(out, sizeof(out), NULL, NULL, tlvs, sizeof(tlvs));
    assert_int_equal(n, 16 + sizeof(tlvs));
    check_prefixes(out, n, &info);
    assert_int_equal(info.cmd, PROXY_CMD_LOCAL);
    assert_int_equal(info.family, AF_UNSPEC);
    assert_int_equal(info.tlv_len, sizeof(tlvs));
    assert_memory_equal(info.tlv, tlvs, sizeof(tlvs));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_inet),
        cmocka_unit_test(test_roundtrip_inet6),
        cmocka_unit_test(test_roundtrip_unix),
        cmocka_unit_test(test_roundtrip_vsock),
        cmocka_unit_test(test_literal_inet),
        cmocka_unit_test(test_literal_inet6),
        cmocka_unit_test(test_literal_unix),
        cmocka_unit_test(test_literal_vsock),
        cmocka_unit_test(test_udp),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_bad_version),
        cmocka_unit_test(test_bad_command),
        cmocka_unit_test(test_bad_family),
        cmocka_unit_test(test_bad_transport),
        cmocka_unit_test(test_length_too_short),
        cmocka_unit_test(test_tlvs_valid),
        cmocka_unit_test(test_tlvs_empty),
        cmocka_unit_test(test_tlvs_overrun),
        cmocka_unit_test(test_tlv_next),
        cmocka_unit_test(test_payload),
        cmocka_unit_test(test_local),
        cmocka_unit_test(test_vsock_tlv_rules),
        cmocka_unit_test(test_max_length),
        cmocka_unit_test(test_encode_small_cap),
        cmocka_unit_test(test_encode_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
