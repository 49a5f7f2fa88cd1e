/* frame.c - datagram frames on a stream; see frame.h. Pure: no syscalls, no
 * allocation, never reads past buf[len). */
#include "proto/frame.h"

#include <string.h>

enum parse_result
frame_parse(const uint8_t *buf, size_t len, struct frame *f, size_t *frame_len, const char **err)
{
    const char *why;

    if (len >= 1 && buf[0] != FRAME_MAGIC) {
        why = "bad magic byte (not an airlock datagram stream?)";
        goto invalid;
    }
    if (len >= 2 && buf[1] != FRAME_TYPE_DATA) {
        why = "unknown frame type";
        goto invalid;
    }
    if (len < 4)
        return PARSE_AGAIN;
    size_t plen = (size_t)buf[2] << 8 | buf[3];
    if (plen > FRAME_PAYLOAD_MAX) {
        why = "payload longer than 65507 bytes";
        goto invalid;
    }
    if (len < FRAME_HDR_LEN)
        return PARSE_AGAIN;
    uint32_t flow =
        (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7];
    if (flow == 0) {
        why = "flow id 0";
        goto invalid;
    }
    if (len - FRAME_HDR_LEN < plen)
        return PARSE_AGAIN;
    f->flow = flow;
    f->payload = buf + FRAME_HDR_LEN;
    f->len = plen;
    *frame_len = FRAME_HDR_LEN + plen;
    return PARSE_OK;

invalid:
    if (err != NULL)
        *err = why;
    return PARSE_INVALID;
}

size_t
frame_encode_header(uint8_t *out, size_t cap, uint32_t flow, size_t payload_len)
{
    if (cap < FRAME_HDR_LEN || flow == 0 || payload_len > FRAME_PAYLOAD_MAX)
        return 0;
    out[0] = FRAME_MAGIC;
    out[1] = FRAME_TYPE_DATA;
    out[2] = (uint8_t)(payload_len >> 8);
    out[3] = (uint8_t)payload_len;
    out[4] = (uint8_t)(flow >> 24);
    out[5] = (uint8_t)(flow >> 16);
    out[6] = (uint8_t)(flow >> 8);
    out[7] = (uint8_t)flow;
    return FRAME_HDR_LEN;
}

size_t
frame_encode(uint8_t *out, size_t cap, uint32_t flow, const void *payload, size_t len)
{
    if (cap < FRAME_HDR_LEN || len > cap - FRAME_HDR_LEN ||
        frame_encode_header(out, cap, flow, len) == 0)
        return 0;
    if (len > 0)
        memcpy(out + FRAME_HDR_LEN, payload, len);
    return FRAME_HDR_LEN + len;
}
