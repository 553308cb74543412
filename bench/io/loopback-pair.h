/*
 * Shared by the C baselines in bench/io: a monotonic clock in seconds, a blocking write of a
 * whole buffer, a connection to a loopback port, and a loopback TCP connection whose far end is
 * a forked child that reads everything with 1 MiB reads and drops it. Functions are
 * `static inline` so that a program using only some of them compiles without unused-function
 * warnings.
 */
#ifndef SLUICE_BENCH_LOOPBACK_PAIR_H
#define SLUICE_BENCH_LOOPBACK_PAIR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_READ_BYTES (1 << 20)

static inline double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

/* Writes all `n` bytes of `b` (blocking socket); -1 on error or a closed peer. */
static inline int write_all(int fd, const char *b, long n) {
  for (long w = 0; w < n;) {
    ssize_t k = write(fd, b + w, n - w);
    if (k <= 0) return -1;
    w += k;
  }
  return 0;
}

/* A connection to 127.0.0.1:port with TCP_NODELAY, or -1. */
static inline int connect_loopback(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) return -1;
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

static inline void drain(struct sockaddr_in addr) {
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(c, (struct sockaddr *)&addr, sizeof addr) != 0) _exit(1);
  char *b = malloc(DRAIN_READ_BYTES);
  if (b == NULL) _exit(1);
  while (read(c, b, DRAIN_READ_BYTES) > 0) {
  }
  _exit(0);
}

/** The sending end of a loopback connection to a draining child, or -1. wait(2) reaps the child. */
static inline int loopback_to_drain(void) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof addr;
  if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(ls, 1) != 0) return -1;
  if (getsockname(ls, (struct sockaddr *)&addr, &len) != 0) return -1;
  if (fork() == 0) drain(addr);
  int sock = accept(ls, 0, 0);
  close(ls);
  return sock;
}

#endif
