/*
 * The loopback TCP ceiling without Node: how fast bytes cross one loopback connection on this
 * machine when neither end does anything else. The parent writes WRITE_BYTES pieces from one
 * buffer in memory (blocking write(2)) to a forked child that drops them (loopback-pair.h).
 * Prints one line per round: "round GB/s". Any broker that receives its produce traffic over
 * loopback is bounded by this, whatever it does with the bytes.
 *
 * The broker bench compiles and runs it beside the produce runs (bench/broker/broker-bench.ts);
 * by hand:
 *
 *   cc -O2 -o loopback-ceiling bench/io/loopback-ceiling.c
 *   ./loopback-ceiling BYTES_PER_ROUND WRITE_BYTES ROUNDS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loopback-pair.h"

#define WRITE_BYTES_MAX (64 << 20)
#define ROUNDS_MAX 100

static int send_bytes(int sock, const char *buf, long write_bytes, long total_bytes) {
  for (long sent = 0; sent < total_bytes; sent += write_bytes) {
    long piece = total_bytes - sent < write_bytes ? total_bytes - sent : write_bytes;
    if (write_all(sock, buf, piece) != 0) return -1;
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
  int sock = loopback_to_drain();
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
