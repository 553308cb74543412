/*
 * The latency floor of this machine without Node, in the shape of the latency bench's relay
 * floor (bench/broker/latency.ts): a producer thread sends 104-byte messages (a 4-byte index,
 * then payload) at RATE per second over loopback to a relay process, which forwards every byte
 * to a consumer thread over a second connection. Latency is receipt time minus send time on one
 * monotonic clock, for the messages sent after WARMUP_S seconds. Prints one line:
 *   "p50 p90 p99 p99.9 max count" (microseconds, then messages counted).
 *
 * The broker bench compiles and runs it beside the Node relay floor (broker-bench.ts latency);
 * by hand:
 *
 *   cc -O2 -pthread -o relay-floor bench/io/relay-floor.c
 *   ./relay-floor RATE SECONDS WARMUP_S
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loopback-pair.h"

#define MESSAGE_BYTES 104
#define RATE_MAX 1000000
#define SECONDS_MAX 600
/* The consumer stops waiting this long after the last send (ms): a lost message is not a hang. */
#define GRACE_MS 2000

static double *sent_us, *received_us;
static long total;
static int rate;
static volatile int producer_done;

static double now_us(void) { return now_s() * 1e6; }

/* The relay process: the first byte of each connection says its role ('P' or 'C'). */
static void relay(int listener) {
  int a = accept(listener, 0, 0), b = accept(listener, 0, 0);
  char ra = 0, rb = 0;
  if (a < 0 || b < 0 || read(a, &ra, 1) != 1 || read(b, &rb, 1) != 1) _exit(1);
  int from = ra == 'P' ? a : b, to = ra == 'P' ? b : a;
  int one = 1;
  setsockopt(to, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char buf[65536];
  for (;;) {
    ssize_t r = read(from, buf, sizeof buf);
    if (r <= 0 || write_all(to, buf, r) != 0) _exit(0);
  }
}

static void *produce(void *arg) {
  int s = *(int *)arg;
  char m[MESSAGE_BYTES];
  memset(m, 7, sizeof m);
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  long interval_ns = 1000000000L / rate;
  for (long i = 0; i < total; i++) {
    long ns = start.tv_nsec + (i + 1) * interval_ns;
    struct timespec at = {start.tv_sec + ns / 1000000000L, ns % 1000000000L};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
    uint32_t index = (uint32_t)i;
    memcpy(m, &index, sizeof index);
    sent_us[i] = now_us();
    if (write_all(s, m, MESSAGE_BYTES) != 0) break;
  }
  producer_done = 1;
  return NULL;
}

static void *consume(void *arg) {
  int s = *(int *)arg;
  struct timeval slice = {0, 100000};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &slice, sizeof slice);
  static char buf[65536];
  int have = 0;
  double give_up_us = 0;
  for (long got = 0; got < total;) {
    if (producer_done && give_up_us == 0) give_up_us = now_us() + GRACE_MS * 1000.0;
    if (give_up_us != 0 && now_us() > give_up_us) break;
    ssize_t r = read(s, buf + have, sizeof buf - have);
    if (r == 0) break;
    if (r < 0) continue; /* the receive timeout: look at the clock again */
    double t = now_us();
    have += (int)r;
    int at = 0;
    for (; at + MESSAGE_BYTES <= have; at += MESSAGE_BYTES, got++) {
      uint32_t index;
      memcpy(&index, buf + at, sizeof index);
      if (index < total) received_us[index] = t;
    }
    memmove(buf, buf + at, have - at);
    have -= at;
  }
  return NULL;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s RATE SECONDS WARMUP_S\n", argv[0]);
    return 2;
  }
  rate = atoi(argv[1]);
  int seconds = atoi(argv[2]), warmup_s = atoi(argv[3]);
  if (rate <= 0 || rate > RATE_MAX || seconds <= 0 || seconds > SECONDS_MAX || warmup_s < 0 ||
      warmup_s >= seconds) {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }
  total = (long)rate * seconds;
  sent_us = calloc(total, sizeof *sent_us);
  received_us = calloc(total, sizeof *received_us);
  double *latency_us = calloc(total, sizeof *latency_us);
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (!sent_us || !received_us || !latency_us || listener < 0 ||
      bind(listener, (struct sockaddr *)&a, sizeof a) != 0 || listen(listener, 2) != 0 ||
      getsockname(listener, (struct sockaddr *)&a, &len) != 0)
    return 1;
  pid_t child = fork();
  if (child == 0) relay(listener);
  int consumer = connect_loopback(ntohs(a.sin_port));
  int producer = connect_loopback(ntohs(a.sin_port));
  if (consumer < 0 || producer < 0 || write_all(consumer, "C", 1) || write_all(producer, "P", 1))
    return 1;
  usleep(20000); /* the relay reads both role bytes before the first message */
  pthread_t pt, ct;
  pthread_create(&ct, NULL, consume, &consumer);
  pthread_create(&pt, NULL, produce, &producer);
  pthread_join(pt, NULL);
  pthread_join(ct, NULL);
  long n = 0;
  double measured_from_us = sent_us[0] + warmup_s * 1e6;
  for (long i = 0; i < total; i++)
    if (sent_us[i] >= measured_from_us && received_us[i] > 0)
      latency_us[n++] = received_us[i] - sent_us[i];
  kill(child, SIGTERM);
  waitpid(child, NULL, 0);
  if (n == 0) return 1;
  qsort(latency_us, n, sizeof *latency_us, by_value);
  printf("%.0f %.0f %.0f %.0f %.0f %ld\n", latency_us[n / 2], latency_us[n * 90 / 100],
         latency_us[n * 99 / 100], latency_us[n * 999 / 1000], latency_us[n - 1], n);
  return 0;
}
