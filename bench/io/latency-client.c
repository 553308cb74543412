/*
 * Produce-to-consume latency through a broker, measured by a client without Node: the latency
 * bench's broker mode (bench/broker/latency.ts) in C, so that what it measures is the broker and
 * the machine, not a client runtime's own pauses (a Node client's garbage collector and compiler
 * threads take one of the two cores for milliseconds at a time).
 *
 * Three threads on three connections:
 * - the producer sends one pre-encoded Produce request (one record, acks=1) at RATE per second,
 *   each due at its own time (clock_nanosleep on an absolute deadline); only the correlation id
 *   differs between requests;
 * - an acknowledgement reader reads the Produce responses in order and checks each error code;
 * - the consumer long-polls one pre-encoded Fetch v11 request at a time, with its correlation id
 *   and fetch offset rewritten, and stamps every record in a response with the response's time.
 * The partition must start empty, so record i is at offset i. Latency is receipt time minus the
 * record's intended send time (a late producer counts against the result, as it would delay a
 * real client's records), and also minus its actual send time; both on one monotonic clock, for
 * the records due after WARMUP_S seconds. Prints two lines, from the intended and from the actual
 * send time, each "p50 p90 p99 p99.9 max count" (microseconds, then records counted). Exits 1 on a
 * produce or fetch error, naming it on stderr.
 *
 * The request bytes come from the generated codecs (the broker bench writes them to files), so
 * nothing here encodes a request. By hand:
 *
 *   cc -O2 -pthread -o latency-client bench/io/latency-client.c
 *   ./latency-client PORT RATE SECONDS WARMUP_S PRODUCE_FRAME FETCH_FRAME FETCH_OFFSET_AT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loopback-pair.h"

#define RATE_MAX 100000
#define SECONDS_MAX 600
/* Request frames are small: one record, one partition. */
#define REQUEST_BYTES_MAX 4096
/* The consumer asks for at most 1 MiB; a response frame is never larger than this. */
#define RESPONSE_BYTES_MAX (4 << 20)
/* Where a request frame's correlation id sits: after its size, API key and version. */
#define CORRELATION_ID_AT 8
/* The consumer and the acknowledgement reader stop this long after the last due send (ms). */
#define GRACE_MS 10000
/* Time for the consumer's first long poll to reach the broker before the first send (ms). */
#define START_DELAY_MS 300
/* Record batch header: base offset 8, length 4, ..., records count at 57, 61 bytes in all. */
#define BATCH_HEAD_BYTES 61

static long total;
static int rate;
static double start_us;
static double *intended_us, *sent_us, *received_us;
static char produce_frame[REQUEST_BYTES_MAX], fetch_frame[REQUEST_BYTES_MAX];
static long produce_bytes, fetch_bytes, fetch_offset_at;
static volatile int failed;

static double now_us(void) { return now_s() * 1e6; }

static void fail(const char *what, long detail) {
  if (!failed) fprintf(stderr, "latency-client: %s (%ld)\n", what, detail);
  failed = 1;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static int64_t be64(const unsigned char *p) {
  return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}
static void put32(char *p, uint32_t v) {
  uint32_t n = htonl(v);
  memcpy(p, &n, 4);
}

static int connect_to(int port) {
  int s = connect_loopback(port);
  struct timeval slice = {0, 100000}; /* reads wake every 100 ms to look at the clock */
  if (s >= 0) setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &slice, sizeof slice);
  return s;
}

/*
 * Reads exactly n bytes (0), unless `deadline_us` passes, another thread failed or the peer
 * closes (-1).
 */
static int read_exact(int s, unsigned char *b, long n, double deadline_us) {
  for (long got = 0; got < n;) {
    ssize_t r = read(s, b + got, n - got);
    if (r == 0) return -1;
    if (r < 0 && (failed || now_us() > deadline_us)) return -1;
    if (r > 0) got += r;
  }
  return 0;
}

/* One response frame into `b` (without its size); its length, or -1. */
static long read_frame(int s, unsigned char *b, double deadline_us) {
  unsigned char size[4];
  if (read_exact(s, size, 4, deadline_us) != 0) return -1;
  long n = (long)be32(size);
  if (n < 4 || n > RESPONSE_BYTES_MAX) return fail("response frame size out of range", n), -1;
  return read_exact(s, b, n, deadline_us) == 0 ? n : -1;
}

static void *produce(void *arg) {
  int s = *(int *)arg;
  long interval_ns = 1000000000L / rate;
  long start_ns = (long)(start_us * 1000);
  for (long i = 0; i < total && !failed; i++) {
    long due_ns = start_ns + i * interval_ns;
    struct timespec at = {due_ns / 1000000000L, due_ns % 1000000000L};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
    put32(produce_frame + CORRELATION_ID_AT, (uint32_t)(i + 1));
    double now = now_us();
    intended_us[i] = due_ns / 1000.0;
    sent_us[i] = now;
    if (write_all(s, produce_frame, produce_bytes) != 0) {
      return fail("produce write failed", i), NULL;
    }
  }
  return NULL;
}

/*
 * Produce v8 response to one record on one partition, after the size: correlation id 4, topics 4,
 * name 2+n, partitions 4, index 4, error code 2.
 */
static void *acknowledge(void *arg) {
  int s = *(int *)arg;
  static unsigned char b[RESPONSE_BYTES_MAX];
  double deadline_us = start_us + (total / (double)rate) * 1e6 + GRACE_MS * 1000.0;
  for (long answered = 0; answered < total && !failed; answered++) {
    long n = read_frame(s, b, deadline_us);
    if (n < 0) return fail("produce responses stopped", answered), NULL;
    if ((long)be32(b) != answered + 1) return fail("produce answered out of order", answered), NULL;
    long name = (long)(b[8] << 8 | b[9]);
    if (n < 20 + name) return fail("short produce response", n), NULL;
    int error = (int16_t)(b[18 + name] << 8 | b[19 + name]);
    if (error != 0) return fail("produce failed with error code", error), NULL;
  }
  return NULL;
}

/*
 * The records of a Fetch v11 response, after the size: correlation 4, throttle 4, error 2,
 * session 4, topics 4, name 2+n, partitions 4, index 4, error 2, high watermark 8, last stable 8,
 * log start 8, aborted count 4 (+16 each), preferred read replica 4, records size 4, records.
 * Stamps each whole batch's records with `now`; returns the offset after the last one, or -1.
 */
static long take_records(const unsigned char *b, long n, long offset, double now) {
  if (n < 20) return fail("short fetch response", n), -1;
  long at = 20 + (long)(b[18] << 8 | b[19]);
  if (n < at + 38) return fail("short fetch response", n), -1;
  int error = (int16_t)(b[at + 8] << 8 | b[at + 9]);
  if (error != 0) return fail("fetch failed with error code", error), -1;
  long aborted = (int32_t)be32(b + at + 34);
  at += 38 + (aborted > 0 ? aborted * 16 : 0);
  if (n < at + 8) return fail("short fetch response", n), -1;
  long records = (int32_t)be32(b + at + 4);
  at += 8;
  if (records < 0 || at + records > n) return fail("records past the response", records), -1;
  for (long end = at + records; at + BATCH_HEAD_BYTES <= end;) {
    long next = at + 12 + (long)be32(b + at + 8);
    if (next > end) break; /* a partial batch at the end: fetched again */
    int64_t base = be64(b + at);
    long count = (int32_t)be32(b + at + 57);
    for (int64_t i = base; i < base + count && i < total; i++) received_us[i] = now;
    offset = (long)(base + count);
    at = next;
  }
  return offset;
}

static void *consume(void *arg) {
  int s = *(int *)arg;
  static unsigned char b[RESPONSE_BYTES_MAX];
  double deadline_us = start_us + (total / (double)rate) * 1e6 + GRACE_MS * 1000.0;
  for (long offset = 0, id = 1; offset < total && !failed; id++) {
    put32(fetch_frame + CORRELATION_ID_AT, (uint32_t)id);
    put32(fetch_frame + fetch_offset_at, 0);
    put32(fetch_frame + fetch_offset_at + 4, (uint32_t)offset);
    if (write_all(s, fetch_frame, fetch_bytes) != 0) {
      return fail("fetch write failed", offset), NULL;
    }
    long n = read_frame(s, b, deadline_us);
    if (n < 0) return fail("fetch responses stopped at offset", offset), NULL;
    offset = take_records(b, n, offset, now_us());
  }
  return NULL;
}

static long read_file(const char *path, char *into) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return -1;
  long n = (long)fread(into, 1, REQUEST_BYTES_MAX, f);
  int more = fgetc(f) != EOF;
  fclose(f);
  return more || n < CORRELATION_ID_AT + 4 ? -1 : n;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Prints the percentiles of receipt time minus `from_us[i]` for the records from `first` on. */
static int print_percentiles(const double *from_us, long first) {
  double *latency_us = calloc(total, sizeof *latency_us);
  if (latency_us == NULL) return -1;
  long n = 0;
  for (long i = 0; i < total; i++)
    if (i >= first && sent_us[i] > 0 && received_us[i] > 0)
      latency_us[n++] = received_us[i] - from_us[i];
  if (n == 0) return free(latency_us), -1;
  qsort(latency_us, n, sizeof *latency_us, by_value);
  printf("%.0f %.0f %.0f %.0f %.0f %ld\n", latency_us[n / 2], latency_us[n * 90 / 100],
         latency_us[n * 99 / 100], latency_us[n * 999 / 1000], latency_us[n - 1], n);
  free(latency_us);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr,
            "usage: %s PORT RATE SECONDS WARMUP_S PRODUCE_FRAME FETCH_FRAME FETCH_OFFSET_AT\n",
            argv[0]);
    return 2;
  }
  int port = atoi(argv[1]), seconds = atoi(argv[3]), warmup_s = atoi(argv[4]);
  rate = atoi(argv[2]);
  produce_bytes = read_file(argv[5], produce_frame);
  fetch_bytes = read_file(argv[6], fetch_frame);
  fetch_offset_at = atol(argv[7]);
  if (port <= 0 || port > 65535 || rate <= 0 || rate > RATE_MAX || seconds <= 0 ||
      seconds > SECONDS_MAX || warmup_s < 0 || warmup_s >= seconds || produce_bytes < 0 ||
      fetch_bytes < 0 || fetch_offset_at < CORRELATION_ID_AT + 4 ||
      fetch_offset_at + 8 > fetch_bytes) {
    fprintf(stderr, "latency-client: bad arguments\n");
    return 2;
  }
  total = (long)rate * seconds;
  intended_us = calloc(total, sizeof *intended_us);
  sent_us = calloc(total, sizeof *sent_us);
  received_us = calloc(total, sizeof *received_us);
  int consumer = connect_to(port), producer = connect_to(port);
  if (!intended_us || !sent_us || !received_us || consumer < 0 || producer < 0) {
    fprintf(stderr, "latency-client: cannot allocate or connect\n");
    return 1;
  }
  /* Sleeps end on time, not up to the default 50 us timer slack late (inherited by the threads). */
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  start_us = now_us() + START_DELAY_MS * 1000.0;
  pthread_t pt, at, ct;
  pthread_create(&ct, NULL, consume, &consumer);
  pthread_create(&at, NULL, acknowledge, &producer);
  pthread_create(&pt, NULL, produce, &producer);
  pthread_join(pt, NULL);
  pthread_join(at, NULL);
  pthread_join(ct, NULL);
  if (failed) return 1;
  /* By index, not by comparing times: record first is due exactly when the warm-up ends. */
  long first = (long)warmup_s * rate;
  if (print_percentiles(intended_us, first) != 0 || print_percentiles(sent_us, first) != 0) {
    fprintf(stderr, "latency-client: no record arrived after the warm-up\n");
    return 1;
  }
  return 0;
}
