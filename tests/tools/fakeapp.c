/* fakeapp.c - the test program of the pool tests (tests/integration/
 * t_pool_*.sh): an instance that speaks the event protocol the way
 * apps/smartgrid does. See usage() for its options and commands. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/keyctl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: fakeapp --port PORT [--ready-after MS] [--no-ready] [--state-wait MS]\n"
    "               [--ignore-term]\n"
    "Listens on 127.0.0.1:PORT, prints WAITING_LOGIN when ready and then\n"
    "answers one line command per line, one client at a time:\n"
    "  login USER   prints \"LOGIN USER\", waits (--state-wait, 5000 ms) for\n"
    "               ./USER.db (the provisioned state) and answers \"OK <its first\n"
    "               line>\" or \"NOSTATE\"\n"
    "  save TEXT    writes TEXT into ./USER.db (the state the deprovision hook\n"
    "               stores back); answers OK\n"
    "  logout       prints LOGOUT, answers BYE and exits 0\n"
    "  crash        abort()\n"
    "  hang         stops answering and never exits by itself\n"
    "  fds          answers the targets of its open fds, space separated\n"
    "  cwd          answers its working directory and its mode (octal)\n"
    "  pid          answers its pid and process group\n"
    "  flood N      prints N lines of 10000 bytes each to stdout\n"
    "  link TARGET  makes the symlink ./escape -> TARGET (the wipe must not follow it)\n"
    "  child        starts a child that sleeps (in its process group); answers its pid\n"
    "The attacker's commands (an instance taken over by its user):\n"
    "  id           answers its uid and gid\n"
    "  read PATH    answers \"OK <first line of PATH>\" or \"ERR <why>\"\n"
    "  write PATH TEXT  writes TEXT into PATH (/tmp/x, /dev/shm/x); answers OK\n"
    "               or \"ERR <why>\"\n"
    "  shm [UID]    makes a SysV shared memory segment, given to UID if named (its\n"
    "               creator stays this uid); answers \"OK <id>\"\n"
    "  sem, msg     makes a SysV semaphore set, message queue; answers \"OK <id>\"\n"
    "  key NAME TEXT  adds a key to the uid's user keyring; answers OK\n"
    "  keys         answers \"OK <n>\": the keys in the uid's user keyring\n"
    "  keylock      takes away its own right to change its user keyring; answers OK\n"
    "  mq NAME      makes a POSIX message queue /NAME; answers OK\n"
    "  open PATH    opens PATH for reading: answers OK or \"ERR <why>\" (/proc/PID/mem)\n"
    "  signal PID   kill(PID, 0): answers OK or \"ERR <why>\"\n"
    "  daemon       double fork and setsid(): a process outside its group and\n"
    "               session that sleeps; answers its pid\n"
    "  hopper       a daemon that forks anew and exits every few ms (its pid\n"
    "               never stays the same); answers OK\n"
    "  forks        a daemon of which every process forks for ever (as far as\n"
    "               the limits let it: a fork that fails is tried again; no zombies:\n"
    "               a killed one's place is free at once; on CPU 0 at nice 19);\n"
    "               answers OK\n"
    "  files N      makes N empty files in its directory; answers OK\n"
    "  alloc MIB    allocates MIB mebibytes in its own process and writes every page;\n"
    "               answers OK once done (a memory limit kills it first)\n"
    "  procs N      forks N children that sleep (in its process group); answers\n"
    "               \"OK <how many it could fork>\"\n"
    "  symlink NAME TARGET  replaces ./NAME with a symlink to TARGET; answers OK\n"
    "  fifo NAME    replaces ./NAME with a named pipe; answers OK\n"
    "  hardlink NAME TARGET  replaces ./NAME with a hard link to TARGET; answers OK\n"
    "  mkdir NAME   replaces ./NAME with an empty directory; answers OK\n"
    "  sh CMD       runs CMD with /bin/sh; answers \"OK <its first line of output>\"\n"
    "               or \"ERR <why>\"\n"
    "  plant PREFIX TARGET  symlinks PREFIX<pid> -> TARGET for every pid the next\n"
    "               processes may get (a hook's temporary name); answers OK <count>\n"
    "--ignore-term: SIGTERM is ignored (stopping needs SIGKILL)\n";

static char user[256];

/* Answers "OK <the first line of f>" and closes f with close_f, after
 * reading the rest (a command's output: it runs to its end), or "ERR <why>"
 * when f is NULL. */
static void
answer_line(FILE *c, FILE *f, int (*close_f)(FILE *))
{
    char line[4096], rest[4096];

    if (f == NULL) {
        fprintf(c, "ERR %s\n", strerror(errno));
        return;
    }
    if (fgets(line, sizeof(line), f) == NULL)
        line[0] = '\0';
    line[strcspn(line, "\n")] = '\0';
    while (fgets(rest, sizeof(rest), f) != NULL)
        ;
    close_f(f);
    fprintf(c, "OK %s\n", line);
}

/* Forks twice and leaves the grandchild in a session of its own, without
 * the fds of this process but 0-2: outside the instance's process group,
 * the way a daemon escapes. Returns 0 in the grandchild, else its pid (or
 * -1), written by it into a pipe. */
static pid_t
escape(void)
{
    int p[2];
    pid_t pid = -1;

    if (pipe(p) != 0)
        return -1;
    pid_t first = fork();
    if (first == 0) {
        setsid();
        pid_t second = fork();
        if (second == 0) {
            pid_t self = getpid();
            (void)!write(p[1], &self, sizeof(self));
            for (int fd = 3; fd < 1024; fd++)
                close(fd);
            return 0;
        }
        _exit(0);
    }
    close(p[1]);
    if (first < 0 || read(p[0], &pid, sizeof(pid)) != (ssize_t)sizeof(pid))
        pid = -1;
    close(p[0]);
    if (first > 0)
        waitpid(first, NULL, 0);
    return pid;
}

/* pid_max, and the last pid given out (ns_last_pid). */
static long
proc_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;

    if (f != NULL) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* Symlinks PREFIX<pid> -> target for the next pids: every pid when there
 * are few, else the 20000 after the last one given out. */
static long
plant(const char *prefix, const char *target)
{
    long max = proc_long("/proc/sys/kernel/pid_max"),
         last = proc_long("/proc/sys/kernel/ns_last_pid");
    long n = max <= 65536 ? max : 20000, made = 0;
    char path[PATH_MAX];

    if (max <= 0 || last < 0)
        return -1;
    for (long i = 1; i <= n; i++) {
        long pid = max <= 65536 ? i : (last + i) % max;
        snprintf(path, sizeof(path), "%s%ld", prefix, pid);
        made += symlink(target, path) == 0;
    }
    return made;
}

/* The SysV object cmd asks for ("shm [UID]", "sem", "msg"): its id, or
 * -errno. A segment given to UID keeps this uid as its creator. */
static int
sysv_make(const char *cmd)
{
    struct shmid_ds ds;
    int id;

    if (strcmp(cmd, "sem") == 0)
        id = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
    else if (strcmp(cmd, "msg") == 0)
        id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    else
        id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    if (id < 0)
        return -errno;
    if (strncmp(cmd, "shm ", 4) != 0)
        return id;
    if (shmctl(id, IPC_STAT, &ds) != 0)
        return -errno;
    ds.shm_perm.uid = (uid_t)atol(cmd + 4);
    return shmctl(id, IPC_SET, &ds) == 0 ? id : -errno;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void
answer(FILE *c, const char *cmd, long state_wait)
{
    char path[PATH_MAX + 8], buf[4096], user2[256];

    if (sscanf(cmd, "login %255s", user) == 1) {
        printf("LOGIN %s\n", user);
        fflush(stdout);
        snprintf(path, sizeof(path), "%s.db", user);
        for (long waited = 0; access(path, R_OK) != 0 && waited < state_wait; waited += 20)
            sleep_ms(20);
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            fprintf(c, "NOSTATE\n");
            return;
        }
        if (fgets(buf, sizeof(buf), f) == NULL)
            buf[0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        fclose(f);
        fprintf(c, "OK %s\n", buf);
    } else if (strncmp(cmd, "save ", 5) == 0 && user[0] != '\0') {
        snprintf(path, sizeof(path), "%s.db", user);
        FILE *f = fopen(path, "w");
        if (f == NULL) {
            fprintf(c, "ERR %s\n", strerror(errno));
            return;
        }
        fprintf(f, "%s\n", cmd + 5);
        fclose(f);
        fprintf(c, "OK\n");
    } else if (strcmp(cmd, "logout") == 0) {
        printf("LOGOUT\n");
        fflush(stdout);
        fprintf(c, "BYE\n");
        fflush(c);
        exit(0);
    } else if (strcmp(cmd, "crash") == 0) {
        abort();
    } else if (strcmp(cmd, "hang") == 0) {
        for (;;)
            pause();
    } else if (strcmp(cmd, "fds") == 0) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            char link[PATH_MAX], target[PATH_MAX];
            if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
                continue;
            snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
            ssize_t n = readlink(link, target, sizeof(target) - 1);
            target[n > 0 ? n : 0] = '\0';
            fprintf(c, "%s=%s ", e->d_name, target);
        }
        if (d != NULL)
            closedir(d);
        fprintf(c, "\n");
    } else if (strcmp(cmd, "cwd") == 0) {
        struct stat st;
        if (getcwd(buf, sizeof(buf)) == NULL || stat(".", &st) != 0)
            fprintf(c, "ERR %s\n", strerror(errno));
        else
            fprintf(c, "%s %o\n", buf, (unsigned)(st.st_mode & 07777));
    } else if (strcmp(cmd, "pid") == 0) {
        fprintf(c, "%d %d\n", (int)getpid(), (int)getpgrp());
    } else if (strncmp(cmd, "flood ", 6) == 0) {
        long n = atol(cmd + 6);
        memset(buf, 'x', sizeof(buf));
        for (long i = 0; i < n; i++) {
            for (int k = 0; k < 2; k++)
                fwrite(buf, 1, sizeof(buf), stdout);
            fwrite(buf, 1, 1808, stdout);
            putchar('\n');
        }
        fflush(stdout);
        fprintf(c, "OK\n");
    } else if (strncmp(cmd, "link ", 5) == 0) {
        fprintf(c, symlink(cmd + 5, "escape") == 0 ? "OK\n" : "ERR\n");
    } else if (strcmp(cmd, "id") == 0) {
        fprintf(c, "%u %u\n", (unsigned)getuid(), (unsigned)getgid());
    } else if (strncmp(cmd, "read ", 5) == 0) {
        answer_line(c, fopen(cmd + 5, "r"), fclose);
    } else if (sscanf(cmd, "write %255s", path) == 1 && strchr(cmd + 6, ' ') != NULL) {
        FILE *f = fopen(path, "w");
        if (f == NULL) {
            fprintf(c, "ERR %s\n", strerror(errno));
            return;
        }
        fprintf(f, "%s\n", strchr(cmd + 6, ' ') + 1);
        fprintf(c, fclose(f) == 0 ? "OK\n" : "ERR %s\n", strerror(errno));
    } else if (sscanf(cmd, "key %63s", path) == 1 && strchr(cmd + 4, ' ') != NULL) {
        const char *text = strchr(cmd + 4, ' ') + 1;
        long id = syscall(SYS_add_key, "user", path, text, strlen(text), KEY_SPEC_USER_KEYRING);
        fprintf(c, id >= 0 ? "OK\n" : "ERR %s\n", strerror(errno));
    } else if (strcmp(cmd, "keys") == 0) {
        long len = syscall(SYS_keyctl, KEYCTL_READ, KEY_SPEC_USER_KEYRING, NULL, 0L);
        if (len < 0)
            fprintf(c, "ERR %s\n", strerror(errno));
        else
            fprintf(c, "OK %ld\n", len / 4); /* a key id per 4 bytes */
    } else if (strcmp(cmd, "keylock") == 0) {
        long perm = 0x0b0b0000; /* view, read, search: possessor and user (keyutils.h) */
        long rc = syscall(SYS_keyctl, KEYCTL_SETPERM, KEY_SPEC_USER_KEYRING, perm);
        fprintf(c, rc == 0 ? "OK\n" : "ERR %s\n", strerror(errno));
    } else if (sscanf(cmd, "mq %63s", path) == 1) {
        char name[72];
        snprintf(name, sizeof(name), "/%.64s", path);
        mqd_t q = mq_open(name, O_CREAT | O_RDWR, 0600, NULL);
        fprintf(c, q != (mqd_t)-1 ? "OK\n" : "ERR %s\n", strerror(errno));
        if (q != (mqd_t)-1)
            mq_close(q);
    } else if (strncmp(cmd, "shm", 3) == 0 || strcmp(cmd, "sem") == 0 || strcmp(cmd, "msg") == 0) {
        int id = sysv_make(cmd);
        if (id < 0)
            fprintf(c, "ERR %s\n", strerror(-id));
        else
            fprintf(c, "OK %d\n", id);
    } else if (strncmp(cmd, "sh ", 3) == 0) {
        answer_line(c, popen(cmd + 3, "r"), pclose);
    } else if (strncmp(cmd, "open ", 5) == 0) {
        int fd = open(cmd + 5, O_RDONLY);
        fprintf(c, fd >= 0 ? "OK\n" : "ERR %s\n", strerror(errno));
        if (fd >= 0)
            close(fd);
    } else if (strncmp(cmd, "signal ", 7) == 0) {
        int rc = kill((pid_t)atol(cmd + 7), 0);
        fprintf(c, rc == 0 ? "OK\n" : "ERR %s\n", strerror(errno));
    } else if (strcmp(cmd, "daemon") == 0) {
        pid_t pid = escape();
        if (pid == 0)
            for (;;)
                pause();
        fprintf(c, "%d\n", (int)pid);
    } else if (strcmp(cmd, "hopper") == 0) {
        pid_t pid = escape();
        if (pid == 0)
            for (;;) {
                pid_t next = fork();
                if (next != 0)
                    _exit(0); /* the child goes on under a new pid */
                sleep_ms(5);
            }
        fprintf(c, pid > 0 ? "OK\n" : "ERR\n");
    } else if (strcmp(cmd, "forks") == 0) {
        pid_t pid = escape();
        if (pid == 0) {
            /* one core at the lowest priority: the machine's others stay usable */
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(0, &one);
            (void)!sched_setaffinity(0, sizeof(one), &one);
            (void)!nice(19);
            signal(SIGCHLD, SIG_IGN); /* a killed child frees its place at once */
            for (;;)
                if (fork() < 0)
                    sched_yield(); /* at the limit: once a place is free */
        }
        fprintf(c, pid > 0 ? "OK\n" : "ERR\n");
    } else if (strncmp(cmd, "alloc ", 6) == 0) {
        size_t size = (size_t)atol(cmd + 6) << 20;
        char *mem = malloc(size);
        if (mem == NULL) {
            fprintf(c, "ERR %s\n", strerror(errno));
            return;
        }
        memset(mem, 1, size);
        __asm__ volatile("" : : "r"(mem) : "memory"); /* the pages are written, not elided */
        free(mem);
        fprintf(c, "OK\n");
    } else if (strncmp(cmd, "procs ", 6) == 0) {
        long n = atol(cmd + 6), made = 0;
        for (long i = 0; i < n; i++) {
            pid_t pid = fork();
            if (pid == 0)
                for (;;)
                    pause();
            made += pid > 0;
        }
        fprintf(c, "OK %ld\n", made);
    } else if (strncmp(cmd, "files ", 6) == 0) {
        long n = atol(cmd + 6);
        for (long i = 0; i < n; i++) {
            snprintf(path, sizeof(path), "f%ld", i);
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
            if (fd >= 0)
                close(fd);
        }
        fprintf(c, "OK\n");
    } else if (sscanf(cmd, "symlink %255s %4095s", user2, buf) == 2) {
        unlink(user2);
        fprintf(c, symlink(buf, user2) == 0 ? "OK\n" : "ERR %s\n", strerror(errno));
    } else if (sscanf(cmd, "fifo %255s", user2) == 1) {
        unlink(user2);
        fprintf(c, mkfifo(user2, 0600) == 0 ? "OK\n" : "ERR %s\n", strerror(errno));
    } else if (sscanf(cmd, "hardlink %255s %4095s", user2, buf) == 2) {
        unlink(user2);
        fprintf(c, link(buf, user2) == 0 ? "OK\n" : "ERR %s\n", strerror(errno));
    } else if (sscanf(cmd, "mkdir %255s", user2) == 1) {
        unlink(user2);
        fprintf(c, mkdir(user2, 0700) == 0 ? "OK\n" : "ERR %s\n", strerror(errno));
    } else if (sscanf(cmd, "plant %255s %4095s", user2, buf) == 2) {
        fprintf(c, "OK %ld\n", plant(user2, buf));
    } else if (strcmp(cmd, "child") == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            for (;;)
                pause();
        }
        fprintf(c, "%d\n", (int)pid);
    } else {
        fprintf(c, "ERR unknown command\n");
    }
}

int
main(int argc, char **argv)
{
    long port = 0, ready_after = 0, state_wait = 5000;
    int no_ready = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atol(argv[++i]);
        else if (strcmp(argv[i], "--ready-after") == 0 && i + 1 < argc)
            ready_after = atol(argv[++i]);
        else if (strcmp(argv[i], "--state-wait") == 0 && i + 1 < argc)
            state_wait = atol(argv[++i]);
        else if (strcmp(argv[i], "--no-ready") == 0)
            no_ready = 1;
        else if (strcmp(argv[i], "--ignore-term") == 0)
            signal(SIGTERM, SIG_IGN);
        else {
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (port <= 0 || port > 65535) {
        fputs(usage_text, stderr);
        return 2;
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(ls, 16) != 0) {
        fprintf(stderr, "fakeapp: listen on port %ld: %s\n", port, strerror(errno));
        return 1;
    }
    sleep_ms(ready_after);
    if (!no_ready) {
        printf("WAITING_LOGIN\n");
        fflush(stdout);
    }
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        /* one stream each way: a stdio stream cannot switch from reading
         * to writing on a socket (no seek) */
        int wfd = dup(fd);
        FILE *in = fdopen(fd, "r"), *c = wfd >= 0 ? fdopen(wfd, "w") : NULL;
        char line[4096];
        while (in != NULL && c != NULL && fgets(line, sizeof(line), in) != NULL) {
            line[strcspn(line, "\r\n")] = '\0';
            answer(c, line, state_wait);
            fflush(c);
        }
        if (in != NULL)
            fclose(in);
        if (c != NULL)
            fclose(c);
    }
}
