/*
 * peer_queue.c: ShmIpc's Queue protocol itself, in C: the C peer's shmipc_queue_put / shmipc_queue_get
 * (native-notes/c/shmipc.c, LAYOUT.md) with 64 B messages, one producer process and one consumer process, pinned and
 * timed as best_spsc.c times its ring (producer, a fresh child, on CPU 1; consumer on CPU 0; warm-up, then the median of
 * 5 slices). Beside the .NET queue's figure and the best ring's, it tells which one bounds the queue (issue 16): the
 * protocol (this figure as low as the .NET queue's) or the .NET code (this one far higher). Compiled by the harness with
 * "cc -O2 -march=native" together with the peer's shmipc.c (Baselines/NativeBaselines.cs); output lines as
 * shm_baselines.c (bench_common.h).
 *
 * Usage: peer_queue queue <count> <runs> <warmup>
 *   queue  a queue of 1 MiB, messages of 64 B (the queue scenario's), blocking put and get: c.peer_queue_64B_1p1c_throughput
 */
#define _GNU_SOURCE
#include "bench_common.h"
#include "shmipc.h"

#define SUBRUNS 5

/* The parent's queue (the creator's handle): closed, which unlinks its names, before the parent gives up. */
static shmipc_queue *g_created;

static void die(const char *what, int rc)
{
    fprintf(stderr, "peer_queue: %s failed: %s (%s)\n", what, shmipc_strerror(rc), shmipc_last_error());
    if (g_created != NULL) {
        shmipc_queue_close(g_created);
    }
    exit(1);
}

/*
 * The next message for the consumer; gives up (and cleans up) when the producer child has exited without sending it.
 * A look without a timeout first: a get with one reads the clock for its deadline at every call (shmipc.c), a
 * blocking one (SHMIPC_FOREVER) would never notice a dead producer that wrote nothing.
 */
static void get_or_die(shmipc_queue *q, pid_t producer, void *out, size_t capacity, size_t *length)
{
    int rc = shmipc_queue_get(q, out, capacity, length, 0);
    while (rc == SHMIPC_ETIMEOUT) {
        rc = shmipc_queue_get(q, out, capacity, length, 1000000000LL);
        int status;
        if (rc == SHMIPC_ETIMEOUT && waitpid(producer, &status, WNOHANG) == producer) {
            die("the producer exited early; get", rc);
        }
    }
    if (rc) {
        die("get", rc);
    }
}

static void queue_throughput(long count, int runs, long warmup)
{
    const int size = 64;
    long slice = count / SUBRUNS > 0 ? count / SUBRUNS : 1;
    char name[64];
    snprintf(name, sizeof name, "bench-peer-queue-%d", (int)getpid());
    printf("# c.peer_queue_64B_1p1c: the C peer's queue (LAYOUT.md protocol), 1 MiB, 64 B messages, blocking put / get, "
           "producer (child) CPU 1, consumer CPU 0; each run = fresh producer, warm-up, median of %d slices; cc -O2 -march=native\n",
           SUBRUNS);
    unsigned char message[64], out[64];
    memset(message, 0x5a, sizeof message);
    for (int run = 0; run < runs; run++) {
        uint64_t total = (uint64_t)warmup + (uint64_t)slice * SUBRUNS;
        shmipc_queue *q;
        int rc = shmipc_queue_create(name, 1 << 20, size, &q);
        if (rc) {
            die("create", rc);
        }
        g_created = q;
        pid_t pid = fork_peer(0, 1);
        if (pid == 0) {
            g_created = NULL; /* the parent's handle: only the parent closes it */
            shmipc_queue *producer;
            if ((rc = shmipc_queue_open(name, &producer))) {
                fprintf(stderr, "peer_queue: open failed: %s (%s)\n", shmipc_strerror(rc), shmipc_last_error());
                _exit(1);
            }
            for (uint64_t t = 0; t < total; t++) {
                memcpy(message, &t, sizeof t);
                if ((rc = shmipc_queue_put(producer, message, size, SHMIPC_FOREVER))) {
                    fprintf(stderr, "peer_queue: put failed: %s (%s)\n", shmipc_strerror(rc), shmipc_last_error());
                    _exit(1);
                }
            }
            shmipc_queue_close(producer);
            _exit(0);
        }

        uint64_t h = 0, check = 0;
        double rates[SUBRUNS];
        for (int s = -1; s < SUBRUNS; s++) {
            long n = s < 0 ? warmup : slice;
            uint64_t t0 = now_ns();
            for (long k = 0; k < n; k++, h++) {
                size_t length;
                get_or_die(q, pid, out, sizeof out, &length);
                uint64_t seq;
                memcpy(&seq, out, sizeof seq);
                check += seq == h && length == (size_t)size;
            }
            if (s >= 0) {
                rates[s] = (double)n * 1e9 / (double)(now_ns() - t0);
            }
        }
        g_created = NULL;
        shmipc_queue_close(q); /* before join_peer, which exits on a failed child */
        join_peer(pid);
        if (check != total) {
            fprintf(stderr, "peer_queue: corrupt messages (%llu of %llu right)\n", (unsigned long long)check, (unsigned long long)total);
            exit(1);
        }
        qsort(rates, SUBRUNS, sizeof rates[0], cmp_double);
        printf("value c.peer_queue_64B_1p1c_throughput %.0f msg/s\n", rates[SUBRUNS / 2]);
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    long count, warmup;
    int runs;
    parse_args(argc, argv, "queue", &count, &runs, &warmup);
    g_cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (strcmp(argv[1], "queue") != 0) {
        fprintf(stderr, "unknown test %s\n", argv[1]);
        return 2;
    }
    queue_throughput(count, runs, warmup);
    return 0;
}
