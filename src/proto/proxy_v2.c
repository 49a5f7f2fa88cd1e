/* proxy_v2.c - PROXY protocol version 2 header: parse and encode.
 *
 * Layout (haproxy doc/proxy-protocol.txt, section 2.2):
 *
 *   0..11  signature \r\n\r\n\0\r\nQUIT\n
 *   12     version << 4 | command      (version 2; LOCAL 0, PROXY 1)
 *   13     family << 4 | transport     (UNSPEC, INET, INET6, UNIX / UNSPEC, STREAM, DGRAM)
 *   14..15 length of the rest, big-endian
 *   16..   address block of the family, then TLVs up to the end of the header
 *
 * Pure: no syscalls, no allocation, never reads past buf[len). */
#include "proto/proxy_v2.h"

#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/un.h>

static const uint8_t proxy_v2_sig[PROXY_V2_SIG_LEN] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

#define PP2_VERSION 0x2
#define PP2_FAM_UNSPEC 0x0
#define PP2_FAM_INET 0x1
#define PP2_FAM_INET6 0x2
#define PP2_FAM_UNIX 0x3
#define PP2_TRANS_UNSPEC 0x0
#define PP2_TRANS_STREAM 0x1
#define PP2_TRANS_DGRAM 0x2

#define PP2_ADDR_LEN_INET (2 * 4 + 2 * 2)
#define PP2_ADDR_LEN_INET6 (2 * 16 + 2 * 2)
#define PP2_UNIX_PATH_LEN 108
#define PP2_ADDR_LEN_UNIX (2 * PP2_UNIX_PATH_LEN)
#define PP2_TLV_HDR_LEN 3
#define PP2_VSOCK_VAL_LEN 16
#define PP2_MAX_BODY 65535

/* The wire carries exactly 108 bytes per path; sockaddr_un must hold them. */
_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) == PP2_UNIX_PATH_LEN,
               "sun_path is not 108 bytes");

static uint16_t
get_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint8_t *
put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *
put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

/* Size of the address block for a wire family nibble already known to be valid. */
static size_t
addr_block_len(unsigned fam)
{
    switch (fam) {
    case PP2_FAM_INET:
        return PP2_ADDR_LEN_INET;
    case PP2_FAM_INET6:
        return PP2_ADDR_LEN_INET6;
    case PP2_FAM_UNIX:
        return PP2_ADDR_LEN_UNIX;
    default:
        return 0;
    }
}

static enum parse_result
fail(const char **err, const char *why)
{
    if (err != NULL)
        *err = why;
    return PARSE_INVALID;
}

enum parse_result
proxy_v2_tlv_next(const uint8_t **p, const uint8_t *end, uint8_t *type, const uint8_t **val,
                  uint16_t *vlen)
{
    const uint8_t *q = *p;

    if (q == end)
        return PARSE_AGAIN;
    /* Compare lengths, not pointers past end: q + 3 may not exist. */
    if (q > end || (size_t)(end - q) < PP2_TLV_HDR_LEN)
        return PARSE_INVALID;
    uint16_t n = get_be16(q + 1);
    if ((size_t)(end - q) - PP2_TLV_HDR_LEN < n)
        return PARSE_INVALID;
    *type = q[0];
    *val = q + PP2_TLV_HDR_LEN;
    *vlen = n;
    *p = q + PP2_TLV_HDR_LEN + n;
    return PARSE_OK;
}

static void
read_inet(struct sockaddr_storage *ss, const uint8_t *addr, const uint8_t *port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;

    memset(ss, 0, sizeof(*ss));
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, addr, 4); /* both are network order */
    memcpy(&sin->sin_port, port, 2);
}

static void
read_inet6(struct sockaddr_storage *ss, const uint8_t *addr, const uint8_t *port)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, addr, 16);
    memcpy(&sin6->sin6_port, port, 2);
}

static void
read_unix(struct sockaddr_storage *ss, const uint8_t *path)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)ss;

    memset(ss, 0, sizeof(*ss));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, PP2_UNIX_PATH_LEN);
}

static void
read_vsock(struct sockaddr_storage *ss, const uint8_t *cid, const uint8_t *port)
{
    struct sockaddr_vm *svm = (struct sockaddr_vm *)ss;

    memset(ss, 0, sizeof(*ss));
    svm->svm_family = AF_VSOCK;
    svm->svm_cid = get_be32(cid);
    svm->svm_port = get_be32(port);
}

/* Checks that the TLVs tile [p, end) exactly and picks up the airlock vsock
 * TLV when the header's own family cannot carry the addresses. A second vsock
 * TLV is refused rather than letting the first or the last one win: the
 * address decides what the allowlists see, so it must not be ambiguous. */
static enum parse_result
parse_tlvs(const uint8_t *p, const uint8_t *end, bool want_vsock, struct proxy_info *info,
           const char **err)
{
    const uint8_t *vsock = NULL;
    uint8_t type;
    const uint8_t *val;
    uint16_t vlen;
    enum parse_result r;

    while ((r = proxy_v2_tlv_next(&p, end, &type, &val, &vlen)) == PARSE_OK) {
        if (!want_vsock || type != PP2_TYPE_AIRLOCK_VSOCK)
            continue;
        if (vlen != PP2_VSOCK_VAL_LEN)
            return fail(err, "vsock TLV is not 16 bytes");
        if (vsock != NULL)
            return fail(err, "duplicate vsock TLV");
        vsock = val;
    }
    if (r != PARSE_AGAIN)
        return fail(err, "TLV overruns the header");
    if (vsock != NULL) {
        info->family = AF_VSOCK;
        read_vsock(&info->src, vsock, vsock + 4);
        read_vsock(&info->dst, vsock + 8, vsock + 12);
    }
    return PARSE_OK;
}

int
proxy_v2_signature_prefix(const uint8_t *buf, size_t len)
{
    size_t n = len < PROXY_V2_SIG_LEN ? len : PROXY_V2_SIG_LEN;

    return n == 0 || memcmp(buf, proxy_v2_sig, n) == 0;
}

/* Each check runs as soon as its byte is present, so a peer that is not
 * speaking PROXY v2 is refused on its first wrong byte rather than after we
 * have waited for 16 of them. */
enum parse_result
proxy_v2_parse(const uint8_t *buf, size_t len, struct proxy_info *info, size_t *hdr_len,
               const char **err)
{
    size_t n = len < PROXY_V2_SIG_LEN ? len : PROXY_V2_SIG_LEN;

    if (n > 0 && memcmp(buf, proxy_v2_sig, n) != 0)
        return fail(err, "bad signature");
    if (len <= PROXY_V2_SIG_LEN)
        return PARSE_AGAIN;

    unsigned ver = buf[12] >> 4, cmd = buf[12] & 0x0F;
    if (ver != PP2_VERSION)
        return fail(err, "bad version");
    if (cmd != PROXY_CMD_LOCAL && cmd != PROXY_CMD_PROXY)
        return fail(err, "bad command");
    if (len < 14)
        return PARSE_AGAIN;

    /* Checked for LOCAL too: the spec makes receivers reject unknown values,
     * whatever the command. */
    unsigned fam = buf[13] >> 4, trans = buf[13] & 0x0F;
    if (fam > PP2_FAM_UNIX)
        return fail(err, "bad address family");
    if (trans > PP2_TRANS_DGRAM)
        return fail(err, "bad transport");
    if (len < PROXY_V2_FIXED_LEN)
        return PARSE_AGAIN;

    /* LOCAL headers are held to the same shape (address block, then TLVs
     * tiling the rest) even though their addresses are dropped: a header we
     * cannot delimit is not one whose TLVs we should hand on. */
    size_t body = get_be16(buf + 14);
    size_t alen = addr_block_len(fam);
    if (body < alen)
        return fail(err, "length too short for address family");
    size_t total = PROXY_V2_FIXED_LEN + body;
    if (len < total)
        return PARSE_AGAIN;

    const uint8_t *a = buf + PROXY_V2_FIXED_LEN;
    struct proxy_info pi = {
        .cmd = (enum proxy_cmd)cmd,
        .family = AF_UNSPEC,
        .tlv = a + alen,
        .tlv_len = body - alen,
    };
    bool proxy = cmd == PROXY_CMD_PROXY;
    if (proxy) {
        pi.socktype = trans == PP2_TRANS_STREAM  ? SOCK_STREAM
                      : trans == PP2_TRANS_DGRAM ? SOCK_DGRAM
                                                 : 0;
        switch (fam) {
        case PP2_FAM_INET:
            pi.family = AF_INET;
            read_inet(&pi.src, a, a + 8);
            read_inet(&pi.dst, a + 4, a + 10);
            break;
        case PP2_FAM_INET6:
            pi.family = AF_INET6;
            read_inet6(&pi.src, a, a + 32);
            read_inet6(&pi.dst, a + 16, a + 34);
            break;
        case PP2_FAM_UNIX:
            pi.family = AF_UNIX;
            read_unix(&pi.src, a);
            read_unix(&pi.dst, a + PP2_UNIX_PATH_LEN);
            break;
        }
    }

    enum parse_result r = parse_tlvs(pi.tlv, buf + total, proxy && fam == PP2_FAM_UNSPEC, &pi, err);
    if (r != PARSE_OK)
        return r;
    *info = pi;
    *hdr_len = total;
    return PARSE_OK;
}

/* Copies a sun_path into its 108-byte wire slot. A pathname stops at its NUL
 * and the rest is zeroed, so stack garbage after the terminator never leaves
 * the host; an abstract name (leading NUL) has no terminator and no length
 * here, so all 108 bytes go out as they are. */
static uint8_t *
put_unix(uint8_t *p, const struct sockaddr *sa)
{
    const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
    size_t n = PP2_UNIX_PATH_LEN;

    if (sun->sun_path[0] != '\0')
        n = strnlen(sun->sun_path, PP2_UNIX_PATH_LEN);
    memcpy(p, sun->sun_path, n);
    memset(p + n, 0, PP2_UNIX_PATH_LEN - n);
    return p + PP2_UNIX_PATH_LEN;
}

size_t
proxy_v2_encode(uint8_t *out, size_t cap, const struct sockaddr *src, const struct sockaddr *dst,
                const uint8_t *tlv, size_t tlv_len)
{
    int family = AF_UNSPEC;
    if (src != NULL && dst != NULL && src->sa_family == dst->sa_family)
        family = src->sa_family;

    uint8_t ver_cmd = PP2_VERSION << 4 | PROXY_CMD_PROXY;
    uint8_t fam_trans = PP2_FAM_UNSPEC << 4 | PP2_TRANS_STREAM;
    size_t alen = 0;
    switch (family) {
    case AF_INET:
        fam_trans = PP2_FAM_INET << 4 | PP2_TRANS_STREAM;
        alen = PP2_ADDR_LEN_INET;
        break;
    case AF_INET6:
        fam_trans = PP2_FAM_INET6 << 4 | PP2_TRANS_STREAM;
        alen = PP2_ADDR_LEN_INET6;
        break;
    case AF_UNIX:
        fam_trans = PP2_FAM_UNIX << 4 | PP2_TRANS_STREAM;
        alen = PP2_ADDR_LEN_UNIX;
        break;
    case AF_VSOCK:
        /* The spec has no vsock family: send UNSPEC and the addresses in
         * our TLV, which receivers that do not know it skip. */
        alen = PP2_TLV_HDR_LEN + PP2_VSOCK_VAL_LEN;
        break;
    default:
        /* No address the other side could use: say so with LOCAL, which
         * tells it to keep the connection's own endpoints. */
        ver_cmd = PP2_VERSION << 4 | PROXY_CMD_LOCAL;
        fam_trans = PP2_FAM_UNSPEC << 4 | PP2_TRANS_UNSPEC;
        break;
    }

    if (tlv_len > PP2_MAX_BODY - alen)
        return 0;
    size_t body = alen + tlv_len;
    size_t total = PROXY_V2_FIXED_LEN + body;
    if (cap < total)
        return 0;

    uint8_t *p = out;
    memcpy(p, proxy_v2_sig, PROXY_V2_SIG_LEN);
    p += PROXY_V2_SIG_LEN;
    *p++ = ver_cmd;
    *p++ = fam_trans;
    p = put_be16(p, (uint16_t)body);

    switch (family) {
    case AF_INET: {
        const struct sockaddr_in *s = (const struct sockaddr_in *)src;
        const struct sockaddr_in *d = (const struct sockaddr_in *)dst;
        memcpy(p, &s->sin_addr, 4);
        memcpy(p + 4, &d->sin_addr, 4);
        memcpy(p + 8, &s->sin_port, 2);
        memcpy(p + 10, &d->sin_port, 2);
        p += PP2_ADDR_LEN_INET;
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)src;
        const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)dst;
        memcpy(p, &s->sin6_addr, 16);
        memcpy(p + 16, &d->sin6_addr, 16);
        memcpy(p + 32, &s->sin6_port, 2);
        memcpy(p + 34, &d->sin6_port, 2);
        p += PP2_ADDR_LEN_INET6;
        break;
    }
    case AF_UNIX:
        p = put_unix(p, src);
        p = put_unix(p, dst);
        break;
    case AF_VSOCK: {
        const struct sockaddr_vm *s = (const struct sockaddr_vm *)src;
        const struct sockaddr_vm *d = (const struct sockaddr_vm *)dst;
        *p++ = PP2_TYPE_AIRLOCK_VSOCK;
        p = put_be16(p, PP2_VSOCK_VAL_LEN);
        p = put_be32(p, s->svm_cid);
        p = put_be32(p, s->svm_port);
        p = put_be32(p, d->svm_cid);
        p = put_be32(p, d->svm_port);
        break;
    }
    }

    if (tlv_len > 0)
        memcpy(p, tlv, tlv_len);
    return total;
}
