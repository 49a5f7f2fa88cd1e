/* fuzz_frame.c - libFuzzer harness for the datagram frame parser and encoder.
 *
 * Reads the input as a stream of frames, the way a relay does. Each frame
 * that parses must encode back to the same bytes and parse the same without
 * its last byte as AGAIN; the stream must end in AGAIN (a valid prefix) or
 * INVALID with a message. abort() on any disagreement. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/frame.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t enc[FRAME_MAX_LEN];
    size_t off = 0;

    for (;;) {
        struct frame f, g;
        size_t flen = 0, glen = 0;
        const char *err = NULL;
        enum parse_result r = frame_parse(data + off, size - off, &f, &flen, &err);

        if (r == PARSE_INVALID) {
            check(err != NULL && size - off >= 1);
            return 0;
        }
        if (r == PARSE_AGAIN) {
            check(size - off < FRAME_MAX_LEN);
            return 0;
        }
        check(flen == FRAME_HDR_LEN + f.len && flen <= size - off && f.flow != 0);
        check(f.payload == data + off + FRAME_HDR_LEN && f.len <= FRAME_PAYLOAD_MAX);
        check(frame_encode(enc, sizeof(enc), f.flow, f.payload, f.len) == flen);
        check(memcmp(enc, data + off, flen) == 0);
        check(frame_parse(data + off, flen - 1, &g, &glen, &err) == PARSE_AGAIN);
        off += flen;
    }
}
