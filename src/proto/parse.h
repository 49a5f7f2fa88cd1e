/* parse.h - result codes shared by every resumable parser in src/proto. */
#ifndef AIRLOCK_PROTO_PARSE_H
#define AIRLOCK_PROTO_PARSE_H

#include <stddef.h>

enum parse_result {
    PARSE_OK,      /* a complete, valid item was parsed */
    PARSE_AGAIN,   /* valid so far; more bytes are needed */
    PARSE_INVALID, /* malformed: the caller closes the connection */
};

/* The end of a parser that says why it refused: sets *err (err may be
 * NULL) to msg and returns PARSE_OK when msg is NULL, else PARSE_INVALID. */
static inline enum parse_result
parse_verdict(const char **err, const char *msg)
{
    if (err != NULL)
        *err = msg;
    return msg == NULL ? PARSE_OK : PARSE_INVALID;
}

#endif
