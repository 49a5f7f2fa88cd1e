/* notify.c - see notify.h. */
#include "cli/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* the manager's address, set once by notify_init() on the main thread */
static struct sockaddr_un notify_addr;
static socklen_t notify_len;

int
notify_init(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    size_t n;

    notify_len = 0;
    if (path == NULL)
        return 0;
    n = strlen(path);
    /* a relative path or an empty name is not an address a manager gives */
    if (n < 2 || n >= sizeof(notify_addr.sun_path) || (path[0] != '/' && path[0] != '@')) {
        unsetenv("NOTIFY_SOCKET");
        return -EINVAL;
    }
    memset(&notify_addr, 0, sizeof(notify_addr));
    notify_addr.sun_family = AF_UNIX;
    memcpy(notify_addr.sun_path, path, n);
    if (path[0] == '@')
        notify_addr.sun_path[0] = '\0';
    notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
    unsetenv("NOTIFY_SOCKET");
    return 0;
}

int
notify_send(const char *state)
{
    int fd, rc = 0;

    if (notify_len == 0)
        return 0;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&notify_addr,
               notify_len) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

int
notify_reloading(void)
{
    struct timespec ts;
    char msg[64];

    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    return notify_send(msg);
}
