/*
 * bench_common.h: what the C floors (shm_baselines.c, best_spsc.c) share: the clock, the bounded spin, CPU
 * pinning, the shared region, the forked peer, and the output lines the harness parses
 * (bench/ShmBench/Baselines/ExternalBaseline.cs). Static functions: each program is one translation unit.
 */
#ifndef SHMIPC_BENCH_COMMON_H
#define SHMIPC_BENCH_COMMON_H

#include <sched.h>
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

#define SPIN_LIMIT (1 << 14)
#define CACHE_PAIR 128 /* two cache lines: the adjacent-line prefetcher pulls lines in pairs */

static int g_cpus;

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Bounded spin: pause, and give the CPU away every SPIN_LIMIT polls. */
static inline void backoff(unsigned *polls)
{
    if (++*polls % SPIN_LIMIT == 0) {
        sched_yield();
    } else {
        cpu_relax();
    }
}

static inline void pin(int cpu)
{
    if (g_cpus < 2) {
        return;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % g_cpus, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        perror("sched_setaffinity");
    }
}

static inline void *shared_region(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    memset(p, 0, size);
    return p;
}

/* fork; the child is killed when the parent dies and runs on child_cpu. Returns 0 in the child. */
static inline pid_t fork_peer(int parent_cpu, int child_cpu)
{
    pid_t parent = getpid();
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(1);
        }
        pin(child_cpu);
    } else {
        pin(parent_cpu);
    }
    return pid;
}

static inline void join_peer(pid_t pid)
{
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "peer process failed\n");
        exit(1);
    }
}

static inline int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Same percentile rule as Stats.cs: the element at floor(q * n). */
static inline void print_latency(const char *name, uint64_t *ns, long n)
{
    qsort(ns, (size_t)n, sizeof *ns, cmp_u64);
#define AT(q) ns[(long)((q) * n) < n ? (long)((q) * n) : n - 1]
    printf("latency %s %llu %llu %llu %llu %llu\n", name, (unsigned long long)AT(0.50), (unsigned long long)AT(0.90),
           (unsigned long long)AT(0.99), (unsigned long long)AT(0.999), (unsigned long long)ns[n - 1]);
#undef AT
    fflush(stdout);
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The arguments of every test: <test> <count> <runs> <warmup>. Prints the usage (naming <tests>) and exits 2 when they are wrong. */
static inline void parse_args(int argc, char **argv, const char *tests, long *count, int *runs, long *warmup)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s %s <count> <runs> <warmup>\n", argv[0], tests);
        exit(2);
    }
    *count = atol(argv[2]);
    *runs = atoi(argv[3]);
    *warmup = atol(argv[4]);
    if (*count < 1 || *runs < 1 || *warmup < 0) {
        fprintf(stderr, "count and runs must be positive\n");
        exit(2);
    }
}

#endif
