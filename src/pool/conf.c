/* conf.c - a pool's settings: defaults and the rules that span keys; see
 * conf.h. */
#include "pool/conf.h"

#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir/dir.h"
#include "net/endpoint.h"
#include "pool/template.h"

#define EXPECT_PORTS "expected a port range FIRST-LAST (20000-20999), ports 1-65535"
#define EXPECT_REGEX "expected a POSIX extended regular expression of 1-511 bytes"
#define REGEX_COUNT_MAX 64      /* the largest {m,n} of an event rule */
#define MAX_IDLE_UNSET UINT_MAX /* not given: min_idle */

void
pool_conf_defaults(struct pool_conf *pc)
{
    memset(pc, 0, sizeof(*pc));
    pc->min_idle = 1;
    pc->max = 10;
    pc->max_idle = MAX_IDLE_UNSET;
    pc->cooldown_ms = 60 * 1000;
    pc->replace_delay_ms = 50;
    pc->replace_after_login_ms = 20;
    pc->start_timeout_ms = 30 * 1000;
    pc->stop_grace_ms = 5 * 1000;
    pc->max_processes = 1024;
    pc->backoff_ms = 250;
    pc->backoff_max_ms = 30 * 1000;
    pc->provision.timeout_ms = 30 * 1000;
    pc->deprovision.timeout_ms = 30 * 1000;
    pc->state.timeout_ms = 30 * 1000;
    pc->state.max_file_size = STATE_FILE_SIZE_DEFAULT;
}

unsigned
pool_conf_ports(const struct pool_conf *pc)
{
    return pc->port_max == 0 ? 0 : pc->port_max - pc->port_min + 1;
}

unsigned
pool_conf_uids(const struct pool_conf *pc)
{
    return pc->uid_max == 0 ? 0 : pc->uid_max - pc->uid_min + 1;
}

bool
pool_conf_cgroups(const struct pool_conf *pc)
{
    return pc->cgroup[0] != '\0' || pc->memory_max > 0 || pc->cpu_max > 0;
}

const char *
pool_conf_cgroup(const struct pool_conf *pc)
{
    return pc->cgroup[0] != '\0' ? pc->cgroup : CGROUP_OWN;
}

/* cgroup: CGROUP_OWN, or an absolute cgroup path whose components are
 * names (no "." or "..", no empty one): it is joined to each hierarchy's
 * mount point, and must stay under it. */
static bool
cgroup_path_ok(const char *s)
{
    if (s[0] == '\0' || strcmp(s, CGROUP_OWN) == 0)
        return true;
    if (s[0] != '/')
        return false;
    for (const char *c = s + 1; *c != '\0';) {
        size_t len = strcspn(c, "/");
        if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.') ||
            strcspn(c, "\n") < len)
            return false;
        c += len;
        c += *c == '/';
    }
    return true;
}

const char *
pool_conf_processes_apply(const struct pool_conf *pc)
{
    /* a shared uid's RLIMIT_NPROC would bound all the instances together */
    return pool_conf_uids(pc) != 0 || pool_conf_cgroups(pc)
               ? NULL
               : "applies with uids (a limit per instance's uid) or a cgroup per instance "
                 "(memory_max, cpu_max or cgroup: its pids.max)";
}

/* Whether path is a name under dir: dir, '/', then components none of
 * which is "" (a double slash), "." or "..". */
static bool
in_dir(const char *path, const char *dir)
{
    size_t len = strlen(dir);

    if (strncmp(path, dir, len) != 0 || path[len] != '/')
        return false;
    for (const char *c = path + len + 1;;) {
        size_t n = strcspn(c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        if (c[n] == '\0')
            return true;
        c += n + 1;
    }
}

/* The endpoint template, expanded for a sample instance, must be a stream
 * endpoint a client can connect to. */
static int
check_endpoint(const struct pool_conf *pc, struct conf_fault *f)
{
    char port[16], inst[DIR_NAME_MAX + 16], dir[CONF_FILE_PATH_MAX + sizeof(inst) + 1];
    char text[CONF_ARG_MAX + sizeof(dir)];
    struct tmpl_vars tv = {.port = port, .dir = dir, .instance = inst};
    struct endpoint ep;
    const char *why = NULL;

    snprintf(port, sizeof(port), "%u", pc->port_min);
    snprintf(inst, sizeof(inst), "%s-1", pc->name);
    snprintf(dir, sizeof(dir), "%s/%s", pc->dir, inst);
    if (tmpl_expand(pc->endpoint, &tv, text, sizeof(text), &why) != 0)
        return conf_fault(f, "endpoint", "%s", why);
    if (endpoint_parse(text, &ep, &why) != PARSE_OK)
        return conf_fault(f, "endpoint", EP_EXPECT ": %s (as expanded: %s)", why ? why : "invalid",
                          text);
    if (ep.kind == EP_UDP)
        return conf_fault(f, "endpoint", EP_EXPECT_STREAM);
    if (ep.kind == EP_VSOCK && ep.cid == EP_CID_ANY)
        return conf_fault(f, "endpoint", EP_EXPECT_CID);
    /* with uids, instances are strangers to each other: a socket's name
     * outside the instance's own directory (an abstract one, a file where
     * the instances may write, as the application itself must) may be
     * taken by another instance first, which then gets the users sent to
     * this one, or keeps it from starting */
    if (pool_conf_uids(pc) != 0 && (ep.kind == EP_UNIX || ep.kind == EP_HVSOCK) &&
        !in_dir(ep.path, dir))
        return conf_fault(f, "endpoint",
                          "expected a socket file in the instance's directory ({dir}/NAME) with "
                          "uids, not %s: another instance could take that name first (as "
                          "expanded: %s)",
                          ep.path[0] == '@' ? "an abstract name" : "a file elsewhere", text);
    return 0;
}

/* The literal text of name before its first {user} (*pre bytes) and after
 * its last (*post bytes); false when it has none. */
static bool
user_ends(const char *name, size_t *pre, size_t *post)
{
    const char *first = strstr(name, "{user}"), *last = first;

    if (first == NULL)
        return false;
    for (const char *next; (next = strstr(last + 1, "{user}")) != NULL;)
        last = next;
    *pre = (size_t)(first - name);
    *post = strlen(last + strlen("{user}"));
    return true;
}

/* Whether state names a and b may expand to one file for two users (one
 * user's a is another's b): for a name with {user} and one without, when
 * the one's ends are the other's; for two with it, when one's text before
 * {user} begins the other's and one's text after it ends the other's (a
 * user "x.pub" has "{user}.key" of "{user}.pub.key" of user "x"). Erring
 * on the side of yes: the user's characters and the text between two
 * {user} are not looked at. */
static bool
names_meet(const char *a, const char *b)
{
    size_t pa, sa, pb, sb, la = strlen(a), lb = strlen(b);
    bool ua = user_ends(a, &pa, &sa), ub = user_ends(b, &pb, &sb);

    if (strcmp(a, b) == 0 || (!ua && !ub))
        return false; /* the same name is one user's; two fixed ones differ */
    if (!ua || !ub) {
        const char *fixed = ua ? b : a, *pat = ua ? a : b;
        size_t lf = ua ? lb : la, lp = ua ? la : lb, pre = ua ? pa : pb, post = ua ? sa : sb;
        return lf > pre + post && strncmp(fixed, pat, pre) == 0 &&
               strcmp(fixed + lf - post, pat + lp - post) == 0;
    }
    size_t pre = pa < pb ? pa : pb, post = sa < sb ? sa : sb;
    return strncmp(a, b, pre) == 0 && strcmp(a + la - post, b + lb - post) == 0;
}

/* The state names of sc must each be one user's: a name stored back holds
 * {user} (else every user's session writes, and every fetch of it reads,
 * one file), and no two names may be one file for two users (a user whose
 * name makes one of them another user's would get that user's file). */
static int
check_state_names(const struct state_conf *sc, struct conf_fault *f)
{
    const struct {
        const char *key;
        const struct argv_conf *names;
    } lists[] = {{"state.fetch_optional", &sc->fetch_optional},
                 {"state.fetch", &sc->fetch},
                 {"state.store_back", &sc->store_back}};
    const size_t n_lists = sizeof(lists) / sizeof(lists[0]);

    for (size_t i = 0; i < sc->store_back.n; i++)
        if (strstr(sc->store_back.arg[i], "{user}") == NULL)
            return conf_fault(f, "state.store_back",
                              "expected names with {user}, not \"%s\": every user's session would "
                              "store it, and every fetch of it read another user's",
                              sc->store_back.arg[i]);
    for (size_t l = 0; l < n_lists; l++)
        for (size_t i = 0; i < lists[l].names->n; i++)
            for (size_t m = 0; m <= l; m++)
                for (size_t j = 0; j < (m == l ? i : lists[m].names->n); j++)
                    if (names_meet(lists[l].names->arg[i], lists[m].names->arg[j]))
                        return conf_fault(
                            f, lists[l].key,
                            "\"%s\" and \"%s\" may name one file for two users (a user whose "
                            "name makes one the other's would get that user's file): expected "
                            "names no two users share",
                            lists[l].names->arg[i], lists[m].names->arg[j]);
    return 0;
}

int
pool_conf_check(struct pool_conf *pc, struct conf_fault *f)
{
    if (strlen(pc->name) > POOL_NAME_MAX)
        return conf_fault(f, "name", "expected at most %d characters (instance names add -N to it)",
                          POOL_NAME_MAX);
    if (pc->max_idle == MAX_IDLE_UNSET)
        pc->max_idle = pc->min_idle;
    if (pc->max == 0)
        return conf_fault(f, "max", "expected at least 1 instance");
    if (pc->min_idle > pc->max)
        return conf_fault(f, "min_idle", "expected at most max (%u)", pc->max);
    if (pc->max_idle < pc->min_idle || pc->max_idle > pc->max)
        return conf_fault(f, "max_idle", "expected from min_idle (%u) to max (%u)", pc->min_idle,
                          pc->max);
    if (pc->start_timeout_ms == 0)
        return conf_fault(f, "start_timeout", "expected a duration of more than 0");
    if (pc->backoff_ms == 0 || pc->backoff_max_ms < pc->backoff_ms)
        return conf_fault(f, pc->backoff_ms == 0 ? "restart_backoff" : "restart_backoff_max",
                          "expected 0 < restart_backoff <= restart_backoff_max");
    unsigned uses = tmpl_uses(pc->endpoint);
    for (size_t w = 0; w < pc->command.n; w++)
        uses |= tmpl_uses(pc->command.arg[w]);
    for (size_t w = 0; w < pc->launcher.n; w++)
        uses |= tmpl_uses(pc->launcher.arg[w]);
    if ((uses & TMPL_PORT) && pool_conf_ports(pc) == 0)
        return conf_fault(f, "ports", "missing: {port} is used; " EXPECT_PORTS);
    if (pool_conf_ports(pc) != 0 && pool_conf_ports(pc) < pc->max)
        return conf_fault(f, "ports", "expected at least max (%u) ports, not %u", pc->max,
                          pool_conf_ports(pc));
    if (pool_conf_uids(pc) != 0 && pc->user[0] != '\0')
        return conf_fault(f, "uids",
                          "expected either user (one shared user) or uids (one uid per "
                          "instance), not both");
    if (pc->group[0] != '\0' && pool_conf_uids(pc) == 0)
        return conf_fault(f, "group", "applies with uids only (the gid of every instance)");
    if (pc->state.store[0] != '\0' &&
        (pc->provision.command.n > 0 || pc->deprovision.command.n > 0))
        return conf_fault(f, "state",
                          "expected either state (built-in provisioning) or the provision and "
                          "deprovision hooks, not both");
    struct state_conf *sc = &pc->state;
    if (sc->max_session_size == 0)
        sc->max_session_size = sc->max_file_size > STATE_SESSION_SIZE_DEFAULT
                                   ? sc->max_file_size
                                   : STATE_SESSION_SIZE_DEFAULT;
    if (sc->store[0] != '\0' && check_state_names(sc, f) != 0)
        return -1;
    if (sc->max_session_size < sc->max_file_size)
        return conf_fault(f, "state.max_session_size",
                          "expected at least max_file_size (%zu bytes): the bound of all the files "
                          "of one session",
                          sc->max_file_size);
    if (!cgroup_path_ok(pc->cgroup))
        return conf_fault(f, "cgroup",
                          "expected \"" CGROUP_OWN "\" or an absolute cgroup path (/airlock, as in "
                          "/proc/self/cgroup) without . or .. components");
    if (pool_conf_uids(pc) != 0 && pool_conf_uids(pc) < pc->max)
        return conf_fault(f, "uids", "expected at least max (%u) uids, not %u", pc->max,
                          pool_conf_uids(pc));
    return check_endpoint(pc, f);
}

/* Skips the bracket expression at s ("[...]", with "[]...]", "[^]...]" and
 * "[:class:]" inside); returns what follows it (s's end when unclosed:
 * regcomp() refuses that). */
static const char *
skip_bracket(const char *s)
{
    const char *p = s + 1;

    if (*p == '^')
        p++;
    if (*p == ']')
        p++;
    for (; *p != '\0' && *p != ']'; p++)
        if (p[0] == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
            const char *end = strchr(p + 2, p[1]);
            while (end != NULL && end[1] != ']')
                end = strchr(end + 1, p[1]);
            if (end == NULL)
                return p + strlen(p);
            p = end + 1;
        }
    return *p == ']' ? p + 1 : p;
}

/* glibc's regcomp() copies the tree of a repeated expression once per
 * repetition, so a repetition of a repetition ("a++", "(a+)*", "(a{9}){9}")
 * and large counts grow its memory exponentially: a 700-byte rule took
 * more than 2 GB. Returns why s is refused, or NULL. Event rules never need
 * them. */
static const char *
regex_costly(const char *s)
{
    bool quant[CONF_REGEX_MAX + 1] = {false}; /* per group depth: holds a repetition */
    size_t depth = 0;
    bool after_quant = false, after_group = false, group_quant = false;

    for (const char *p = s; *p != '\0';) {
        bool is_quant =
            *p == '*' || *p == '+' || *p == '?' || (*p == '{' && p[1] >= '0' && p[1] <= '9');
        if (is_quant) {
            if (after_quant || (after_group && group_quant))
                return "a repetition of a repetition";
            if (*p == '{') {
                char *end;
                unsigned long m = strtoul(p + 1, &end, 10), n = m;
                if (*end == ',' && end[1] >= '0' && end[1] <= '9')
                    n = strtoul(end + 1, &end, 10);
                else if (*end == ',')
                    end++;
                if (m > REGEX_COUNT_MAX || n > REGEX_COUNT_MAX)
                    return "a count above 64";
                p = *end == '}' ? end + 1 : end;
            } else {
                p++;
            }
            quant[depth] = true;
            after_quant = true;
            after_group = false;
            continue;
        }
        after_quant = after_group = false;
        if (*p == '\\' && p[1] != '\0') {
            p += 2;
        } else if (*p == '[') {
            p = skip_bracket(p);
        } else if (*p == '(' && depth < CONF_REGEX_MAX) {
            quant[++depth] = false;
            p++;
        } else if (*p == ')' && depth > 0) {
            group_quant = quant[depth--];
            quant[depth] = quant[depth] || group_quant;
            after_group = true;
            p++;
        } else {
            p++;
        }
    }
    return NULL;
}

int
pool_conf_regex(const char *s, bool group, char *msg, size_t msglen)
{
    regex_t re;
    char why[128];
    const char *costly = NULL;
    int rc;

    if (s[0] == '\0' || strlen(s) >= CONF_REGEX_MAX) {
        snprintf(msg, msglen, EXPECT_REGEX);
        return -1;
    }
    if ((costly = regex_costly(s)) != NULL) {
        snprintf(msg, msglen, EXPECT_REGEX " without %s", costly);
        return -1;
    }
    if ((rc = regcomp(&re, s, REG_EXTENDED | (group ? 0 : REG_NOSUB))) != 0) {
        regerror(rc, &re, why, sizeof(why));
        snprintf(msg, msglen, EXPECT_REGEX ": %s", why);
        return -1;
    }
    size_t n = re.re_nsub;
    regfree(&re);
    if (group && n < 1) {
        snprintf(msg, msglen, "expected a capture group for the user, as in \"^LOGIN (.+)$\"");
        return -1;
    }
    return 0;
}
