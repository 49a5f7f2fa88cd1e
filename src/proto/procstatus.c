/* procstatus.c - see procstatus.h. */
#include "proto/procstatus.h"

#include <string.h>

/* The value of line (len bytes, no newline) after "key:", with the blanks
 * before it skipped, or NULL when line is not key's. */
static const char *
field(const char *line, size_t len, const char *key, size_t *vlen)
{
    size_t kl = strlen(key), i;

    if (len <= kl || memcmp(line, key, kl) != 0 || line[kl] != ':')
        return NULL;
    for (i = kl + 1; i < len && (line[i] == '\t' || line[i] == ' '); i++)
        ;
    *vlen = len - i;
    return line + i;
}

/* n numbers apart by blanks, the whole of v (vlen bytes), into out.
 * Returns whether they were. */
static bool
numbers(const char *v, size_t vlen, unsigned long *out, size_t n)
{
    size_t i = 0;

    for (size_t k = 0; k < n; k++) {
        unsigned long x = 0;
        size_t start;
        while (i < vlen && (v[i] == '\t' || v[i] == ' '))
            i++;
        for (start = i; i < vlen && v[i] >= '0' && v[i] <= '9'; i++) {
            if (x > (PROCSTATUS_UNSET - 1 - (unsigned long)(v[i] - '0')) / 10)
                return false;
            x = x * 10 + (unsigned long)(v[i] - '0');
        }
        if (i == start)
            return false;
        out[k] = x;
    }
    while (i < vlen && (v[i] == '\t' || v[i] == ' '))
        i++;
    return i == vlen;
}

enum parse_result
procstatus_parse(const char *buf, size_t len, struct procstatus *st, const char **err)
{
    size_t off = 0, vlen;
    const char *v;

    st->state = 0;
    st->threads = PROCSTATUS_UNSET;
    for (size_t k = 0; k < 4; k++)
        st->uid[k] = PROCSTATUS_UNSET;
    while (off < len) {
        const char *line = buf + off, *nl = memchr(line, '\n', len - off);
        if (nl == NULL)
            break; /* cut: not a line yet */
        size_t ll = (size_t)(nl - line);
        off += ll + 1;
        if ((v = field(line, ll, "State", &vlen)) != NULL) {
            if (vlen == 0 || v[0] < 'A' || (v[0] > 'Z' && v[0] < 'a') || v[0] > 'z' ||
                (vlen > 1 && v[1] != ' '))
                return parse_verdict(err, "State: not a state letter");
            st->state = v[0];
        } else if ((v = field(line, ll, "Uid", &vlen)) != NULL) {
            if (!numbers(v, vlen, st->uid, 4))
                return parse_verdict(err, "Uid: not four ids");
        } else if ((v = field(line, ll, "Threads", &vlen)) != NULL) {
            if (!numbers(v, vlen, &st->threads, 1))
                return parse_verdict(err, "Threads: not a count");
        }
    }
    if (st->state == 0 || st->uid[0] == PROCSTATUS_UNSET || st->threads == PROCSTATUS_UNSET)
        return PARSE_AGAIN;
    return parse_verdict(err, NULL);
}

bool
procstatus_alive(const struct procstatus *st)
{
    if (st->state == 'X')
        return false;
    return st->state != 'Z' || (st->threads != PROCSTATUS_UNSET && st->threads > 1);
}

bool
procstatus_has_uid(const struct procstatus *st, unsigned long uid)
{
    return uid != PROCSTATUS_UNSET && (st->uid[0] == uid || st->uid[2] == uid);
}
