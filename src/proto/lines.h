/* lines.h - splitting a byte stream into lines of bounded length.
 *
 * A resumable splitter for log streams: bytes may arrive in any pieces, a
 * line ends at '\n', and a line longer than the limit is cut: its first
 * `cap` bytes come out as one line marked cut, the rest up to its newline is
 * discarded (so a never-ending line costs no memory beyond `cap`). Every
 * byte value other than '\n' is line content, binary included: there is no
 * invalid input. Pure: no syscalls, no allocation; the caller owns the
 * storage for the one partial line. */
#ifndef AIRLOCK_PROTO_LINES_H
#define AIRLOCK_PROTO_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/parse.h"

enum line_state {
    LINE_ST_TEXT, /* inside a line (or between lines) */
    LINE_ST_SKIP, /* a cut line: discarding up to and including its '\n' */
};

struct line_split {
    uint8_t *buf; /* caller's storage of cap bytes: the partial line */
    size_t cap;   /* longest line kept, newline excluded; at least 1 */
    size_t len;   /* bytes of the partial line in buf */
    enum line_state state;
};

/* One line handed back: a slice of the caller's input or of ls->buf, valid
 * until the next call on the splitter or until the input changes. */
struct line {
    const uint8_t *data;
    size_t len; /* newline excluded; at most cap */
    bool cut;   /* the line was longer than cap: these are its first cap bytes */
};

/* Prepares ls to split with buf (cap bytes, cap > 0) as the partial line's
 * storage. ls does not own buf. */
void line_split_init(struct line_split *ls, uint8_t *buf, size_t cap);

/* Consumes in[0..len) up to the end of the next line. Returns PARSE_OK with
 * *out set and *used the bytes taken (the newline included); or PARSE_AGAIN
 * with all len bytes taken (*used = len) and the partial line kept in ls.
 * Never PARSE_INVALID. A line longer than cap is returned (cut) as soon as
 * its (cap+1)th byte arrives. */
enum parse_result line_next(struct line_split *ls, const uint8_t *in, size_t len, size_t *used,
                            struct line *out);

/* At the end of a stream: returns PARSE_OK with the partial line (no
 * newline arrived) in *out and resets ls, or PARSE_AGAIN when there is
 * none. */
enum parse_result line_flush(struct line_split *ls, struct line *out);

/* A line that others wrote, to be read as one: with each control byte
 * (C0 but TAB, and DEL), each byte of no valid UTF-8 sequence, and each
 * byte of a C1 control, U+2028, U+2029 or a bidi control written as \xHH,
 * so that where the file is read (a terminal, a reader that also splits on
 * CR, or on Unicode's line breaks) it never shows as two lines, or as one
 * that begins otherwise. Returns in itself when it has none;
 * else the escaped text in out (max bytes, at least 4), its end cut (and
 * l->cut set) when it does not fit. */
struct line line_escape(const struct line *l, uint8_t *out, size_t max);

#endif
