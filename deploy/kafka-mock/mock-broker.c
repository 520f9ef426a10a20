/*
 * A Kafka-protocol broker for tests: librdkafka's mock cluster (rdkafka_mock.h) in its own process.
 *
 *   mock-broker [--brokers N] TOPIC[:PARTITIONS] ...
 *
 * Creates each topic (the mock has no CreateTopics API), prints the bootstrap servers as one line on
 * stdout, then serves until SIGTERM or SIGINT (or until its parent process dies). Partitions default to
 * 1, brokers to 1. Lines on stdin control it, for tests of a broker outage: `down ID` disconnects broker
 * ID and refuses new connections, `up ID` lets it serve again (IDs start at 1); each is answered with
 * `ok <line>` (or `error <line>`) on stdout. The mock keeps its data in memory only.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static volatile sig_atomic_t running = 1;

static void stop(int sig) {
  (void)sig;
  running = 0;
}

int main(int argc, char **argv) {
  char err[512];
  int brokers = 1, first = 1;
  if (argc > 2 && strcmp(argv[1], "--brokers") == 0) {
    brokers = atoi(argv[2]);
    first = 3;
  }
  if (brokers < 1) {
    fprintf(stderr, "mock-broker: --brokers must be at least 1\n");
    return 2;
  }
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  /* The mock cluster needs a client instance for its bookkeeping; this one never connects anywhere. */
  if (rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err)) != RD_KAFKA_CONF_OK) {
    fprintf(stderr, "mock-broker: %s\n", err);
    return 1;
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (rk == NULL) {
    fprintf(stderr, "mock-broker: %s\n", err);
    return 1;
  }
  rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(rk, brokers);
  if (cluster == NULL) {
    fprintf(stderr, "mock-broker: could not create the mock cluster\n");
    rd_kafka_destroy(rk);
    return 1;
  }
  for (int i = first; i < argc; i++) {
    char *name = argv[i];
    char *colon = strrchr(name, ':');
    int partitions = 1;
    if (colon != NULL) {
      *colon = '\0';
      partitions = atoi(colon + 1);
    }
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(cluster, name, partitions < 1 ? 1 : partitions, brokers < 3 ? brokers : 3);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      fprintf(stderr, "mock-broker: topic %s: %s\n", name, rd_kafka_err2str(e));
      return 1;
    }
  }
  signal(SIGTERM, stop);
  signal(SIGINT, stop);
  printf("%s\n", rd_kafka_mock_cluster_bootstraps(cluster));
  fflush(stdout);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  struct pollfd in = {.fd = STDIN_FILENO, .events = POLLIN};
  char line[128];
  while (running) {
    if (in.fd < 0 || poll(&in, 1, 100) <= 0) {
      if (in.fd < 0) usleep(100 * 1000);
      continue;
    }
    if (fgets(line, sizeof(line), stdin) == NULL) {
      in.fd = -1; /* stdin closed: keep serving until a signal */
      continue;
    }
    line[strcspn(line, "\r\n")] = '\0';
    int id = 0;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__INVALID_ARG;
    if (sscanf(line, "down %d", &id) == 1) e = rd_kafka_mock_broker_set_down(cluster, id);
    else if (sscanf(line, "up %d", &id) == 1) e = rd_kafka_mock_broker_set_up(cluster, id);
    printf("%s %s\n", e == RD_KAFKA_RESP_ERR_NO_ERROR ? "ok" : "error", line);
    fflush(stdout);
  }
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(rk);
  return 0;
}
