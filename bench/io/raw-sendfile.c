/*
 * Kernel baseline for bench/io/sendfile.ts, without Node: sends a page-cached file to a loopback
 * socket with blocking sendfile(2), pread + write (256 KiB), or write(2) from 8 MiB read-only
 * mappings of the file (the addon's `sendmapped`), four rounds, and prints GB/s and the sender's
 * CPU seconds per GB (a forked child drains the socket).
 *
 *   cc -O2 -o raw-sendfile bench/io/raw-sendfile.c
 *   ./raw-sendfile FILE BYTES MODE [SNDBUF [CONGESTION]]
 *     MODE: 0 = sendfile, 1 = pread + write, 2 = mmap + write
 *     SNDBUF: SO_SNDBUF of the sending socket (0: autotuned)
 *     CONGESTION: TCP congestion control of the sending socket, e.g. reno ('-': the system's)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loopback-pair.h"

#define COPY_CHUNK (256 * 1024)
#define MAP_WINDOW (8L * 1024 * 1024)
#define ROUNDS 4

static double cpu_s(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

static int send_round(int mode, int sock, int fd, long size, char *buf) {
  long sent = 0;
  off_t off = 0;
  while (sent < size) {
    if (mode == 0) {
      ssize_t n = sendfile(sock, fd, &off, size - sent);
      if (n <= 0) return -1;
      sent += n;
      continue;
    }
    if (mode == 2) {
      long window = size - sent < MAP_WINDOW ? size - sent : MAP_WINDOW;
      char *m = mmap(NULL, window, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, sent);
      if (m == MAP_FAILED) return -1;
      int failed = write_all(sock, m, window);
      munmap(m, window);
      if (failed) return -1;
      sent += window;
      continue;
    }
    ssize_t n = pread(fd, buf, COPY_CHUNK, sent);
    if (n <= 0 || write_all(sock, buf, n) != 0) return -1;
    sent += n;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s FILE BYTES MODE [SNDBUF]\n", argv[0]);
    return 2;
  }
  long size = atol(argv[2]);
  int mode = atoi(argv[3]);
  int sock = loopback_to_drain();
  if (sock < 0) return 1;
  int sndbuf = argc > 4 ? atoi(argv[4]) : 0;
  if (sndbuf > 0 && setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) != 0) {
    perror("SO_SNDBUF");
    return 1;
  }
  const char *congestion = argc > 5 ? argv[5] : "-";
  if (strcmp(congestion, "-") != 0 &&
      setsockopt(sock, IPPROTO_TCP, TCP_CONGESTION, congestion, strlen(congestion)) != 0) {
    perror("TCP_CONGESTION");
    return 1;
  }
  int fd = open(argv[1], O_RDONLY);
  char *buf = malloc(COPY_CHUNK);
  if (fd < 0 || buf == NULL) return 1;
  for (int r = 0; r < ROUNDS; r++) {
    double t = now_s(), c = cpu_s();
    if (send_round(mode, sock, fd, size, buf) != 0) {
      perror("send");
      return 1;
    }
    double dt = now_s() - t;
    const char *name = mode == 0 ? "sendfile" : mode == 1 ? "copy" : "mapped";
    printf("%s %.2f GB/s %.3f CPU s/GB\n", name, size / dt / 1e9,
           (cpu_s() - c) / (size / 1e9));
  }
  close(sock);
  wait(NULL);
  return 0;
}
