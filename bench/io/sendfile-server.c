/*
 * A page-cached file served with sendfile(2) and nothing else, to whatever receiver connects:
 * the fetch benchmark's ceiling for its own consumer. Listens on 127.0.0.1 (any free port),
 * prints "port N", accepts one connection and sends FILE over it from the start, again and again
 * (blocking sendfile), until the receiver closes it.
 *
 * Why beside the loopback limit: the limit's sender writes bytes from memory into the socket just
 * before the receiver copies them out, while sendfile hands the receiver pages of the page cache;
 * with a file larger than the CPU caches, the receiver's copy then reads memory, and costs more
 * per byte. A broker that serves its log with sendfile can reach this, not the limit.
 *
 *   cc -O2 -o sendfile-server bench/io/sendfile-server.c
 *   ./sendfile-server FILE [SNDBUF [CONGESTION]]
 *     SNDBUF: SO_SNDBUF of the sending socket (0: autotuned)
 *     CONGESTION: TCP congestion control of the sending socket, e.g. reno ('-': the system's)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

static int listen_loopback(void) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof addr;
  if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(ls, 1) != 0) return -1;
  if (getsockname(ls, (struct sockaddr *)&addr, &len) != 0) return -1;
  printf("port %d\n", ntohs(addr.sin_port));
  fflush(stdout);
  return ls;
}

static int set_socket(int sock, int sndbuf, const char *congestion) {
  if (sndbuf > 0 && setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) != 0) {
    perror("SO_SNDBUF");
    return -1;
  }
  if (strcmp(congestion, "-") != 0 &&
      setsockopt(sock, IPPROTO_TCP, TCP_CONGESTION, congestion, strlen(congestion)) != 0) {
    perror("TCP_CONGESTION");
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE [SNDBUF [CONGESTION]]\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);  // a closed receiver ends the send with EPIPE instead
  int fd = open(argv[1], O_RDONLY);
  off_t size = fd < 0 ? -1 : lseek(fd, 0, SEEK_END);
  if (size <= 0) {
    perror("open");
    return 1;
  }
  int ls = listen_loopback();
  int sock = ls < 0 ? -1 : accept(ls, NULL, NULL);
  if (sock < 0) {
    perror("listen/accept");
    return 1;
  }
  if (set_socket(sock, argc > 2 ? atoi(argv[2]) : 0, argc > 3 ? argv[3] : "-") != 0) return 1;
  for (;;) {
    off_t at = 0;
    while (at < size) {
      if (sendfile(sock, fd, &at, size - at) <= 0) return 0;  // the receiver closed: done
    }
  }
}
