/* parse.h - result codes shared by every resumable parser in src/proto. */
#ifndef AIRLOCK_PROTO_PARSE_H
#define AIRLOCK_PROTO_PARSE_H

enum parse_result {
    PARSE_OK,      /* a complete, valid item was parsed */
    PARSE_AGAIN,   /* valid so far; more bytes are needed */
    PARSE_INVALID, /* malformed: the caller closes the connection */
};

#endif
