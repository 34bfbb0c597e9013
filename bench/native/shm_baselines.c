/*
 * shm_baselines.c: the physical floor that ShmIpc's goals are measured against.
 *
 * Two processes (fork) share one MAP_SHARED|MAP_ANONYMOUS region: no file in /dev/shm, no name to
 * clean up, nothing left behind if either side is killed (the child dies with its parent through
 * PR_SET_PDEATHSIG). The harness (bench/ShmBench, Baselines/NativeBaselines.cs) compiles this with
 * "cc -O2" at run time and parses its output, one line per measured run:
 *
 *   latency <name> <p50> <p90> <p99> <p99.9> <max>     (nanoseconds, per round trip)
 *   value <name> <value> <unit>
 *   # free text (notes: pinning, sizes)
 *
 * Usage: shm_baselines <test> <count> <runs> <warmup>
 *   spin          8 B ping-pong, both processes spinning on one word each (128 bytes apart)
 *   sem           8 B ping-pong on two process-shared POSIX semaphores (futex), processes on different CPUs;
 *                 also the share of round trips under 2 us (<name>_unslept_pct: a side did not sleep)
 *   sem_same_cpu  the same with both processes pinned to one CPU
 *   spsc          SPSC ring of 64 B slots, one release store of head/tail per message; count = messages per run
 *                 (each run: a fresh producer, a warm-up, the median, best and worst of 5 timed slices)
 *   spsc_batched  the same ring publishing head/tail once per 32 messages
 *   memcpy        one process copying 64 KiB messages into a 1 MiB shared region; count = copies per run
 *
 * Two-core trap: two spinning processes on one core starve each other for a whole time slice. The
 * spinning tests pin the processes to different CPUs (sched_setaffinity: parent CPU 0, child CPU 1)
 * and bound every spin: after SpinLimit polls a waiter calls sched_yield(), so even unpinned (one CPU)
 * they make progress.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"

/* ---- spin ping-pong ------------------------------------------------------------------------- */

struct spin_words {
    _Alignas(CACHE_PAIR) _Atomic uint64_t ping; /* written by the parent only */
    _Alignas(CACHE_PAIR) _Atomic uint64_t pong; /* written by the child only */
};

static void spin_pingpong(long count, int runs, long warmup)
{
    struct spin_words *w = shared_region(sizeof *w);
    long total = warmup + count * runs;
    printf("# spin: parent on CPU 0, child on CPU 1 (%d CPUs), spin bounded by sched_yield every %d polls\n", g_cpus, SPIN_LIMIT);
    pid_t pid = fork_peer(0, 1);
    if (pid == 0) {
        for (uint64_t i = 1; i <= (uint64_t)total; i++) {
            unsigned polls = 0;
            while (atomic_load_explicit(&w->ping, memory_order_acquire) != i) {
                backoff(&polls);
            }
            atomic_store_explicit(&w->pong, i, memory_order_release);
        }
        _exit(0);
    }

    uint64_t *ns = malloc(sizeof *ns * (size_t)count);
    uint64_t seq = 0;
    for (int r = -1; r < runs; r++) {
        long n = r < 0 ? warmup : count;
        for (long k = 0; k < n; k++) {
            uint64_t t0 = now_ns();
            atomic_store_explicit(&w->ping, ++seq, memory_order_release);
            unsigned polls = 0;
            while (atomic_load_explicit(&w->pong, memory_order_acquire) != seq) {
                backoff(&polls);
            }
            if (r >= 0) {
                ns[k] = now_ns() - t0;
            }
        }
        if (r >= 0) {
            print_latency("c.spin_8B_rtt", ns, count);
        }
    }
    join_peer(pid);
    free(ns);
}

/* ---- semaphore ping-pong -------------------------------------------------------------------- */

struct sem_words {
    sem_t ping;
    sem_t pong;
    _Alignas(CACHE_PAIR) uint64_t message; /* written before a post, read after the matching wait */
};

static void sem_pingpong(long count, int runs, long warmup, int same_cpu)
{
    struct sem_words *w = shared_region(sizeof *w);
    if (sem_init(&w->ping, 1, 0) != 0 || sem_init(&w->pong, 1, 0) != 0) {
        perror("sem_init");
        exit(1);
    }
    const char *name = same_cpu ? "c.sem_same_cpu_8B_rtt" : "c.sem_8B_rtt";
    printf("# %s: process-shared POSIX semaphores, %s\n", name, same_cpu ? "both on CPU 0" : "parent CPU 0, child CPU 1");
    long total = warmup + count * runs;
    pid_t pid = fork_peer(0, same_cpu ? 0 : 1);
    if (pid == 0) {
        for (long i = 0; i < total; i++) {
            while (sem_wait(&w->ping) != 0) {
            }
            w->message += 1;
            sem_post(&w->pong);
        }
        _exit(0);
    }

    uint64_t *ns = malloc(sizeof *ns * (size_t)count);
    for (int r = -1; r < runs; r++) {
        long n = r < 0 ? warmup : count;
        for (long k = 0; k < n; k++) {
            uint64_t t0 = now_ns();
            w->message += 1;
            sem_post(&w->ping);
            while (sem_wait(&w->pong) != 0) {
            }
            if (r >= 0) {
                ns[k] = now_ns() - t0;
            }
        }
        if (r >= 0) {
            /* The same check as the Pipe's sleeping round trip: under 2 us no two futex wake-ups fit, so
               one side found the other's post before it slept (both awake, in lockstep). */
            long unslept = 0;
            for (long k = 0; k < count; k++) {
                unslept += ns[k] < 2000;
            }
            print_latency(name, ns, count);
            printf("value %s_unslept_pct %.3f %%\n", name, 100.0 * (double)unslept / (double)count);
            fflush(stdout);
        }
    }
    join_peer(pid);
    if (w->message != (uint64_t)total * 2) {
        fprintf(stderr, "sem: lost messages\n");
        exit(1);
    }
    free(ns);
}

/* ---- SPSC ring of 64 B slots ---------------------------------------------------------------- */

#define RING_SLOTS 1024 /* 64 KiB of slots */
#define SLOT 64
#define SPSC_SUBRUNS 5  /* timed slices per reported run: the run reports their median and best */
#define SPSC_BATCH 32   /* the batched variant publishes head/tail once per this many messages */

struct ring {
    _Alignas(CACHE_PAIR) _Atomic uint64_t head; /* consumer position: written by the consumer only */
    _Alignas(CACHE_PAIR) _Atomic uint64_t tail; /* producer position: written by the producer only */
    _Alignas(CACHE_PAIR) unsigned char slots[RING_SLOTS][SLOT];
};

/*
 * Producer (child, CPU 1) of one reported run: writes `total` sequence-numbered messages. With batch 1
 * it publishes tail after every message (release); with batch B it publishes every B messages, and
 * always before it waits for space, so the consumer can never wait on an unpublished message.
 */
static void spsc_produce(struct ring *ring, uint64_t total, unsigned batch)
{
    unsigned char message[SLOT];
    memset(message, 0x5a, sizeof message);
    uint64_t head_cache = 0;
    for (uint64_t t = 0; t < total; t++) {
        if (t - head_cache >= RING_SLOTS) {
            atomic_store_explicit(&ring->tail, t, memory_order_release); /* pairs with the consumer's acquire of tail */
            unsigned polls = 0;
            while (t - (head_cache = atomic_load_explicit(&ring->head, memory_order_acquire)) >= RING_SLOTS) {
                backoff(&polls);
            }
        }
        memcpy(message, &t, sizeof t);
        memcpy(ring->slots[t & (RING_SLOTS - 1)], message, SLOT);
        if (((t + 1) & (batch - 1)) == 0) { /* batch is a power of two */
            atomic_store_explicit(&ring->tail, t + 1, memory_order_release);
        }
    }
    atomic_store_explicit(&ring->tail, total, memory_order_release);
}

/*
 * SPSC ring of 64 B slots, producer (child) on CPU 1, consumer (this process) on CPU 0. The per-message
 * variant (batch 1) is bimodal on small VMs: it settles either with the consumer just behind the
 * producer (every message bounces the tail line: slow) or with the ring full (fast), and stays in one
 * mode for a while. So every reported run forks a fresh producer, warms up, then times SPSC_SUBRUNS
 * slices of count / SPSC_SUBRUNS messages and prints their median (the figure) and their best.
 */
static void spsc_ring(long count, int runs, long warmup, unsigned batch)
{
    const char *name = batch == 1 ? "c.spsc_64B" : "c.spsc_64B_batched";
    struct ring *ring = shared_region(sizeof *ring);
    long slice = count / SPSC_SUBRUNS > 0 ? count / SPSC_SUBRUNS : 1;
    printf("# %s: %d slots of %d B, %s, producer (child) CPU 1, consumer CPU 0; each run = fresh producer, warm-up, median of %d slices\n",
           name, RING_SLOTS, SLOT, batch == 1 ? "one release store of head/tail per message" : "head/tail published every 32 messages",
           SPSC_SUBRUNS);
    for (int r = 0; r < runs; r++) {
        uint64_t total = (uint64_t)warmup + (uint64_t)slice * SPSC_SUBRUNS;
        atomic_store(&ring->head, 0);
        atomic_store(&ring->tail, 0);
        pid_t pid = fork_peer(0, 1);
        if (pid == 0) {
            spsc_produce(ring, total, batch);
            _exit(0);
        }

        unsigned char message[SLOT];
        uint64_t tail_cache = 0, h = 0, check = 0;
        double rates[SPSC_SUBRUNS];
        for (int s = -1; s < SPSC_SUBRUNS; s++) {
            long n = s < 0 ? warmup : slice;
            uint64_t t0 = now_ns();
            for (long k = 0; k < n; k++, h++) {
                if (h >= tail_cache) {
                    atomic_store_explicit(&ring->head, h, memory_order_release); /* pairs with the producer's acquire of head */
                    unsigned polls = 0;
                    while (h >= (tail_cache = atomic_load_explicit(&ring->tail, memory_order_acquire))) {
                        backoff(&polls);
                    }
                }
                memcpy(message, ring->slots[h & (RING_SLOTS - 1)], SLOT);
                if (((h + 1) & (batch - 1)) == 0) {
                    atomic_store_explicit(&ring->head, h + 1, memory_order_release);
                }
                uint64_t seq;
                memcpy(&seq, message, sizeof seq);
                check += seq == h;
            }
            if (s >= 0) {
                rates[s] = (double)n * 1e9 / (double)(now_ns() - t0);
            }
        }
        atomic_store_explicit(&ring->head, h, memory_order_release);
        join_peer(pid);
        if (check != total) {
            fprintf(stderr, "%s: corrupt messages\n", name);
            exit(1);
        }
        qsort(rates, SPSC_SUBRUNS, sizeof rates[0], cmp_double);
        printf("value %s_throughput %.0f msg/s\n", name, rates[SPSC_SUBRUNS / 2]);
        printf("value %s_best_throughput %.0f msg/s\n", name, rates[SPSC_SUBRUNS - 1]);
        printf("value %s_worst_throughput %.0f msg/s\n", name, rates[0]);
        fflush(stdout);
    }
}

/* ---- memcpy bandwidth ----------------------------------------------------------------------- */

static void memcpy_bandwidth(long count, int runs, long warmup)
{
    const size_t msg = 64 * 1024, region = 1024 * 1024;
    unsigned char *src = malloc(msg);
    unsigned char *dst = shared_region(region);
    memset(src, 0x3c, msg);
    printf("# memcpy: one process, 64 KiB messages into a 1 MiB MAP_SHARED region (16 slots, wrapping)\n");
    pin(0);
    for (int r = -1; r < runs; r++) {
        long n = r < 0 ? warmup : count;
        uint64_t t0 = now_ns();
        for (long k = 0; k < n; k++) {
            src[0] = (unsigned char)k;
            memcpy(dst + (size_t)(k & 15) * msg, src, msg);
            __asm__ __volatile__("" ::: "memory"); /* the copy is observable: keep it */
        }
        uint64_t elapsed = now_ns() - t0;
        if (r >= 0) {
            printf("value c.memcpy_64KiB_bandwidth %.1f MB/s\n", (double)count * (double)msg / 1e6 * 1e9 / (double)elapsed);
            fflush(stdout);
        }
    }
    free(src);
}

/*
 * The floor of a cross-process lock: a pthread mutex with PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST in a
 * MAP_SHARED region (what ShmLock is compared with; a robust mutex is also recovered when its holder dies).
 * Uncontended: lock+unlock pairs in one process, ns per pair. Contended: this process and a forked one each take
 * it `count` times around a shared counter (unpinned, as the .NET side), total ms; the counter must be exact.
 */
struct locked_counter {
    pthread_mutex_t mutex;
    volatile long counter;
};

static struct locked_counter *robust_region(void)
{
    struct locked_counter *shared = shared_region(sizeof *shared);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (pthread_mutex_init(&shared->mutex, &attr) != 0) {
        perror("pthread_mutex_init");
        exit(1);
    }
    pthread_mutexattr_destroy(&attr);
    return shared;
}

static void robust_lock(struct locked_counter *shared)
{
    if (pthread_mutex_lock(&shared->mutex) == EOWNERDEAD) {
        pthread_mutex_consistent(&shared->mutex);
    }
}

static void robust_mutex_uncontended(long count, int runs, long warmup)
{
    struct locked_counter *shared = robust_region();
    for (long i = 0; i < warmup; i++) {
        robust_lock(shared);
        pthread_mutex_unlock(&shared->mutex);
    }
    for (int r = 0; r < runs; r++) {
        uint64_t start = now_ns();
        for (long i = 0; i < count; i++) {
            robust_lock(shared);
            pthread_mutex_unlock(&shared->mutex);
        }
        printf("value c.robust_mutex_uncontended_ns %.2f ns\n", (double)(now_ns() - start) / (double)count);
        fflush(stdout);
    }
}

static void robust_mutex_contended(long count, int runs, long warmup)
{
    (void)warmup;
    struct locked_counter *shared = robust_region();
    for (int r = 0; r < runs; r++) {
        shared->counter = 0;
        uint64_t start = now_ns();
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            exit(1);
        }
        for (long i = 0; i < count; i++) {
            robust_lock(shared);
            shared->counter++;
            pthread_mutex_unlock(&shared->mutex);
        }
        if (pid == 0) {
            _exit(0);
        }
        join_peer(pid);
        double ms = (double)(now_ns() - start) / 1e6;
        if (shared->counter != 2 * count) {
            fprintf(stderr, "robust mutex counter %ld, expected %ld\n", shared->counter, 2 * count);
            exit(1);
        }
        printf("value c.robust_mutex_contended_2x%ldk_ms %.1f ms\n", count / 1000, ms);
        fflush(stdout);
    }
}

/*
 * 2^24 doubles in a MAP_SHARED region: this process writes element i = i * 0.5, a forked process (waiting on a flag)
 * sums them (eight partial sums; every partial sum of these values is exact, so any order gives the expected total). The figure is from the start of the writes to the end of the sum (both stamps CLOCK_MONOTONIC), in ms.
 */
static void array_write_sum(long count, int runs, long warmup)
{
    (void)warmup;
    size_t n = (size_t)count;
    struct { _Atomic int go; _Atomic long long end_ns; double sum; } *ctl = shared_region(4096);
    double *data = shared_region(n * sizeof(double));
    for (int r = 0; r < runs; r++) {
        atomic_store(&ctl->go, 0);
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            exit(1);
        }
        if (pid == 0) {
            unsigned polls = 0;
            while (!atomic_load_explicit(&ctl->go, memory_order_acquire)) backoff(&polls);
            /* Eight partial sums, as a careful C programmer (and numpy) would: one running sum is bound by the
               latency of each addition; eight independent ones keep the adder busy and let the compiler vectorize. */
            double part[8] = {0};
            size_t i = 0;
            for (; i + 8 <= n; i += 8)
                for (int k = 0; k < 8; k++) part[k] += data[i + k];
            double sum = 0;
            for (int k = 0; k < 8; k++) sum += part[k];
            for (; i < n; i++) sum += data[i];
            ctl->sum = sum;
            atomic_store_explicit(&ctl->end_ns, (long long)now_ns(), memory_order_release);
            _exit(0);
        }
        uint64_t start = now_ns();
        for (size_t i = 0; i < n; i++) data[i] = (double)i * 0.5;
        atomic_store_explicit(&ctl->go, 1, memory_order_release);
        join_peer(pid);
        double expected = 0.25 * (double)n * (double)(n - 1);
        if (ctl->sum != expected) {
            fprintf(stderr, "array sum %f, expected %f\n", ctl->sum, expected);
            exit(1);
        }
        printf("value c.array_2p24_write_sum_ms %.2f ms\n", (double)((uint64_t)atomic_load(&ctl->end_ns) - start) / 1e6);
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    long count, warmup;
    int runs;
    parse_args(argc, argv, "spin|sem|sem_same_cpu|spsc|spsc_batched|memcpy|robust_mutex|robust_mutex_contended|array_sum", &count, &runs, &warmup);
    g_cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);

    if (strcmp(argv[1], "spin") == 0) {
        spin_pingpong(count, runs, warmup);
    } else if (strcmp(argv[1], "sem") == 0) {
        sem_pingpong(count, runs, warmup, 0);
    } else if (strcmp(argv[1], "sem_same_cpu") == 0) {
        sem_pingpong(count, runs, warmup, 1);
    } else if (strcmp(argv[1], "spsc") == 0) {
        spsc_ring(count, runs, warmup, 1);
    } else if (strcmp(argv[1], "spsc_batched") == 0) {
        spsc_ring(count, runs, warmup, SPSC_BATCH);
    } else if (strcmp(argv[1], "memcpy") == 0) {
        memcpy_bandwidth(count, runs, warmup);
    } else if (strcmp(argv[1], "array_sum") == 0) {
        array_write_sum(count, runs, warmup);
    } else if (strcmp(argv[1], "robust_mutex") == 0) {
        robust_mutex_uncontended(count, runs, warmup);
    } else if (strcmp(argv[1], "robust_mutex_contended") == 0) {
        robust_mutex_contended(count, runs, warmup);
    } else {
        fprintf(stderr, "unknown test %s\n", argv[1]);
        return 2;
    }
    return 0;
}
