/*
 * best_spsc.c: the strongest C floor for ShmIpc's Queue and Pipe (issue 16): the field's best-practice
 * single-producer single-consumer ring between two processes, as Agrona's OneToOneRingBuffer and
 * rigtorp's SPSCQueue build it. Compiled by the harness with "cc -O2 -march=native" (Baselines/NativeBaselines.cs);
 * output lines as shm_baselines.c (bench_common.h).
 *
 * Usage: best_spsc <test> <count> <runs> <warmup>
 *   spsc          64 B records (1 MiB ring), header commit, one publication per message: c.best_spsc_64B_throughput
 *   spsc_tail     64 B records, tail commit, tail published per message:    c.best_spsc_64B_tail_throughput
 *   spsc_batched  64 B records, tail commit, tail published every 64:       c.best_spsc_64B_batched_throughput
 *   bandwidth     64 KiB records copied in and out of an 8 MiB ring, tail commit per message (the consumer
 *                 need not zero what it read): c.best_spsc_64KiB_throughput (+ _bandwidth from the harness)
 *   bandwidth_header  the same with header commit (the consumer zeroes every 64 KiB it read): c.best_spsc_64KiB_header_throughput
 *   spin          8 B ping-pong over two rings, header commit: c.best_spin_8B_rtt
 *   spin_tail     the same, tail commit: c.best_spin_8B_tail_rtt
 *   memcpy_cold   one process, memcpy of 64 KiB blocks that miss every cache (256 MiB source and destination,
 *                 walked in order, pages faulted in before timing): c.memcpy_64KiB_cold_throughput (+ _bandwidth)
 * What "bandwidth" measures (checked against its code and assembly, 2026-12-07): both copies of every byte happen
 * (memcpy with the record's length in the producer and in the consumer); the producer's source and the consumer's
 * destination are one private 64 KiB buffer each, so they stay in L1/L2, and the 8 MiB ring stays in the 32 MiB L3:
 * it is the cost of two copies between cores through the cache, not through DRAM, which is also where a loan's
 * bytes travel. Its spread across runs (7.3-21.6 GB/s in past results, 2.6-3.3 GB/s under a load of 5) is the
 * shared machine's state, so it is only ever compared within one run.
 * Throughput tests: each run forks a fresh producer (CPU 1; consumer CPU 0), warms up, and prints the median of
 * 5 timed slices (the figure) and the best and worst slice, as the old ring in shm_baselines.c.
 *
 * Design (the ring):
 * - One region from /dev/shm (shm_open, mapped, unlinked at once: nothing is left behind), shared by fork.
 *   head (the consumer's position) and tail (the producer's position) are 64-bit byte positions that only grow,
 *   each alone on its own 128-byte pair of lines (the adjacent-line prefetcher moves lines in pairs); the index
 *   is position & (capacity - 1). The records follow at byte 256.
 * - A record is an 8-byte header (bits 0-31 payload length, bits 32-63 type: 1 data, 2 padding) and its payload,
 *   rounded up to 8 bytes. A record that does not fit before the end of the buffer is preceded by a padding record
 *   that fills the rest, and starts at index 0 (records are never split).
 * - Each side keeps a private copy of the other's position (the producer head_cache, the consumer tail_cache) and
 *   reads the shared one only when its copy says full (producer) or empty (consumer, tail commit). In steady state
 *   neither side reads a line the other writes, except the records themselves.
 * - Header commit (Agrona, Aeron): the producer writes the payload, then the header with a release store; the
 *   consumer polls the header of the record at head with an acquire load (0 = nothing yet), copies the payload out,
 *   zeroes the whole record (a later header may fall anywhere in it), then stores head with release. The producer
 *   never touches tail's line (it is not published) nor head's line until its head_cache says full. Invariant: every
 *   byte in [tail, head + capacity) is zero, so the header after the last record reads 0 until it is committed.
 *   The producer's acquire of head pairs with the consumer's release of head: the zeroing happens before the
 *   producer's next writes to those bytes.
 * - Tail commit (rigtorp, the old floor): headers are plain stores; the producer publishes tail with a release store
 *   (every message, or every `batch` messages and always before it waits for space); the consumer's acquire of tail
 *   pairs with it. The consumer need not zero anything.
 * - Both: the consumer publishes head (release) when it finds the ring empty (before it waits) and after every
 *   capacity / 8 bytes it consumed, as Agrona's read() publishes once per batch of records: publishing after every
 *   record bounced head's line between the cores at every message whenever the producer found the ring full
 *   (6-50 M msg/s instead of 50-87 M here). Waits are bounded spins (sched_yield every SPIN_LIMIT polls, bench_common.h).
 * - Measured choices (2 vCPU EPYC, 2026-12): a 1 MiB ring for 64 B records (64 KiB: 47-66 M msg/s, 1 MiB: 86 M
 *   header commit); the header store with a constant memory order (see store_header).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>

#include "bench_common.h"

#define HEADER 8
#define TYPE_DATA 1ull
#define TYPE_PAD 2ull
#define SUBRUNS 5
#define BATCH 64
#ifndef SMALL_RING
#define SMALL_RING (1024 * 1024) /* the ring of the 64 B tests: 1 MiB, as the Queue's in the queue scenario */
#endif

enum commit { COMMIT_HEADER, COMMIT_TAIL };

struct ring_control {
    _Alignas(CACHE_PAIR) _Atomic uint64_t head; /* consumer position: written by the consumer only */
    _Alignas(CACHE_PAIR) _Atomic uint64_t tail; /* producer position: written by the producer only (tail commit) */
};

struct ring {
    struct ring_control *control;
    unsigned char *buf;
    uint64_t capacity; /* a power of two */
    enum commit mode;
};

struct producer {
    struct ring r;
    uint64_t tail;        /* next write position (published only in tail commit) */
    uint64_t head_cache;  /* last head read: the producer may write up to head_cache + capacity */
    unsigned batch;       /* tail commit: publish tail every `batch` records */
    unsigned unpublished;
};

struct consumer {
    struct ring r;
    uint64_t head;        /* next read position */
    uint64_t head_shown;  /* the last head published */
    uint64_t tail_cache;  /* tail commit: last tail read */
};

/* The consumer publishes head when it finds the ring empty, or after capacity / HEAD_RELEASE_DIVISOR bytes. */
#ifndef HEAD_RELEASE_DIVISOR
#define HEAD_RELEASE_DIVISOR 8
#endif

/* Publishes head (release): pairs with the producer's acquire of head (the reads and zeroing before it are done). */
static inline void publish_head(struct consumer *c)
{
    atomic_store_explicit(&c->r.control->head, c->head, memory_order_release);
    c->head_shown = c->head;
}

static inline uint64_t align8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

static inline _Atomic uint64_t *header_at(const struct ring *r, uint64_t index)
{
    return (_Atomic uint64_t *)(r->buf + index);
}

/* A region from /dev/shm, unlinked as soon as it is mapped: shared with the forked peer, never left behind. */
static void *shm_region(size_t size)
{
    char name[64];
    snprintf(name, sizeof name, "/shmipc-bench-best-%d-%zu", (int)getpid(), size);
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) {
        perror("shm_open");
        exit(1);
    }
    shm_unlink(name);
    if (ftruncate(fd, (off_t)size) != 0) {
        perror("ftruncate");
        exit(1);
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    memset(p, 0, size); /* fault every page in before anything is timed */
    return p;
}

static struct ring ring_new(uint64_t capacity, enum commit mode)
{
    unsigned char *base = shm_region(2 * CACHE_PAIR + capacity);
    return (struct ring){ (struct ring_control *)base, base + 2 * CACHE_PAIR, capacity, mode };
}

/* Between runs (no peer alive): an empty ring, all zero, as the header commit's invariant needs. */
static void ring_reset(struct ring *r)
{
    memset(r->buf, 0, r->capacity);
    atomic_store(&r->control->head, 0);
    atomic_store(&r->control->tail, 0);
}

/*
 * Stores a record's header: release in header commit (pairs with the consumer's acquire of the header: the payload
 * is visible with it), relaxed in tail commit (publish_tail releases it). Two constant orders: a memory order only
 * known at run time makes the compiler emit a sequentially consistent store (xchg, a full fence on x86).
 */
static inline void store_header(const struct ring *r, uint64_t index, uint64_t header)
{
    if (r->mode == COMMIT_HEADER) {
        atomic_store_explicit(header_at(r, index), header, memory_order_release);
    } else {
        atomic_store_explicit(header_at(r, index), header, memory_order_relaxed);
    }
}

static inline void publish_tail(struct producer *p)
{
    atomic_store_explicit(&p->r.control->tail, p->tail, memory_order_release); /* pairs with the consumer's acquire of tail */
    p->unpublished = 0;
}

/* Writes one record of `length` bytes, waiting (bounded spin) while the ring is full. */
static inline void produce(struct producer *p, const void *message, uint32_t length)
{
    struct ring *r = &p->r;
    uint64_t record = align8(HEADER + length);
    uint64_t index = p->tail & (r->capacity - 1);
    uint64_t to_end = r->capacity - index;
    uint64_t need = record <= to_end ? record : record + to_end;
    if (p->tail + need - p->head_cache > r->capacity) {
        if (r->mode == COMMIT_TAIL && p->unpublished) {
            publish_tail(p); /* never wait with records the consumer cannot see */
        }
        unsigned polls = 0;
        /* acquire: pairs with the consumer's release of head (its reads and zeroing are done) */
        while (p->tail + need - (p->head_cache = atomic_load_explicit(&r->control->head, memory_order_acquire)) > r->capacity) {
            backoff(&polls);
        }
    }
    if (record > to_end) {
        store_header(r, index, (uint64_t)to_end | (TYPE_PAD << 32));
        p->tail += to_end;
        index = 0;
    }
    memcpy(r->buf + index + HEADER, message, length);
    store_header(r, index, (uint64_t)length | (TYPE_DATA << 32));
    p->tail += record;
    if (r->mode == COMMIT_TAIL && ++p->unpublished >= p->batch) {
        publish_tail(p);
    }
}

/* Takes one record into `out` (at most `max` bytes) and returns its length, or -1 when the ring is empty. */
static inline long try_consume(struct consumer *c, void *out, uint32_t max)
{
    struct ring *r = &c->r;
    for (;;) {
        uint64_t index = c->head & (r->capacity - 1);
        uint64_t header;
        if (r->mode == COMMIT_HEADER) {
            header = atomic_load_explicit(header_at(r, index), memory_order_acquire); /* pairs with the producer's release of it */
            if (header == 0) {
                if (c->head != c->head_shown) {
                    publish_head(c); /* never wait with space the producer cannot see */
                }
                return -1;
            }
        } else {
            if (c->head == c->tail_cache) {
                c->tail_cache = atomic_load_explicit(&r->control->tail, memory_order_acquire); /* pairs with publish_tail */
                if (c->head == c->tail_cache) {
                    if (c->head != c->head_shown) {
                        publish_head(c);
                    }
                    return -1;
                }
            }
            header = atomic_load_explicit(header_at(r, index), memory_order_relaxed);
        }
        uint32_t length = (uint32_t)header;
        uint64_t record;
        if (header >> 32 == TYPE_PAD) {
            record = length;
        } else {
            if (length > max) {
                fprintf(stderr, "best_spsc: record of %u bytes at %llu\n", length, (unsigned long long)c->head);
                exit(1);
            }
            memcpy(out, r->buf + index + HEADER, length);
            record = align8(HEADER + length);
        }
        if (r->mode == COMMIT_HEADER) {
            /* Zero the record: a later record's header may fall anywhere in it. Done before head is released. */
            memset(r->buf + index + HEADER, 0, record - HEADER);
            atomic_store_explicit(header_at(r, index), 0, memory_order_relaxed);
        }
        c->head += record;
        if (c->head - c->head_shown >= r->capacity / HEAD_RELEASE_DIVISOR) {
            publish_head(c);
        }
        if (header >> 32 == TYPE_DATA) {
            return (long)length;
        }
    }
}

static inline long consume(struct consumer *c, void *out, uint32_t max)
{
    long length;
    unsigned polls = 0;
    while ((length = try_consume(c, out, max)) < 0) {
        backoff(&polls);
    }
    return length;
}

/* ---- one-way throughput ---------------------------------------------------------------------- */

static void throughput(const char *name, long count, int runs, long warmup, uint32_t size, uint64_t capacity, enum commit mode, unsigned batch)
{
    struct ring r = ring_new(capacity, mode);
    long slice = count / SUBRUNS > 0 ? count / SUBRUNS : 1;
    unsigned char *message = malloc(size), *out = malloc(size);
    memset(message, 0x5a, size);
    printf("# %s: %s commit%s, records of 8 + %u B in a %llu KiB ring, producer (child) CPU 1, consumer CPU 0; "
           "each run = fresh producer, warm-up, median of %d slices; cc -O2 -march=native\n",
           name, mode == COMMIT_HEADER ? "header" : "tail",
           mode == COMMIT_HEADER ? "" : batch == 1 ? " (tail published per message)" : " (tail published every 64 messages)",
           size, (unsigned long long)(capacity / 1024), SUBRUNS);
    for (int run = 0; run < runs; run++) {
        uint64_t total = (uint64_t)warmup + (uint64_t)slice * SUBRUNS;
        ring_reset(&r);
        pid_t pid = fork_peer(0, 1);
        if (pid == 0) {
            struct producer p = { .r = r, .batch = batch };
            for (uint64_t t = 0; t < total; t++) {
                memcpy(message, &t, sizeof t);
                produce(&p, message, size);
            }
            if (mode == COMMIT_TAIL) {
                publish_tail(&p);
            }
            _exit(0);
        }

        struct consumer c = { .r = r };
        uint64_t h = 0, check = 0;
        double rates[SUBRUNS];
        for (int s = -1; s < SUBRUNS; s++) {
            long n = s < 0 ? warmup : slice;
            uint64_t t0 = now_ns();
            for (long k = 0; k < n; k++, h++) {
                long length = consume(&c, out, size);
                uint64_t seq;
                memcpy(&seq, out, sizeof seq);
                check += seq == h && length == (long)size;
            }
            if (s >= 0) {
                rates[s] = (double)n * 1e9 / (double)(now_ns() - t0);
            }
        }
        join_peer(pid);
        if (check != total) {
            fprintf(stderr, "%s: corrupt messages (%llu of %llu right)\n", name, (unsigned long long)check, (unsigned long long)total);
            exit(1);
        }
        qsort(rates, SUBRUNS, sizeof rates[0], cmp_double);
        printf("value %s_throughput %.0f msg/s\n", name, rates[SUBRUNS / 2]);
        printf("value %s_best_slice_throughput %.0f msg/s\n", name, rates[SUBRUNS - 1]);
        printf("value %s_worst_slice_throughput %.0f msg/s\n", name, rates[0]);
        fflush(stdout);
    }
    free(message);
    free(out);
}

/* ---- ping-pong over two rings ---------------------------------------------------------------- */

static void pingpong(const char *name, long count, int runs, long warmup, enum commit mode)
{
    const uint64_t capacity = 64 * 1024;
    struct ring ping = ring_new(capacity, mode), pong = ring_new(capacity, mode);
    long total = warmup + count * runs;
    printf("# %s: 8 B messages over two rings (%s commit, 64 KiB each), parent CPU 0 sends and waits, child CPU 1 echoes; cc -O2 -march=native\n",
           name, mode == COMMIT_HEADER ? "header" : "tail");
    pid_t pid = fork_peer(0, 1);
    if (pid == 0) {
        struct consumer in = { .r = ping };
        struct producer out = { .r = pong, .batch = 1 };
        uint64_t message;
        for (long i = 0; i < total; i++) {
            consume(&in, &message, sizeof message);
            produce(&out, &message, sizeof message);
        }
        _exit(0);
    }

    struct producer out = { .r = ping, .batch = 1 };
    struct consumer in = { .r = pong };
    uint64_t *ns = malloc(sizeof *ns * (size_t)count);
    uint64_t seq = 0, echoed;
    for (int r = -1; r < runs; r++) {
        long n = r < 0 ? warmup : count;
        for (long k = 0; k < n; k++) {
            uint64_t t0 = now_ns();
            seq++;
            produce(&out, &seq, sizeof seq);
            consume(&in, &echoed, sizeof echoed);
            if (echoed != seq) {
                fprintf(stderr, "%s: echoed %llu for %llu\n", name, (unsigned long long)echoed, (unsigned long long)seq);
                exit(1);
            }
            if (r >= 0) {
                ns[k] = now_ns() - t0;
            }
        }
        if (r >= 0) {
            print_latency(name, ns, count);
        }
    }
    join_peer(pid);
    free(ns);
}

/* ---- one process: memcpy of blocks that miss the cache ---------------------------------------- */

static void memcpy_cold(long count, int runs, long warmup)
{
    const size_t block = 64 * 1024, span = (size_t)256 << 20; /* 8x the L3 per side: every block comes from DRAM */
    const size_t blocks = span / block;
    unsigned char *src = aligned_alloc(4096, span), *dst = aligned_alloc(4096, span);
    if (src == NULL || dst == NULL) {
        fprintf(stderr, "memcpy_cold: out of memory\n");
        exit(1);
    }
    /* Fault every page in first: a first touch costs ~10 us per 4 KiB page here, which is not a copy's cost. */
    memset(src, 0x5a, span);
    memset(dst, 0, span);
    printf("# c.memcpy_64KiB_cold: one process, memcpy of 64 KiB blocks walking 256 MiB source and destination regions "
           "(L3 32 MiB: every block misses), pages faulted in before timing; cc -O2 -march=native\n");
    size_t at = 0;
    uint64_t check = 0;
    for (int run = -1; run < runs; run++) {
        long n = run < 0 ? warmup : count;
        uint64_t t0 = now_ns();
        for (long k = 0; k < n; k++) {
            src[at * block] = (unsigned char)k; /* the copy's content changes, so it cannot be skipped */
            memcpy(dst + at * block, src + at * block, block);
            check += dst[at * block + block - 1];
            at = at + 1 < blocks ? at + 1 : 0;
        }
        uint64_t ns = now_ns() - t0;
        if (run >= 0) {
            printf("value c.memcpy_64KiB_cold_throughput %.0f msg/s\n", (double)n * 1e9 / (double)ns);
            fflush(stdout);
        }
    }
    if (check != (uint64_t)0x5a * (uint64_t)(warmup + (long)runs * count)) {
        fprintf(stderr, "memcpy_cold: wrong copy\n");
        exit(1);
    }
    free(src);
    free(dst);
}

int main(int argc, char **argv)
{
    long count, warmup;
    int runs;
    parse_args(argc, argv, "spsc|spsc_tail|spsc_batched|bandwidth|bandwidth_header|memcpy_cold|spin|spin_tail", &count, &runs, &warmup);
    g_cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    const uint64_t small_ring = SMALL_RING, big_ring = 8 * 1024 * 1024;
    const char *test = argv[1];
    if (strcmp(test, "spsc") == 0) {
        throughput("c.best_spsc_64B", count, runs, warmup, 64, small_ring, COMMIT_HEADER, 1);
    } else if (strcmp(test, "spsc_tail") == 0) {
        throughput("c.best_spsc_64B_tail", count, runs, warmup, 64, small_ring, COMMIT_TAIL, 1);
    } else if (strcmp(test, "spsc_batched") == 0) {
        throughput("c.best_spsc_64B_batched", count, runs, warmup, 64, small_ring, COMMIT_TAIL, BATCH);
    } else if (strcmp(test, "bandwidth") == 0) {
        throughput("c.best_spsc_64KiB", count, runs, warmup, 64 * 1024, big_ring, COMMIT_TAIL, 1);
    } else if (strcmp(test, "bandwidth_header") == 0) {
        throughput("c.best_spsc_64KiB_header", count, runs, warmup, 64 * 1024, big_ring, COMMIT_HEADER, 1);
    } else if (strcmp(test, "memcpy_cold") == 0) {
        memcpy_cold(count, runs, warmup);
    } else if (strcmp(test, "spin") == 0) {
        pingpong("c.best_spin_8B_rtt", count, runs, warmup, COMMIT_HEADER);
    } else if (strcmp(test, "spin_tail") == 0) {
        pingpong("c.best_spin_8B_tail_rtt", count, runs, warmup, COMMIT_TAIL);
    } else {
        fprintf(stderr, "unknown test %s\n", test);
        return 2;
    }
    return 0;
}
