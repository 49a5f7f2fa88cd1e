/* http_trickle.c - sends a file to 127.0.0.1:PORT one byte per write
 * (TCP_NODELAY, a short pause between bytes so that each tends to arrive
 * in a segment, and a read, of its own), then prints what comes back until
 * the peer closes. For the field proxy's "bodies split at every byte"
 * test; the unit test of proto/http_msg.c feeds every split exactly.
 *
 *   http_trickle PORT FILE */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct timespec gap = {0, 200 * 1000};
    int one = 1, c, fd = socket(AF_INET, SOCK_STREAM, 0);
    char buf[65536];
    FILE *in;
    ssize_t n;

    if (argc != 3 || (in = fopen(argv[2], "rb")) == NULL) {
        fprintf(stderr, "usage: http_trickle PORT FILE\n");
        return 2;
    }
    sa.sin_port = htons((uint16_t)atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("connect");
        return 1;
    }
    while ((c = fgetc(in)) != EOF) {
        unsigned char b = (unsigned char)c;
        if (send(fd, &b, 1, MSG_NOSIGNAL) != 1) {
            perror("send");
            return 1;
        }
        nanosleep(&gap, NULL);
    }
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    return 0;
}
