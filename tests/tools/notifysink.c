/* notifysink.c - the service manager's end of sd_notify for the tests
 * (t_sd_notify.sh): binds a unix datagram socket at PATH (@NAME: in the
 * abstract namespace, as systemd may give it) and prints each
 * datagram received as one line, its newlines shown as '|', until killed.
 * Stdout is flushed after every line so that a test can wait for it. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char buf[4096];
    socklen_t len;
    int fd;

    if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
        fputs("usage: notifysink PATH\n", stderr);
        return 2;
    }
    strcpy(sa.sun_path, argv[1]);
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(argv[1]));
    if (argv[1][0] == '@')
        sa.sun_path[0] = '\0';
    else
        unlink(argv[1]);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) != 0) {
        perror("notifysink");
        return 1;
    }
    printf("listening %s\n", argv[1]);
    fflush(stdout);
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n < 0)
            return 1;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] == '\n')
                buf[i] = '|';
        printf("%.*s\n", (int)n, buf);
        fflush(stdout);
    }
}
