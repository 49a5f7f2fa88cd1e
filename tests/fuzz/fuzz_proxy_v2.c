/* fuzz_proxy_v2.c - libFuzzer harness for the PROXY v2 parser and encoder.
 *
 * Parses the input; on success checks that the result is self-consistent,
 * walks the TLVs, then re-encodes the addresses and TLVs and parses the
 * result again: the two parses must agree. abort() on any disagreement. */
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fuzz.h"
#include "proto/proxy_v2.h"

/* Equal as far as the wire can carry: a pathname ends at its NUL (encode
 * zeroes the rest), an abstract name is all 108 bytes. */
static int
same_addr(int family, const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != family || b->ss_family != family)
        return 0;
    switch (family) {
    case AF_INET: {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_addr.s_addr == y->sin_addr.s_addr && x->sin_port == y->sin_port;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0 && x->sin6_port == y->sin6_port;
    }
    case AF_UNIX: {
        const struct sockaddr_un *x = (const void *)a, *y = (const void *)b;
        size_t n = sizeof(x->sun_path);
        if (x->sun_path[0] != '\0')
            n = strnlen(x->sun_path, n);
        return memcmp(x->sun_path, y->sun_path, n) == 0;
    }
    case AF_VSOCK: {
        const struct sockaddr_vm *x = (const void *)a, *y = (const void *)b;
        return x->svm_cid == y->svm_cid && x->svm_port == y->svm_port;
    }
    default:
        return 0;
    }
}

/* Walks every TLV (the parser promised they tile the slice) and copies them
 * to out, leaving out the vsock TLV when the address came from it: encode
 * adds its own, and a second one would be refused as a duplicate. */
static size_t
walk_tlvs(const struct proxy_info *info, uint8_t *out)
{
    const uint8_t *p = info->tlv, *end = info->tlv + info->tlv_len, *val;
    uint8_t type;
    uint16_t vlen;
    size_t n = 0;
    int vsock_seen = 0;
    enum parse_result r;

    while ((r = proxy_v2_tlv_next(&p, end, &type, &val, &vlen)) == PARSE_OK) {
        check(val >= info->tlv && val + vlen <= end);
        if (info->family == AF_VSOCK && type == PP2_TYPE_AIRLOCK_VSOCK) {
            check(vlen == 16 && !vsock_seen);
            vsock_seen = 1;
            continue;
        }
        out[n++] = type;
        out[n++] = (uint8_t)(vlen >> 8);
        out[n++] = (uint8_t)vlen;
        memcpy(out + n, val, vlen);
        n += vlen;
    }
    check(r == PARSE_AGAIN && p == end);
    check(vsock_seen == (info->family == AF_VSOCK));
    return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t tlv[PROXY_V2_MAX_LEN], enc[PROXY_V2_MAX_LEN];
    struct proxy_info info, again;
    size_t hl = 0, hl2 = 0;
    const char *err = NULL;

    enum parse_result r = proxy_v2_parse(data, size, &info, &hl, &err);
    if (r == PARSE_INVALID) {
        check(err != NULL);
        return 0;
    }
    if (r == PARSE_AGAIN) {
        /* Only a short input may ask for more. */
        check(size < PROXY_V2_FIXED_LEN ||
              size < PROXY_V2_FIXED_LEN + (size_t)(data[14] << 8 | data[15]));
        return 0;
    }

    check(hl >= PROXY_V2_FIXED_LEN && hl <= size && hl <= PROXY_V2_MAX_LEN);
    check(info.tlv >= data + PROXY_V2_FIXED_LEN && info.tlv + info.tlv_len == data + hl);
    check(info.cmd == PROXY_CMD_LOCAL || info.cmd == PROXY_CMD_PROXY);
    check(info.cmd == PROXY_CMD_PROXY || info.family == AF_UNSPEC);

    /* The header alone parses the same; one byte less wants more. */
    check(proxy_v2_parse(data, hl, &again, &hl2, &err) == PARSE_OK && hl2 == hl);
    check(proxy_v2_parse(data, hl - 1, &again, &hl2, &err) == PARSE_AGAIN);

    size_t tlv_len = walk_tlvs(&info, tlv);

    /* Re-encode. With no address, encode says LOCAL; a PROXY header with
     * UNSPEC family thus comes back as LOCAL, which means the same. */
    const struct sockaddr *src = NULL, *dst = NULL;
    if (info.family != AF_UNSPEC) {
        src = (const struct sockaddr *)&info.src;
        dst = (const struct sockaddr *)&info.dst;
    }
    size_t n = proxy_v2_encode(enc, sizeof(enc), src, dst, tlv, tlv_len);
    /* Same address block, same TLVs (the vsock one moved to the front): the
     * same length, so it always fits. A LOCAL header loses its address
     * block, if it had one. */
    check(n != 0 && n <= hl);
    check(info.cmd == PROXY_CMD_LOCAL || n == hl);
    if (src == NULL)
        check(n == PROXY_V2_FIXED_LEN + tlv_len);

    check(proxy_v2_parse(enc, n, &again, &hl2, &err) == PARSE_OK && hl2 == n);
    check(again.family == info.family);
    if (info.family != AF_UNSPEC) {
        check(again.cmd == PROXY_CMD_PROXY);
        check(same_addr(info.family, &info.src, &again.src));
        check(same_addr(info.family, &info.dst, &again.dst));
    } else {
        check(again.cmd == PROXY_CMD_LOCAL);
    }
    /* The caller's TLVs come out last, verbatim. */
    check(again.tlv_len >= tlv_len);
    check(memcmp(again.tlv + again.tlv_len - tlv_len, tlv, tlv_len) == 0);
    return 0;
}
