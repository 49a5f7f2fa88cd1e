/* process.c - see process.h. */
#include "cli/process.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "build_info.h"
#include "commit.h"

const char process_version[] = AIRLOCK_VERSION;
const char process_commit[] = AIRLOCK_COMMIT;
const char process_build_date[] = AIRLOCK_BUILD_DATE;

/* The fields of /proc/self/stat that the metrics need. */
struct proc_stat {
    unsigned long long utime, stime, starttime; /* clock ticks */
    unsigned long long vsize;                   /* bytes */
    long long rss;                              /* pages */
};

/* Reads /proc/self/stat. Returns 0 or -1. */
static int
read_stat(struct proc_stat *ps)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    size_t n;

    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name (field 2) may hold spaces and ')': fields are
     * counted from the last ')' on, which is followed by field 3 */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    int got = sscanf(p + 1,
                     " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                     "%*d %*d %llu %llu %lld",
                     &ps->utime, &ps->stime, &ps->starttime, &ps->vsize, &ps->rss);
    return got == 5 ? 0 : -1;
}

/* The boot time in seconds since the epoch (btime of /proc/stat), or 0. */
static unsigned long long
boot_time(void)
{
    char line[256];
    unsigned long long bt = 0;
    FILE *f = fopen("/proc/stat", "re");

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "btime %llu", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

/* Open file descriptors of the process, or -1. */
static long
open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    long n = 0;

    if (d == NULL)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own */
}

void
process_render(struct strbuf *out)
{
    struct proc_stat ps;
    struct rlimit rl;
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE), fds = open_fds();
    unsigned long long bt = boot_time();

    strbuf_printf(out,
                  "# HELP airlock_build_info The build of this airlock: version and commit.\n"
                  "# TYPE airlock_build_info gauge\n"
                  "airlock_build_info{version=\"%s\",commit=\"%s\"} 1\n",
                  process_version, process_commit);
    if (read_stat(&ps) == 0 && ticks > 0 && page > 0) {
        strbuf_printf(out,
                      "# HELP process_cpu_seconds_total Total user and system CPU time spent in "
                      "seconds.\n# TYPE process_cpu_seconds_total counter\n"
                      "process_cpu_seconds_total %.2f\n"
                      "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                      "# TYPE process_resident_memory_bytes gauge\n"
                      "process_resident_memory_bytes %lld\n"
                      "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                      "# TYPE process_virtual_memory_bytes gauge\n"
                      "process_virtual_memory_bytes %llu\n",
                      (double)(ps.utime + ps.stime) / (double)ticks, ps.rss * (long long)page,
                      ps.vsize);
        if (bt > 0)
            strbuf_printf(out,
                          "# HELP process_start_time_seconds Start time of the process since "
                          "unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\n"
                          "process_start_time_seconds %.2f\n",
                          (double)bt + (double)ps.starttime / (double)ticks);
    }
    if (fds >= 0)
        strbuf_printf(out,
                      "# HELP process_open_fds Number of open file descriptors.\n"
                      "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n",
                      fds);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        strbuf_printf(out,
                      "# HELP process_max_fds Maximum number of open file descriptors.\n"
                      "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
                      (unsigned long long)rl.rlim_cur);
}
