/* redis.c - the redis backend (being written). */
#include <errno.h>

#include "core/log.h"
#include "dir/backend.h"

int
dir_redis_open(struct dir *d)
{
    (void)d;
    log_warnx("directory: the redis backend is not built yet");
    return -EPROTONOSUPPORT;
}
