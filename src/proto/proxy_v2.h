/* proxy_v2.h - PROXY protocol version 2 header: parse and encode.
 *
 * Pure: no syscalls, no allocation. See haproxy's doc/proxy-protocol.txt.
 * vsock addresses have no family in the spec; airlock sends them as
 * AF_UNSPEC with a PP2_TYPE_AIRLOCK_VSOCK TLV (type 0xE0, custom range)
 * whose value is src cid, src port, dst cid, dst port (4 x be32). */
#ifndef AIRLOCK_PROTO_PROXY_V2_H
#define AIRLOCK_PROTO_PROXY_V2_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proto/parse.h"

#define PROXY_V2_SIG_LEN 12
#define PROXY_V2_FIXED_LEN 16
#define PROXY_V2_MAX_LEN (PROXY_V2_FIXED_LEN + 65535)
#define PP2_TYPE_AIRLOCK_VSOCK 0xE0
#define PP2_TYPE_AUTHORITY 0x02 /* the host name the client asked for (UTF-8) */
/* The longest header airlock reads: a front's addresses and a few TLVs;
 * one that has not ended by then is refused, not waited for. */
#define PROXY_V2_READ_MAX 4096

enum proxy_cmd { PROXY_CMD_LOCAL = 0, PROXY_CMD_PROXY = 1 };

/* Whether a listener's connections begin with a header (accept_proxy), or
 * its targets' get one (send_proxy). */
enum proxy_mode { PROXY_NONE, PROXY_V2 };

struct proxy_info {
    enum proxy_cmd cmd;
    /* AF_INET, AF_INET6, AF_UNIX, AF_VSOCK (from the airlock TLV), or
     * AF_UNSPEC when the header carries no usable address. */
    int family;
    int socktype;                /* SOCK_STREAM, SOCK_DGRAM or 0 */
    struct sockaddr_storage src; /* valid when family != AF_UNSPEC */
    struct sockaddr_storage dst;
    const uint8_t *tlv; /* slice into the caller's buffer; tlv_len bytes */
    size_t tlv_len;
};

/* Parses a header at the start of buf[0..len). On PARSE_OK, *hdr_len is the
 * header's total length (the payload starts at buf + *hdr_len) and *info
 * refers into buf. PARSE_AGAIN: a valid prefix, more bytes needed.
 * PARSE_INVALID: *err names the fault (bad signature, version, command,
 * family, lengths, or TLVs that overrun the header); err may be NULL.
 * *info and *hdr_len are written only on PARSE_OK. Each fixed byte is
 * checked as soon as it is present, so a non-PROXY peer fails on its first
 * wrong byte. Never reads past buf[len).
 *
 * A LOCAL header must be as well formed as a PROXY one (length covering the
 * family's address block, TLVs tiling the rest), but its addresses are
 * dropped: family AF_UNSPEC, socktype 0. The vsock TLV is read only for a
 * PROXY header of UNSPEC family; there it must be 16 bytes and appear at
 * most once, or the header is INVALID. It stays in the tlv slice. */
enum parse_result proxy_v2_parse(const uint8_t *buf, size_t len, struct proxy_info *info,
                                 size_t *hdr_len, const char **err);

/* Returns 1 when buf[0..len) is a prefix of the 12-byte PROXY v2 signature
 * (or holds all of it, followed by anything), 0 otherwise; 1 for len 0.
 * Tells a PROXY v2 peer from one speaking another protocol by its first
 * byte. */
int proxy_v2_signature_prefix(const uint8_t *buf, size_t len);

/* Encodes a PROXY command header for a connection from src to dst (both
 * the same family: AF_INET, AF_INET6, AF_UNIX or AF_VSOCK, each a full
 * sockaddr of that family; src or dst NULL, different families or any other
 * family give a LOCAL command with AF_UNSPEC and no address), transport
 * STREAM, appending the tlv bytes verbatim (not checked; for AF_VSOCK they
 * follow the vsock TLV and must not hold another). A unix pathname is sent
 * up to its NUL and zero-filled; an abstract name (leading NUL) is sent as
 * all 108 bytes, so zero its unused tail. Returns the header length, or 0
 * when cap is too small or the header would exceed PROXY_V2_MAX_LEN; writes
 * nothing then. */
size_t proxy_v2_encode(uint8_t *out, size_t cap, const struct sockaddr *src,
                       const struct sockaddr *dst, const uint8_t *tlv, size_t tlv_len);

/* Iterates TLVs: on PARSE_OK sets *type, *val, *vlen and advances *p.
 * Returns PARSE_AGAIN when *p == end (no more TLVs) and PARSE_INVALID when a
 * TLV overruns end, leaving *p where it was. After a PARSE_OK parse the
 * TLVs of info->tlv are known to tile it, so the walk ends in PARSE_AGAIN. */
enum parse_result proxy_v2_tlv_next(const uint8_t **p, const uint8_t *end, uint8_t *type,
                                    const uint8_t **val, uint16_t *vlen);

#endif
