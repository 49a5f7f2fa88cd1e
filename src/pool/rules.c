/* rules.c - see rules.h. */
#include "pool/rules.h"

#include <errno.h>
#include <string.h>

#include "core/units.h"

int
rules_compile(struct rules *r, const struct pool_conf *pc)
{
    memset(r, 0, sizeof(*r));
    if (regcomp(&r->ready, pc->ready, REG_EXTENDED | REG_NOSUB) != 0)
        return -EINVAL;
    if (regcomp(&r->login, pc->login, REG_EXTENDED) != 0) {
        regfree(&r->ready);
        return -EINVAL;
    }
    if (pc->logout[0] != '\0') {
        if (regcomp(&r->logout, pc->logout, REG_EXTENDED | REG_NOSUB) != 0) {
            regfree(&r->ready);
            regfree(&r->login);
            return -EINVAL;
        }
        r->has_logout = true;
    }
    r->compiled = true;
    return 0;
}

void
rules_free(struct rules *r)
{
    if (!r->compiled)
        return;
    regfree(&r->ready);
    regfree(&r->login);
    if (r->has_logout)
        regfree(&r->logout);
    r->compiled = false;
    r->has_logout = false;
}

enum rule_event
rules_match(const struct rules *r, const char *line, char *user, size_t userlen)
{
    regmatch_t m[2];

    if (regexec(&r->login, line, 2, m, 0) == 0) {
        if (m[1].rm_so < 0)
            return RULE_BAD_LOGIN;
        size_t len = (size_t)(m[1].rm_eo - m[1].rm_so);
        const char *u = line + m[1].rm_so;
        if (len >= userlen)
            return RULE_BAD_LOGIN;
        memcpy(user, u, len);
        user[len] = '\0';
        return units_key(user) == 0 ? RULE_LOGIN : RULE_BAD_LOGIN;
    }
    if (r->has_logout && regexec(&r->logout, line, 0, NULL, 0) == 0)
        return RULE_LOGOUT;
    if (regexec(&r->ready, line, 0, NULL, 0) == 0)
        return RULE_READY;
    return RULE_NONE;
}
