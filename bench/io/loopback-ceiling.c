/*
 * The loopback TCP ceiling without Node: how fast bytes cross one loopback connection on this
 * machine when neither end does anything else. The parent writes WRITE_BYTES pieces from one
 * buffer in memory (blocking write(2)); a forked child reads them with 1 MiB reads and drops
 * them. Prints one line per round: "round GB/s". Any broker that receives its produce traffic
 * over loopback is bounded by this, whatever it does with the bytes.
 *
 * The broker bench compiles and runs it beside the produce runs (bench/broker/broker-bench.ts);
 * by hand:
 *
 *   cc -O2 -o loopback-ceiling bench/io/loopback-ceiling.c
 *   ./loopback-ceiling BYTES_PER_ROUND WRITE_BYTES ROUNDS
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READ_BYTES (1 << 20)
#define WRITE_BYTES_MAX (64 << 20)
#define ROUNDS_MAX 100

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void drain(struct sockaddr_in addr) {
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(c, (struct sockaddr *)&addr, sizeof addr) != 0) _exit(1);
  char *b = malloc(READ_BYTES);
  if (b == NULL) _exit(1);
  while (read(c, b, READ_BYTES) > 0) {
  }
  _exit(0);
}

static int send_bytes(int sock, const char *buf, long write_bytes, long total_bytes) {
  for (long sent = 0; sent < total_bytes;) {
    long piece = total_bytes - sent < write_bytes ? total_bytes - sent : write_bytes;
    for (long w = 0; w < piece;) {
      ssize_t k = write(sock, buf + w, piece - w);
      if (k <= 0) return -1;
      w += k;
    }
    sent += piece;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s BYTES_PER_ROUND WRITE_BYTES ROUNDS\n", argv[0]);
    return 2;
  }
  long total_bytes = atol(argv[1]);
  long write_bytes = atol(argv[2]);
  int rounds = atoi(argv[3]);
  if (total_bytes <= 0 || write_bytes <= 0 || write_bytes > WRITE_BYTES_MAX || rounds <= 0 ||
      rounds > ROUNDS_MAX) {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof addr;
  if (bind(ls, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(ls, 1) != 0) return 1;
  getsockname(ls, (struct sockaddr *)&addr, &len);
  if (fork() == 0) drain(addr);
  int sock = accept(ls, 0, 0);
  char *buf = malloc(write_bytes);
  if (sock < 0 || buf == NULL) return 1;
  memset(buf, 7, write_bytes);
  for (int r = 0; r < rounds; r++) {
    double t = now_s();
    if (send_bytes(sock, buf, write_bytes, total_bytes) != 0) {
      perror("write");
      return 1;
    }
    printf("%d %.3f\n", r, total_bytes / (now_s() - t) / 1e9);
    fflush(stdout);
  }
  close(sock);
  wait(NULL);
  return 0;
}
