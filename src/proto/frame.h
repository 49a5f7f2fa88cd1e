/* frame.h - datagrams over a stream: the frame that carries one datagram.
 *
 *   0      magic 0xA1            (catches a peer that is not airlock, or a
 *                                 stream that lost its framing)
 *   1      type: 0x01 DATA       (the only type so far; others are invalid)
 *   2..3   payload length, big-endian, 0..65507 (the largest UDP payload)
 *   4..7   flow id, big-endian, not 0 (0 is kept for control frames)
 *   8..    payload
 *
 * The flow id names the UDP client a datagram came from (chosen by the side
 * that listens on udp) so that the reply, sent with the same id, goes back
 * to it. Pure: no syscalls, no allocation. */
#ifndef AIRLOCK_PROTO_FRAME_H
#define AIRLOCK_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "proto/parse.h"

#define FRAME_MAGIC 0xA1
#define FRAME_TYPE_DATA 0x01
#define FRAME_HDR_LEN 8
#define FRAME_PAYLOAD_MAX 65507 /* 65535 - 20 (IPv4) - 8 (UDP) */
#define FRAME_MAX_LEN (FRAME_HDR_LEN + FRAME_PAYLOAD_MAX)

struct frame {
    uint32_t flow;
    const uint8_t *payload; /* slice into the caller's buffer */
    size_t len;
};

/* Parses the frame at the start of buf[0..len). PARSE_OK: a whole frame is
 * there; *f refers into buf and *frame_len is its total length (the next
 * frame starts at buf + *frame_len). PARSE_AGAIN: a valid prefix, more
 * bytes needed (at most FRAME_MAX_LEN in all). PARSE_INVALID: *err (if err
 * is not NULL) names the fault; each header byte is checked as soon as it is
 * present. *f and *frame_len are written only on PARSE_OK. Never reads past
 * buf[len). */
enum parse_result frame_parse(const uint8_t *buf, size_t len, struct frame *f, size_t *frame_len,
                              const char **err);

/* Writes the FRAME_HDR_LEN-byte header of a DATA frame for flow (not 0)
 * carrying payload_len (at most FRAME_PAYLOAD_MAX) bytes into out. Returns
 * FRAME_HDR_LEN, or 0 when cap is too small or an argument is out of range
 * (nothing written then). */
size_t frame_encode_header(uint8_t *out, size_t cap, uint32_t flow, size_t payload_len);

/* Writes a whole DATA frame (header and the len bytes at payload) into out.
 * Returns its length, or 0 as frame_encode_header() does (nothing written). */
size_t frame_encode(uint8_t *out, size_t cap, uint32_t flow, const void *payload, size_t len);

#endif
