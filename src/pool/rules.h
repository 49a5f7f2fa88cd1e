/* rules.h - a pool's event rules: POSIX extended regexes on an instance's
 * output lines that map a line to ready, login (the first capture group is
 * the user) or logout. */
#ifndef AIRLOCK_POOL_RULES_H
#define AIRLOCK_POOL_RULES_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "pool/conf.h"

enum rule_event {
    RULE_NONE,      /* the line matches no rule */
    RULE_READY,     /* the instance is ready for a user */
    RULE_LOGIN,     /* a user logged in; the user is handed back */
    RULE_BAD_LOGIN, /* the login rule matched, but the user is not a valid key */
    RULE_LOGOUT,    /* the user logged out */
};

struct rules {
    regex_t ready, login, logout;
    bool has_logout;
    bool compiled;
};

/* Compiles pc's events into *r. Returns 0, or -EINVAL (a rule does not
 * compile; config_parse() refuses those) with *r owning nothing. Release
 * with rules_free(). */
int rules_compile(struct rules *r, const struct pool_conf *pc);

/* Frees what r holds; safe to call twice. */
void rules_free(struct rules *r);

/* Matches the NUL-terminated line against login, logout, then ready. With
 * RULE_LOGIN the user (1 to userlen - 1 bytes of A-Z a-z 0-9 _ . @ -, not
 * starting with - or .) is copied into user. */
enum rule_event rules_match(const struct rules *r, const char *line, char *user, size_t userlen);

#endif
