/* endpoint.h - the one endpoint syntax used everywhere (DESIGN.md).
 *
 *   tcp:HOST:PORT      HOST is an IPv4 literal, [IPv6] literal or a name
 *   udp:HOST:PORT      same forms as tcp
 *   unix:/path         a filesystem path; unix:@name is the abstract namespace
 *   vsock:CID:PORT     CID a number or "any" (listeners only; checked by callers)
 *   hvsock:/path:PORT  Firecracker / Cloud Hypervisor hybrid vsock: the unix
 *                      socket of the device and the vsock port behind it
 *
 * Parsing is pure: no syscalls, no allocation. */
#ifndef AIRLOCK_NET_ENDPOINT_H
#define AIRLOCK_NET_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/parse.h"

enum ep_kind { EP_TCP, EP_UDP, EP_UNIX, EP_VSOCK, EP_HVSOCK };

#define EP_CID_ANY UINT32_MAX /* same value as VMADDR_CID_ANY */
#define EP_HOST_MAX 254       /* longest DNS name, plus NUL */
#define EP_PATH_MAX 108       /* sizeof(sun_path), including NUL */
#define ENDPOINT_TEXT_MAX 280 /* endpoint_format() of any endpoint, including NUL */
#define EP_ID_MAX 64          /* a user or group name or number, including NUL */

/* What a setting that takes an endpoint expects, in messages. */
#define EP_FORMS "tcp:HOST:PORT, udp:HOST:PORT, unix:/path, vsock:CID:PORT, hvsock:/path:PORT"
#define EP_EXPECT "expected an endpoint (" EP_FORMS ")"
#define EP_EXPECT_STREAM "expected a stream endpoint (tcp, unix, vsock, hvsock), not udp"
#define EP_EXPECT_CID "expected the CID to connect to; vsock:any is for listeners"

/* Who may connect to the socket file of a unix or hvsock listener (not part
 * of the endpoint text: the config sets it; transport_listen() applies it).
 * Zeroed by endpoint_parse(): the listener's defaults. */
struct ep_perm {
    unsigned mode;         /* permission bits, 0001-0777; 0: the listener's default */
    char owner[EP_ID_MAX]; /* user name or uid; "": airlock's own */
    char group[EP_ID_MAX]; /* group name or gid; "": airlock's own */
};

struct endpoint {
    enum ep_kind kind;
    char host[EP_HOST_MAX]; /* tcp, udp: name or literal, without brackets */
    char path[EP_PATH_MAX]; /* unix, hvsock: path; '@' first means abstract */
    uint32_t cid;           /* vsock: context id, EP_CID_ANY for "any" */
    uint32_t port;          /* tcp, udp: 1-65535; vsock, hvsock: 0-4294967294 */
    struct ep_perm perm;    /* listeners with a socket file only */
    bool nofollow;          /* unix, hvsock targets: the path is in a pool instance's
                               directory, so no symbolic link on it is followed (the
                               instance could plant one); see dial_start() */
    bool reserved_port;     /* tcp, vsock targets: connect from a port below 1024,
                               which only a privileged process may bind, so that the
                               peer can tell airlock from other processes of its host
                               (the log forwarder: docs/observability.md) */
};

/* Parses the NUL-terminated string s into *ep. Returns PARSE_OK, or
 * PARSE_INVALID with *err set to a static message naming what was
 * expected. *ep is fully written on success and unspecified otherwise. */
enum parse_result endpoint_parse(const char *s, struct endpoint *ep, const char **err);

/* Writes the canonical text form of ep into buf (always NUL-terminated when
 * len > 0). Returns the length the full text needs, like snprintf. */
size_t endpoint_format(const struct endpoint *ep, char *buf, size_t len);

/* Returns NULL when ep->perm may apply to ep (nothing set, or a listener
 * with a socket file), else a static message saying why not. */
const char *endpoint_perm_check(const struct endpoint *ep);

/* Returns 1 when a and b name the same endpoint (perm aside), 0 otherwise. */
int endpoint_equal(const struct endpoint *a, const struct endpoint *b);

/* Returns true when a and b are the same settings: the same endpoint and
 * the same perm and nofollow (strings compared by their text, whatever
 * follows their NUL). For a reload's "is this unchanged". */
bool endpoint_conf_equal(const struct endpoint *a, const struct endpoint *b);

#endif
