/*
 * shmipc.c: the C peer of ShmIpc. Every offset, rule and ordering below comes from
 * native-notes/LAYOUT.md; section numbers (§) refer to it.
 *
 * Design:
 * - Shared words are touched only through the accessors below, whose names carry the ordering
 *   (ld_acq64 pairs with st_rel64 of the same word; cas64 / fadd32 / xchg32 are seq_cst RMWs, i.e. full
 *   fences). Plain stores are used only for bytes a later release store publishes.
 * - Segment: open + flock(LOCK_SH) held while mapped (§1), header validated in the order of §3.
 * - Waiting (§4): spin (yielding the core after ~2 us), then register in the sleeper count (seq_cst
 *   increment), re-check, sleep on the named semaphore with sem_clockwait(CLOCK_MONOTONIC) in slices. Every
 *   registration is settled exactly once (a consumed post, or settle()), so no post is ever left behind.
 *   Before each slice the kind-specific "before_sleep" checks peers (dead producer, dead reader, dead pipe
 *   end). Notifiers: full fence, read the count, post only when someone sleeps.
 * - Queue (§6): claim by CAS on the record's claim word, help Tail, commit by a release store of State;
 *   take by CAS on Reader; reclaim in order under ReclaimLock. A dead producer's record is abandoned,
 *   a dead reader's record released, a dead reclaimer's lock broken: each after proving death by
 *   pid + start time (§2), never by a timeout alone.
 * - Pipe (§5): SPSC rings, Tail/Head release stores, every length/position from the peer checked.
 */
#define _GNU_SOURCE
#include "shmipc.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the ShmIpc layout is little-endian"
#endif

/* ---------------------------------------------------------------- accessors (ordering in the name) */

#define A64(p) ((_Atomic int64_t *)(void *)(p))
#define A32(p) ((_Atomic int32_t *)(void *)(p))

static inline int64_t ld_acq64(const uint8_t *p) { return atomic_load_explicit(A64(p), memory_order_acquire); }
static inline void st_rel64(uint8_t *p, int64_t v) { atomic_store_explicit(A64(p), v, memory_order_release); }
static inline int32_t ld_acq32(const uint8_t *p) { return atomic_load_explicit(A32(p), memory_order_acquire); }
static inline void st_rel32(uint8_t *p, int32_t v) { atomic_store_explicit(A32(p), v, memory_order_release); }
static inline void st_plain64(uint8_t *p, int64_t v) { atomic_store_explicit(A64(p), v, memory_order_relaxed); }
/* Returns the value seen (== expected on success), like Interlocked.CompareExchange. */
static inline int64_t cas64(uint8_t *p, int64_t expected, int64_t desired)
{
    atomic_compare_exchange_strong_explicit(A64(p), &expected, desired, memory_order_seq_cst, memory_order_seq_cst);
    return expected;
}
static inline int32_t cas32(uint8_t *p, int32_t expected, int32_t desired)
{
    atomic_compare_exchange_strong_explicit(A32(p), &expected, desired, memory_order_seq_cst, memory_order_seq_cst);
    return expected;
}
static inline void full_fence(void) { atomic_thread_fence(memory_order_seq_cst); }

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Why the last failed open of this thread refused its object, naming it (shmipc_last_error). */
static _Thread_local char s_last_error[400];

const char *shmipc_last_error(void) { return s_last_error; }

static int refuse(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s_last_error, sizeof s_last_error, fmt, ap);
    va_end(ap);
    return rc;
}

static int64_t deadline_from(int64_t timeout_ns)
{
    if (timeout_ns < 0) return INT64_MAX;
    int64_t now = now_ns();
    return timeout_ns >= INT64_MAX - now ? INT64_MAX : now + timeout_ns;
}

const char *shmipc_strerror(int status)
{
    switch (status) {
    case SHMIPC_OK: return "ok";
    case SHMIPC_ETIMEOUT: return "timed out";
    case SHMIPC_ENOENT: return "no such object (segment or semaphore) of that name";
    case SHMIPC_EINVALID: return "invalid argument";
    case SHMIPC_ETOOLONG: return "message longer than the maximum";
    case SHMIPC_ETOOSMALL: return "buffer smaller than the next message";
    case SHMIPC_ECLOSED: return "the other end closed or died";
    case SHMIPC_EBUSY: return "busy (end already connected, or segment being removed)";
    case SHMIPC_EEXIST: return "a segment of that name exists";
    case SHMIPC_ECORRUPT: return "shared state is corrupted";
    case SHMIPC_ETRUNCATED: return "segment truncated";
    case SHMIPC_ENOTREADY: return "segment not initialised by its creator";
    case SHMIPC_EFOREIGN: return "not a ShmIpc segment";
    case SHMIPC_EVERSION: return "unsupported layout version";
    case SHMIPC_EWRONGKIND: return "segment of another kind";
    case SHMIPC_ESYS: return "system call failed (see errno)";
    case SHMIPC_ENOSEND: return "this end of a one-way pipe cannot do that";
    case SHMIPC_ESHUTDOWN: return "the queue has been shut down";
    case SHMIPC_EABANDONED: return "the lock's holder died holding it; the caller holds it now";
    case SHMIPC_ENOTHELD: return "the lock is not held by this process (or thread)";
    case SHMIPC_EBROKEN: return "the barrier is broken (a waiter timed out, a participant died, or it was reset)";
    default: return "unknown status";
    }
}

/* ---------------------------------------------------------------- §2 process identity */

/* What process_start_time returns when /proc/PID/stat exists but cannot be read (descriptor exhaustion,
 * hidepid, another pid namespace): the process counts as alive, it is never declared dead on a guess (§6.6). */
#define START_UNKNOWN UINT64_MAX

/* Start time (field 22 of /proc/PID/stat); 0 when the process is missing ("no such process"), a zombie or
 * dead; START_UNKNOWN when the file cannot be read for another reason. */
static uint64_t process_start_time(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT || errno == ENOTDIR || errno == ESRCH ? 0 : START_UNKNOWN;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int err = errno;
    close(fd);
    if (n < 0) return err == ESRCH ? 0 : START_UNKNOWN; /* ESRCH: it exited while we read */
    if (n == 0) return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* comm may contain spaces and ')' */
    if (!p || p[1] != ' ') return 0;
    p += 2;
    if (*p == 'Z' || *p == 'X') return 0; /* field 3: state */
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p) return 0;
        p++;
    }
    return strtoull(p, NULL, 10);
}

static uint64_t identity_word(int pid, uint64_t start)
{
    return ((uint64_t)(uint32_t)start << 32) | ((uint64_t)(uint32_t)pid << 5) | 1u;
}

static int is_identity_word(uint64_t w) { return (w & 0x1F) == 1 && ((uint32_t)w >> 5) != 0; }

/* Alive = /proc entry present, not a zombie, and the start time's low 32 bits (or none) match; or the
 * entry cannot be read (START_UNKNOWN). */
static int is_alive(int pid, uint64_t start, int start_bits)
{
    if (pid <= 0) return 0;
    uint64_t actual = process_start_time(pid);
    if (actual == 0) return 0;
    if (actual == START_UNKNOWN) return 1;
    uint64_t mask = start_bits == 0 ? 0 : start_bits == 32 ? 0xFFFFFFFFull : ~0ull;
    return (actual & mask) == (start & mask);
}

static int identity_alive(uint64_t word) { return is_alive((int)((uint32_t)word >> 5), word >> 32, 32); }

static int s_pid;
static uint64_t s_start, s_identity;

static int init_identity(void)
{
    int pid = getpid();
    if (pid != s_pid) {
        uint64_t start = process_start_time(pid);
        if (start == 0 || start == START_UNKNOWN) return SHMIPC_ESYS;
        s_pid = pid;
        s_start = start;
        s_identity = identity_word(pid, start);
    }
    return SHMIPC_OK;
}

/* ---------------------------------------------------------------- §1 names, §3 segments */

enum { HDR_SIZE = 128, MAX_SEMS = 8, KIND_QUEUE = 1, KIND_PIPE = 2 };
static const uint64_t MAGIC = 0x00004350494D4853ull; /* "SHMIPC\0\0" */

struct seg {
    uint8_t *base;
    size_t length;
    int fd;
    int creator;
    uint32_t nsems;
    sem_t *sems[MAX_SEMS];
    char name[256];
};

static int valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > 200 || name[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static void seg_path(char *out, size_t size, const char *name) { snprintf(out, size, "/dev/shm/shmipc.%s", name); }
static void sem_name(char *out, size_t size, const char *name, int i) { snprintf(out, size, "/shmipc.%s.s%d", name, i); }

static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static uint64_t fnv1a(const uint8_t *header)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 8; i < 120; i++) h = (h ^ header[i]) * 0x100000001b3ull;
    return h;
}

static void seg_close(struct seg *s, int unlink_names)
{
    for (uint32_t i = 0; i < s->nsems; i++) {
        if (s->sems[i]) sem_close(s->sems[i]);
        s->sems[i] = NULL;
    }
    if (unlink_names) {
        char path[300];
        seg_path(path, sizeof path, s->name);
        unlink(path);
        for (uint32_t i = 0; i < s->nsems; i++) {
            sem_name(path, sizeof path, s->name, (int)i);
            sem_unlink(path);
        }
    }
    if (s->base) munmap(s->base, s->length);
    if (s->fd >= 0) close(s->fd); /* drops the LOCK_SH */
    s->base = NULL;
    s->fd = -1;
}

/* §3: 2 since the queue's Shutdown word (§6.9); 3 for a queue with Features (§6.10, §6.11), whose feature bits
 * this peer then checks (§6.1); a reader refuses any other version. This peer creates only version-2 segments. */
#define LAYOUT_VERSION 2
#define LAYOUT_VERSION_FEATURES 3

/* Validation of §3, in its order. */
static int validate_header(const uint8_t *b, size_t file_length, uint32_t kind)
{
    if (file_length < HDR_SIZE) return SHMIPC_ETRUNCATED;
    uint64_t magic = (uint64_t)ld_acq64(b); /* pairs with the creator's release of Magic */
    if (magic == 0) return SHMIPC_ENOTREADY;
    if (magic != MAGIC) return SHMIPC_EFOREIGN;
    uint32_t version = rd32(b + 8);
    if (version != LAYOUT_VERSION && !(version == LAYOUT_VERSION_FEATURES && rd32(b + 12) == KIND_QUEUE)) return SHMIPC_EVERSION;
    if (fnv1a(b) != rd64(b + 120)) return SHMIPC_ECORRUPT;
    if (rd32(b + 12) != kind) return SHMIPC_EWRONGKIND;
    uint64_t total = rd64(b + 16), coff = rd64(b + 32), csize = rd64(b + 40), doff = rd64(b + 48), dsize = rd64(b + 56);
    if (rd32(b + 24) != HDR_SIZE) return SHMIPC_ECORRUPT;
    if (total != file_length) return total > file_length ? SHMIPC_ETRUNCATED : SHMIPC_ECORRUPT;
    if (coff != HDR_SIZE || csize % 128 != 0 || csize > total || doff != coff + csize || dsize > total || doff + dsize != total)
        return SHMIPC_ECORRUPT;
    if ((int32_t)rd32(b + 64) <= 0 || rd32(b + 68) > MAX_SEMS) return SHMIPC_ECORRUPT;
    return SHMIPC_OK;
}

static const char *kind_name(uint32_t kind)
{
    static const char *const names[] = {"?", "Queue", "Pipe", "SharedMemory", "Array", "Value", "Counter", "Lock", "Event",
                                        "Semaphore", "Condition", "Barrier"};
    return kind < sizeof names / sizeof names[0] ? names[kind] : kind == 0x7F ? "Raw" : "unknown";
}

static int seg_open(const char *name, uint32_t kind, struct seg *s)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    if (!valid_name(name)) return refuse(SHMIPC_EINVALID, "invalid name (1-200 of [A-Za-z0-9._-], not starting with '.')");
    int rc = init_identity();
    if (rc) return rc;
    snprintf(s->name, sizeof s->name, "%s", name);
    char path[300];
    seg_path(path, sizeof path, name);
    int64_t deadline = deadline_from(5000000000LL); /* a creator may be mid-way: give it 5 s, as .NET does */
    for (;;) {
        s->fd = open(path, O_RDWR | O_CLOEXEC);
        if (s->fd < 0) {
            rc = errno == ENOENT ? SHMIPC_ENOENT : SHMIPC_ESYS;
            return refuse(rc, "'%s' (%s): %s", name, kind_name(kind), shmipc_strerror(rc));
        }
        if (flock(s->fd, LOCK_SH | LOCK_NB) != 0) {
            close(s->fd);
            s->fd = -1;
            return refuse(SHMIPC_EBUSY, "'%s' is being removed by another process", name); /* the sweep holds LOCK_EX */
        }
        struct stat st;
        if (fstat(s->fd, &st) != 0) { rc = SHMIPC_ESYS; goto fail; }
        s->length = (size_t)st.st_size;
        if (s->length < HDR_SIZE) {
            rc = SHMIPC_ETRUNCATED;
        } else {
            s->base = mmap(NULL, s->length, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
            if (s->base == MAP_FAILED) { s->base = NULL; rc = SHMIPC_ESYS; goto fail; }
            rc = validate_header(s->base, s->length, kind);
            if (rc == SHMIPC_OK) break;
        }
        if (!(rc == SHMIPC_ENOTREADY || (rc == SHMIPC_ETRUNCATED && s->length < HDR_SIZE)) || now_ns() >= deadline) goto fail;
        seg_close(s, 0);
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
    s->nsems = rd32(s->base + 68);
    for (uint32_t i = 0; i < s->nsems; i++) {
        char sn[300];
        sem_name(sn, sizeof sn, name, (int)i);
        s->sems[i] = sem_open(sn, 0);
        if (s->sems[i] == SEM_FAILED) {
            s->sems[i] = NULL;
            rc = errno == ENOENT ? SHMIPC_ENOENT : SHMIPC_ESYS;
            goto fail;
        }
    }
    return SHMIPC_OK;
fail:
    if (rc == SHMIPC_EWRONGKIND && s->base)
        refuse(rc, "'%s' is a %s segment, expected %s", name, kind_name(rd32(s->base + 12)), kind_name(kind));
    else
        refuse(rc, "'%s' (%s): %s", name, kind_name(kind), shmipc_strerror(rc));
    seg_close(s, 0);
    return rc;
}

/* §3 "Creating": the caller initialises control and data, then calls seg_publish. */
static int seg_create(const char *name, uint32_t kind, uint64_t control_size, uint64_t data_size, uint32_t nsems, struct seg *s)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    if (!valid_name(name)) return SHMIPC_EINVALID;
    int rc = init_identity();
    if (rc) return rc;
    snprintf(s->name, sizeof s->name, "%s", name);
    char path[300];
    seg_path(path, sizeof path, name);
    uint64_t total = HDR_SIZE + control_size + data_size;
    s->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (s->fd < 0) return errno == EEXIST ? SHMIPC_EEXIST : SHMIPC_ESYS;
    s->creator = 1;
    if (fchmod(s->fd, 0600) != 0 || flock(s->fd, LOCK_SH) != 0 || ftruncate(s->fd, (off_t)total) != 0) goto sys;
    s->length = (size_t)total;
    s->base = mmap(NULL, s->length, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
    if (s->base == MAP_FAILED) { s->base = NULL; goto sys; }
    uint8_t *h = s->base; /* a fresh file is all zero: Magic stays 0 until seg_publish */
    wr32(h + 8, LAYOUT_VERSION);
    wr32(h + 12, kind);
    wr64(h + 16, total);
    wr32(h + 24, HDR_SIZE);
    wr32(h + 28, 0);
    wr64(h + 32, HDR_SIZE);
    wr64(h + 40, control_size);
    wr64(h + 48, HDR_SIZE + control_size);
    wr64(h + 56, data_size);
    wr32(h + 64, (uint32_t)s_pid);
    wr32(h + 68, nsems);
    wr64(h + 72, s_start);
    wr64(h + 120, fnv1a(h));
    s->nsems = nsems;
    for (uint32_t i = 0; i < nsems; i++) {
        char sn[300];
        sem_name(sn, sizeof sn, name, (int)i);
        sem_unlink(sn); /* a leftover would carry a stale count */
        s->sems[i] = sem_open(sn, O_CREAT | O_EXCL, 0600, 0);
        if (s->sems[i] == SEM_FAILED) { s->sems[i] = NULL; goto sys; }
    }
    return SHMIPC_OK;
sys:
    rc = SHMIPC_ESYS;
    {
        int saved = errno;
        seg_close(s, 1);
        errno = saved;
    }
    return rc;
}

static void seg_publish(struct seg *s) { st_rel64(s->base, (int64_t)MAGIC); }

/* ---------------------------------------------------------------- §4 waiting and waking */

struct signal {
    uint8_t *sleepers; /* int32 in the control block */
    sem_t *sem;
    int membarrier;    /* §4 asymmetric form: the segment is marked, a registration is followed by membarrier */
};

/* §4 asymmetric form, the waiter's half: membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) after registering, before the
 * re-check. 0 on success. This peer never skips its own notifier fence, so it needs no registration. */
static int sleeper_membarrier(void)
{
#ifdef SYS_membarrier
    return (int)syscall(SYS_membarrier, 1 << 1 /* MEMBARRIER_CMD_GLOBAL_EXPEDITED */, 0, 0);
#else
    return -1;
#endif
}

static void sem_post_checked(sem_t *sem)
{
    if (sem_post(sem) != 0 && errno != EOVERFLOW) { /* a saturated count already wakes everyone */ }
}

/* Notifier: after the publishing release store. */
static inline void notify(struct signal *sig)
{
    full_fence(); /* our publication before the read of the count; pairs with the waiter's increment */
    if (atomic_load_explicit(A32(sig->sleepers), memory_order_relaxed) != 0) {
        int32_t n = atomic_exchange_explicit(A32(sig->sleepers), 0, memory_order_seq_cst);
        if (n > 64) n = 64;
        for (int32_t i = 0; i < n; i++) sem_post_checked(sig->sem);
    }
}

/* A sleep of at most slice_ns: 1 woken (a post consumed), 0 timed out. EINTR retried against the same deadline. */
static int sem_sleep(sem_t *sem, int64_t slice_ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = ts.tv_nsec + slice_ns % 1000000000LL;
    ts.tv_sec += (time_t)(slice_ns / 1000000000LL + ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    for (;;) {
        if (sem_clockwait(sem, CLOCK_MONOTONIC, &ts) == 0) return 1;
        if (errno == ETIMEDOUT) return 0;
        if (errno != EINTR) return 0;
    }
}

/* §4 "Settling": every registration ends exactly once, by a consumed post or by this. Take it back (decrement
 * while positive; it may be another waiter's: the counts still match and that waiter gets the post meant for
 * us); if the count is 0, a notifier has exchanged our registration and is posting for it: consume that post,
 * waiting at most 10 ms (a notifier killed between its exchange and its post leaves nothing). A post left
 * behind would make every later sleep of this semaphore return at once. */
static void settle(struct signal *sig)
{
    int32_t cur = ld_acq32(sig->sleepers);
    while (cur > 0) {
        int32_t seen = cas32(sig->sleepers, cur, cur - 1);
        if (seen == cur) return;
        cur = seen;
    }
    sem_sleep(sig->sem, 10000000);
}

typedef int (*cond_fn)(void *ctx);          /* 1 when the condition holds */
typedef int (*before_sleep_fn)(void *ctx);  /* SHMIPC_OK, or a status that ends the wait */

/* Pure spinning lasts this long; after it the spinner yields its core every 16 polls (§4 step 1), so a peer
 * the scheduler put on the same core gets to run instead of waiting out the whole spin budget. */
#define SPIN_YIELD_AFTER_NS 2000

/* §4 waiter. Returns SHMIPC_OK (condition holds), SHMIPC_ETIMEOUT, or what before_sleep returned.
 * Nothing here can be cancelled, so slices are w->slice_ns (no wait of this peer is ever ended by a post). */
static int wait_for(struct signal *sig, const shmipc_wait *w, int64_t deadline, cond_fn cond, before_sleep_fn before, void *ctx)
{
    if (cond(ctx)) return SHMIPC_OK;
    int64_t start = now_ns(), spin_end = start + w->spin_ns, yield_from = start + SPIN_YIELD_AFTER_NS;
    if (spin_end > deadline) spin_end = deadline;
    for (unsigned i = 1; w->spin_ns > 0; i++) {
        cpu_relax();
        if (cond(ctx)) return SHMIPC_OK;
        if ((i & 15) == 0) {
            int64_t now = now_ns();
            if (now >= spin_end) break;
            if (now >= yield_from) sched_yield();
        }
    }
    for (;;) {
        int rc = before(ctx);
        if (rc != SHMIPC_OK) return rc;
        int64_t now = now_ns();
        if (now >= deadline) return cond(ctx) ? SHMIPC_OK : SHMIPC_ETIMEOUT;
        int64_t slice = w->slice_ns;
        if (deadline - now < slice) slice = deadline - now;
        atomic_fetch_add_explicit(A32(sig->sleepers), 1, memory_order_seq_cst); /* register: a full fence */
        /* Marked segment: publishers may skip their fence; the membarrier stands in for it. If the kernel refuses,
         * a wake may be missed: sleep at most 1 ms (§4, "a waiter that cannot"). */
        if (sig->membarrier && sleeper_membarrier() != 0 && slice > 1000000) slice = 1000000;
        if (cond(ctx)) {
            settle(sig);
            return SHMIPC_OK;
        }
        if (!sem_sleep(sig->sem, slice)) settle(sig); /* a consumed post settled it; a timeout did not */
        if (cond(ctx)) return SHMIPC_OK;
    }
}

static const shmipc_wait default_wait = {50000, 100000000};

/* ================================================================= §8 side segments (messages longer than the ring)
 *
 * Design: a message longer than the ring's MaxMessageLength goes into a side segment (Kind 12, no semaphores) and the
 * ring carries a reference record (queue kind 3, pipe type 3) naming it. State (control block +0) says who owns it:
 *   from         event                               to            who
 *   (new)        created                             0 writing     sender (side_create)
 *   0 writing    payload copied                      4 published   sender, release (side_publish): pairs with the take's CAS
 *   4 published  the ring record was not written     6 free        sender, CAS (side_unpublish)
 *   4 published  a consumer takes the ring record    its identity  consumer, CAS (side_read)
 *   identity     the consumer has read it            6 free        consumer, exchange (side_read)
 *   6 free / dead consumer's identity  reuse         0 writing     sender, CAS (side_try_reuse)
 * The name goes when neither needs it: the sender lets go by exchanging Retained to 0, then loads State; the consumer
 * exchanges State to 6, then loads Retained. Both RMWs are full fences (Dekker): at least one sees the other's store and
 * unlinks (both may; names are never reused). Each handle keeps its last sent segment (reused once it is free again) and
 * the mapping of its last received one (a sender that reuses its segment costs the reader no new mapping). */
enum {
    KIND_SIDE = 12, SD_CONTROL = 256, SD_STATE = 0, SD_LENGTH = 8, SD_RETAINED = 16, SD_HOSTLEN = 20, SD_HOSTNAME = 24,
    SD_WRITING = 0, SD_PUBLISHED = 4, SD_FREE = 6,
    SR_MAGIC = 0, SR_NAMELEN = 4, SR_LENGTH = 8, SR_NAME = 16, SR_MAX_NAME = 207, SR_MAX = SR_NAME + SR_MAX_NAME,
    SD_GROUP_ACCESS = 1, /* §3 header Flags bit 0: the host gives its group access, so does its side segment */
};
#define SIDE_RECORD_MAGIC 0x45444953u /* "SIDE" */
#define SIDE_GRANULARITY ((int64_t)1 << 20) /* made in 1 MiB steps, so messages of similar sizes reuse one segment */
#define SIDE_MAX_LENGTH ((int64_t)INT32_MAX) /* the longest a .NET peer reads */
#define SIDE_PREFIX "side-"

struct side {
    struct seg seg;
    uint8_t *ctl, *data;
    int64_t capacity;
};

static _Atomic uint64_t s_side_sequence;

static void side_unlink(struct side *s)
{
    char path[300];
    seg_path(path, sizeof path, s->seg.name);
    unlink(path);
}

static void side_unmap(struct side *s)
{
    if (!s) return;
    seg_close(&s->seg, 0);
    free(s);
}

static void side_bind(struct side *s)
{
    s->ctl = s->seg.base + HDR_SIZE;
    s->data = s->seg.base + rd64(s->seg.base + 48);
    s->capacity = (int64_t)rd64(s->seg.base + 56);
}

/* 0 writing, 6 free, or the identity of a consumer proved dead: nobody reads it, the sender may take it back. */
static int side_unused(uint64_t state)
{
    return state == SD_WRITING || state == SD_FREE || (is_identity_word(state) && !identity_alive(state));
}

/* §8.2: a new side segment of `capacity` data bytes for the host, in state 0, its memory allocated up front. */
static int side_create(const struct seg *host, int64_t capacity, struct side **out)
{
    *out = NULL;
    struct side *s = calloc(1, sizeof *s);
    if (!s) return SHMIPC_ESYS;
    int rc = SHMIPC_EEXIST;
    char name[96];
    for (int attempt = 0; rc == SHMIPC_EEXIST && attempt < 8; attempt++) { /* O_EXCL: a name someone holds is skipped */
        snprintf(name, sizeof name, SIDE_PREFIX "%d-%08x-%llu", s_pid, (uint32_t)s_start,
                 (unsigned long long)atomic_fetch_add(&s_side_sequence, 1) + 1);
        rc = seg_create(name, KIND_SIDE, SD_CONTROL, (uint64_t)capacity, 0, &s->seg);
    }
    if (rc) {
        free(s);
        return refuse(rc, "side segment of %lld bytes for '%s': %s", (long long)capacity, host->name, strerror(errno));
    }
    uint8_t *h = s->seg.base;
    if (rd32(host->base + 28) & SD_GROUP_ACCESS) {
        wr32(h + 28, SD_GROUP_ACCESS);
        wr64(h + 120, fnv1a(h));
        fchmod(s->seg.fd, 0660);
    }
    int err = posix_fallocate(s->seg.fd, 0, (off_t)s->seg.length); /* a full /dev/shm fails here, never as a SIGBUS */
    if (err) {
        seg_close(&s->seg, 1);
        free(s);
        errno = err;
        return refuse(SHMIPC_ESYS, "side segment of %lld bytes for '%s': posix_fallocate: %s", (long long)capacity, host->name,
                      strerror(err));
    }
    side_bind(s);
    char host_os[300];
    int host_len = snprintf(host_os, sizeof host_os, "shmipc.%s", host->name);
    if (host_len > SD_CONTROL - SD_HOSTNAME) host_len = SD_CONTROL - SD_HOSTNAME;
    wr32(s->ctl + SD_RETAINED, 1);
    wr32(s->ctl + SD_HOSTLEN, (uint32_t)host_len);
    memcpy(s->ctl + SD_HOSTNAME, host_os, (size_t)host_len);
    seg_publish(&s->seg);
    *out = s;
    return SHMIPC_OK;
}

/* Sender: not cached any more. Retained 1 -> 0 (exchange, a full fence), then State: unlinked if nobody reads it. */
static void side_let_go(struct side *s)
{
    if (!s) return;
    atomic_exchange_explicit(A32(s->ctl + SD_RETAINED), 0, memory_order_seq_cst);
    if (side_unused((uint64_t)ld_acq64(s->ctl + SD_STATE))) side_unlink(s);
    side_unmap(s);
}

/* Sender: a segment in state 0 holding `message`, published (State 4, release); the cached one when it is free and
 * big enough, else a new one (the old one let go). The caller writes the ring record next. */
static int side_publish(struct side **cache, const struct seg *host, const void *message, size_t length, struct side **out)
{
    struct side *s = *cache;
    *cache = NULL;
    if (s) {
        uint64_t state = (uint64_t)ld_acq64(s->ctl + SD_STATE);
        if (s->capacity < (int64_t)length || !side_unused(state) || (uint64_t)cas64(s->ctl + SD_STATE, (int64_t)state, SD_WRITING) != state) {
            side_let_go(s);
            s = NULL;
        }
    }
    if (!s) {
        int64_t capacity = ((int64_t)length + SIDE_GRANULARITY - 1) & ~(SIDE_GRANULARITY - 1);
        int rc = side_create(host, capacity, &s);
        if (rc) return rc;
    }
    memcpy(s->data, message, length);
    st_plain64(s->ctl + SD_LENGTH, (int64_t)length);
    st_rel64(s->ctl + SD_STATE, SD_PUBLISHED); /* pairs with the consumer's CAS: payload and Length first */
    *out = s;
    return SHMIPC_OK;
}

/* Sender, after the ring write: kept for the next large message; unpublished first when its record was not written. */
static void side_keep(struct side **cache, struct side *s, int written)
{
    if (!written) cas64(s->ctl + SD_STATE, SD_PUBLISHED, SD_FREE);
    side_let_go(*cache);
    *cache = s;
}

/* §8.1: the reference record for s holding length bytes, into rec (SR_MAX bytes); its size. */
static int32_t side_record(const struct side *s, size_t length, uint8_t *rec)
{
    char os_name[300];
    int n = snprintf(os_name, sizeof os_name, "shmipc.%s", s->seg.name);
    wr32(rec + SR_MAGIC, SIDE_RECORD_MAGIC);
    wr32(rec + SR_NAMELEN, (uint32_t)n);
    wr64(rec + SR_LENGTH, (uint64_t)length);
    memcpy(rec + SR_NAME, os_name, (size_t)n);
    return SR_NAME + n;
}

/* Sends a message longer than the ring (§8.3): publishes it in a side segment, writes the reference record through
 * write_record (waiting for room as for any message), and keeps the segment (unpublished when the record was not written). */
typedef int (*side_record_writer)(void *endpoint, const void *record, size_t length, int64_t timeout_ns);
static int side_send(struct side **cache, const struct seg *host, const void *message, size_t length, side_record_writer write_record,
                     void *endpoint, int64_t timeout_ns)
{
    struct side *s;
    int rc = side_publish(cache, host, message, length, &s);
    if (rc) return rc;
    uint8_t rec[SR_MAX];
    int32_t rec_len = side_record(s, length, rec);
    rc = write_record(endpoint, rec, (size_t)rec_len, timeout_ns);
    side_keep(cache, s, rc == SHMIPC_OK);
    return rc;
}

/* The message length a reference record of rec_len bytes announces, or -1 when it is malformed (a bad magic, a name
 * length out of 1..207 or past the record, a length past SIDE_MAX_LENGTH). Read before the ring record is taken. */
static int64_t side_announced(const uint8_t *rec, int32_t rec_len)
{
    if (rec_len < SR_NAME || rd32(rec + SR_MAGIC) != SIDE_RECORD_MAGIC) return -1;
    int32_t name_len = (int32_t)rd32(rec + SR_NAMELEN);
    int64_t length = (int64_t)rd64(rec + SR_LENGTH);
    if (name_len < 1 || name_len > SR_MAX_NAME || SR_NAME + name_len > rec_len || length < 0 || length > SIDE_MAX_LENGTH) return -1;
    return length;
}

/* Consumer (§8.3), after it took the ring record whose payload is rec (a copy): opens the named segment (or reuses the
 * mapping of the last one), CAS State 4 -> our identity, copies Length bytes into buffer (NULL: discards them), State
 * -> 6 (exchange), and unlinks it when its sender let go. Every field is checked against the record and the mapping: a
 * name that is not a side segment's, a hostile length, a state that is not "published" is SHMIPC_ECORRUPT. */
static int side_read(struct side **cache, const char *host, const uint8_t *rec, int32_t rec_len, void *buffer, size_t capacity,
                     size_t *length)
{
    int64_t announced = side_announced(rec, rec_len);
    if (announced < 0) return refuse(SHMIPC_ECORRUPT, "'%s': a malformed side-segment record of %d bytes", host, rec_len);
    char os_name[SR_MAX_NAME + 1];
    int32_t name_len = (int32_t)rd32(rec + SR_NAMELEN);
    memcpy(os_name, rec + SR_NAME, (size_t)name_len);
    os_name[name_len] = 0;
    const char *name = os_name + 7; /* past "shmipc." */
    if (strncmp(os_name, "shmipc." SIDE_PREFIX, 7 + sizeof SIDE_PREFIX - 1) != 0 || !valid_name(name))
        return refuse(SHMIPC_ECORRUPT, "'%s': a side-segment record names '%s', not a side segment", host, os_name);
    struct side *s = *cache;
    *cache = NULL;
    if (s && strcmp(s->seg.name, name) != 0) {
        side_unmap(s);
        s = NULL;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return SHMIPC_ESYS;
        int rc = seg_open(name, KIND_SIDE, &s->seg);
        if (rc) {
            free(s);
            return refuse(rc == SHMIPC_ENOENT ? SHMIPC_ECORRUPT : rc, "'%s': side segment '%s' of a message: %s; that message is lost",
                          host, os_name, shmipc_strerror(rc));
        }
        uint64_t control_size = rd64(s->seg.base + 40);
        if (control_size < SD_CONTROL) {
            side_unmap(s);
            return refuse(SHMIPC_ECORRUPT, "'%s': side segment '%s' has a control block of %llu bytes", host, os_name,
                          (unsigned long long)control_size);
        }
        side_bind(s);
    }
    uint64_t found = (uint64_t)cas64(s->ctl + SD_STATE, SD_PUBLISHED, (int64_t)s_identity);
    if (found != SD_PUBLISHED) {
        *cache = s;
        return refuse(SHMIPC_ECORRUPT, "'%s': side segment '%s' holds no published message (state 0x%llx)", host, os_name,
                      (unsigned long long)found);
    }
    int64_t stored = ld_acq64(s->ctl + SD_LENGTH);
    int rc = SHMIPC_OK;
    if (stored != announced || stored > s->capacity)
        rc = refuse(SHMIPC_ECORRUPT, "'%s': side segment '%s' holds %lld bytes in %lld, its record announced %lld", host, os_name,
                    (long long)stored, (long long)s->capacity, (long long)announced);
    else if (buffer && (size_t)stored > capacity)
        rc = SHMIPC_ETOOSMALL; /* the caller checked the announced length: only a peer that lied gets here */
    else if (buffer)
        memcpy(buffer, s->data, (size_t)stored);
    if (length) *length = (size_t)stored;
    atomic_exchange_explicit(A64(s->ctl + SD_STATE), SD_FREE, memory_order_seq_cst);
    if (ld_acq32(s->ctl + SD_RETAINED) == 0) side_unlink(s);
    *cache = s;
    return rc;
}

/* ================================================================= §6 Queue */

enum {
    Q_CONTROL = 768, Q_CAP = 0, Q_MAXLEN = 8, Q_ALIGN = 12, Q_SHUTDOWN = 16, Q_FEATURES = 20, Q_MAX_DELIVERIES = 24, Q_REDELIVERIES = 264, Q_ACKNOWLEDGED = 1, Q_ASYMMETRIC_FENCE = 4, Q_TAIL = 128, Q_READ = 256, Q_HEAD = 384, Q_LOCK = 392,
    Q_DATA_SLEEPERS = 512, Q_SPACE_SLEEPERS = 640, Q_SEMAPHORES = 2,
    R_CLAIM = 0, R_STATE = 8, R_READER = 16, R_PRODUCER = 24, R_HEADER = 32, R_ALIGN = 32,
    K_MESSAGE = 1, K_PADDING = 2, K_SIDE = 3, /* §8: a kind-3 record's payload names a side segment */
    S_WRITING = 0, S_COMMITTED = 1, S_CONSUMED = 2, S_ABANDONED = 3,
};
#define MAX_ENCODABLE ((1 << 27) - 1)
/* §6.1: a record of the longest message, and so any wrap padding in front of it, fits the 27-bit length. */
#define MAX_MESSAGE_LIMIT (MAX_ENCODABLE - 63)

struct shmipc_queue {
    struct seg seg;
    uint8_t *ctl, *data;
    int64_t cap, mask;
    int64_t offmask; /* mask & ~31: even a garbage position gives an aligned offset inside the data region */
    int32_t maxlen;
    int64_t cached_head;
    struct signal data_sig, space_sig;
    shmipc_wait wait;
    int acknowledged;           /* §6.10: Features bit 0 */
    int hold;                   /* q_take leaves the record taken (a take, not a get) */
    int64_t held;               /* the position q_take left taken */
    int64_t redeliveries_seen;  /* Redeliveries at our last scan that found nothing to retake */
    struct side *side_sent;     /* §8: the side segment of our last large message, kept for reuse */
    struct side *side_read;     /* §8: the mapping of the last side segment we read */
};

static inline int64_t q_record_size(int64_t len) { return (32 + len + 31) & ~(int64_t)31; }
static inline uint64_t free_stamp(int64_t p) { return ~(uint64_t)p; }
static inline uint64_t tag_of(int64_t p) { return (uint32_t)(p >> 5); }
static inline uint64_t state_word(int64_t p, uint32_t s) { return (tag_of(p) << 32) | s; }
static inline uint64_t claim_word(uint32_t kind, int32_t len, int pid)
{
    return kind | ((uint64_t)(uint32_t)len << 5) | ((uint64_t)(uint32_t)pid << 32);
}
static inline uint8_t *q_record(const shmipc_queue *q, int64_t p) { return q->data + (p & q->offmask); }

/* §6.3: a claim word is valid at an offset with to_end bytes before the wrap. */
static int decode_claim(const shmipc_queue *q, uint64_t w, int64_t to_end, uint32_t *kind, int32_t *len, int64_t *size)
{
    *kind = (uint32_t)w & 31;
    *len = (int32_t)(((uint32_t)w >> 5) & MAX_ENCODABLE);
    if (*kind == K_MESSAGE || *kind == K_SIDE) {
        *size = q_record_size(*len);
        return *len <= (*kind == K_MESSAGE ? q->maxlen : SR_MAX) && *size <= to_end;
    }
    *size = *len;
    return *kind == K_PADDING && *len == to_end && *len > 0;
}

/* §6.5: Claim, Reader, ProducerIdentity plain, then State with release, last: a consumer that loads State
 * (acquire) and then Claim sees the Claim that goes with that State or a newer one (§6.4). Last unit first
 * (§6.6): the first unit's Claim, the record's size, is overwritten last, so a reclaimer killed half-way never
 * leaves payload bytes behind a free-stamped first unit. */
static void stamp_free(shmipc_queue *q, int64_t position, int64_t size)
{
    for (int64_t x = position + size - R_ALIGN; x >= position; x -= R_ALIGN) {
        uint8_t *u = q_record(q, x);
        int64_t next = x + q->cap;
        st_rel64(u + R_CLAIM, (int64_t)free_stamp(next)); /* release: the later units' stamps are seen first */
        st_plain64(u + R_READER, (int64_t)free_stamp(next));
        st_plain64(u + R_PRODUCER, 0);
        st_rel64(u + R_STATE, (int64_t)state_word(next, S_WRITING));
    }
}

static int q_init(shmipc_queue *q)
{
    q->ctl = q->seg.base + HDR_SIZE;
    q->data = q->ctl + rd64(q->seg.base + 40);
    q->cap = (int64_t)rd64(q->ctl + Q_CAP);
    q->mask = q->cap - 1;
    q->offmask = q->mask & ~(int64_t)(R_ALIGN - 1);
    q->maxlen = (int32_t)rd32(q->ctl + Q_MAXLEN);
    int marked = (rd32(q->ctl + Q_FEATURES) & Q_ASYMMETRIC_FENCE) != 0; /* §4 asymmetric form */
    q->data_sig = (struct signal){q->ctl + Q_DATA_SLEEPERS, q->seg.sems[0], marked};
    q->space_sig = (struct signal){q->ctl + Q_SPACE_SLEEPERS, q->seg.sems[1], marked};
    q->wait = default_wait;
    q->cached_head = ld_acq64(q->ctl + Q_HEAD);
    q->acknowledged = (rd32(q->ctl + Q_FEATURES) & Q_ACKNOWLEDGED) != 0;
    return SHMIPC_OK;
}

int shmipc_queue_open(const char *name, shmipc_queue **out)
{
    *out = NULL;
    shmipc_queue *q = calloc(1, sizeof *q);
    if (!q) return SHMIPC_ESYS;
    int rc = seg_open(name, KIND_QUEUE, &q->seg);
    if (rc) { free(q); return rc; }
    /* §6.1 control block validation. */
    uint8_t *b = q->seg.base, *ctl = b + HDR_SIZE;
    uint64_t csize = rd64(b + 40), dsize = rd64(b + 56);
    int64_t cap = (int64_t)rd64(ctl + Q_CAP);
    int32_t maxlen = (int32_t)rd32(ctl + Q_MAXLEN), align = (int32_t)rd32(ctl + Q_ALIGN);
    rc = SHMIPC_ECORRUPT;
    if (q->seg.nsems != Q_SEMAPHORES || csize < Q_CONTROL) goto bad;
    if (cap < 4096 || cap > (1LL << 30) || (cap & (cap - 1)) != 0 || (uint64_t)cap != dsize) goto bad;
    if (maxlen < 0 || maxlen > MAX_MESSAGE_LIMIT || q_record_size(maxlen) > cap / 2) goto bad;
    if (align != R_ALIGN) goto bad;
    int32_t shut = ld_acq32(ctl + Q_SHUTDOWN);
    if (shut < 0 || shut > 2) goto bad;
    if ((rd32(ctl + Q_FEATURES) & ~(uint32_t)(Q_ACKNOWLEDGED | Q_ASYMMETRIC_FENCE)) != 0) goto bad; /* §6.10, §4: bits this peer does not know */
    int64_t head = ld_acq64(ctl + Q_HEAD), read = ld_acq64(ctl + Q_READ), tail = ld_acq64(ctl + Q_TAIL);
    if (head < 0 || head > read || read > tail || ((head | read | tail) & (R_ALIGN - 1)) != 0) goto bad;
    q_init(q);
    *out = q;
    return SHMIPC_OK;
bad:
    seg_close(&q->seg, 0);
    free(q);
    return rc;
}

int shmipc_queue_create(const char *name, int64_t capacity, int32_t max_message_length, shmipc_queue **out)
{
    *out = NULL;
    if (capacity < 4096 || capacity > (1LL << 30) || (capacity & (capacity - 1)) != 0) return SHMIPC_EINVALID;
    int64_t largest = capacity / 2 - 32;
    int64_t maxlen = max_message_length < 0 ? (largest < 65536 ? largest : 65536) : max_message_length;
    if (maxlen > largest || maxlen > MAX_MESSAGE_LIMIT) return SHMIPC_EINVALID;
    shmipc_queue *q = calloc(1, sizeof *q);
    if (!q) return SHMIPC_ESYS;
    int rc = seg_create(name, KIND_QUEUE, Q_CONTROL, (uint64_t)capacity, Q_SEMAPHORES, &q->seg);
    if (rc) { free(q); return rc; }
    uint8_t *ctl = q->seg.base + HDR_SIZE;
    wr64(ctl + Q_CAP, (uint64_t)capacity);
    wr32(ctl + Q_MAXLEN, (uint32_t)maxlen);
    wr32(ctl + Q_ALIGN, R_ALIGN);
    q_init(q);
    stamp_free(q, -capacity, capacity); /* lap 0: the unit at offset o gets the stamps of position o */
    seg_publish(&q->seg);               /* release: control block and stamps before Magic */
    *out = q;
    return SHMIPC_OK;
}

int32_t shmipc_queue_max_message_length(const shmipc_queue *q) { return q->maxlen; }
void shmipc_queue_set_wait(shmipc_queue *q, shmipc_wait wait) { q->wait = wait; }

void shmipc_queue_close(shmipc_queue *q)
{
    if (!q) return;
    side_let_go(q->side_sent);
    side_unmap(q->side_read);
    seg_close(&q->seg, q->seg.creator);
    free(q);
}

/* §6.5. Returns bytes freed (and then has notified s1); blocked_at and blocked_reader name a taken-but-unfinished
 * record it stopped at. Walks only up to min(ReadPosition, Tail): a consumer may skip a padding record a moment
 * before Tail is advanced past it. Head and the lock are released by CAS, so a holder wrongly taken for dead can
 * neither move Head backwards nor release somebody else's lock. */
static int64_t q_reclaim(shmipc_queue *q, int64_t *blocked_at, uint64_t *blocked_reader, int *corrupt)
{
    if (blocked_at) *blocked_at = -1;
    if (ld_acq64(q->ctl + Q_READ) - ld_acq64(q->ctl + Q_HEAD) <= 0) return 0;
    if (cas64(q->ctl + Q_LOCK, 0, (int64_t)s_identity) != 0) return 0;
    int64_t start = ld_acq64(q->ctl + Q_HEAD), h = start;
    if ((start & (R_ALIGN - 1)) != 0) {
        *corrupt = 1;
    } else {
        int64_t r = ld_acq64(q->ctl + Q_READ), t = ld_acq64(q->ctl + Q_TAIL);
        if (t < r) r = t;
        while (h < r) {
            int64_t off = h & q->offmask;
            uint8_t *rec = q->data + off;
            uint32_t kind; int32_t len; int64_t size;
            uint64_t claim = (uint64_t)ld_acq64(rec + R_CLAIM);
            if (claim == free_stamp(h + q->cap)) {
                /* already free for the next lap: a reclaimer died here (§6.6); finish the unit, step over it */
                stamp_free(q, h, R_ALIGN);
                h += R_ALIGN;
                continue;
            }
            if (!decode_claim(q, claim, q->cap - off, &kind, &len, &size)) { *corrupt = 1; break; }
            if (kind != K_PADDING) {
                uint64_t st = (uint64_t)ld_acq64(rec + R_STATE);
                if ((st >> 32) != tag_of(h) || (uint32_t)st == S_WRITING) { *corrupt = 1; break; }
                if ((uint32_t)st == S_COMMITTED) {
                    if (blocked_at) { *blocked_at = h; *blocked_reader = (uint64_t)ld_acq64(rec + R_READER); }
                    break;
                }
            }
            if (h + size > r) { *corrupt = 1; break; } /* a record reaching past the read position */
            stamp_free(q, h, size);
            h += size;
        }
    }
    if (h != start) cas64(q->ctl + Q_HEAD, start, h); /* stamps before Head: pairs with producers' acquire of Head */
    cas64(q->ctl + Q_LOCK, (int64_t)s_identity, 0);
    if (h != start) notify(&q->space_sig);
    return h - start;
}

/* §6.3 claim. Position, -1 when full, or SHMIPC_ECORRUPT (< -1). */
static int64_t q_claim(shmipc_queue *q, int32_t len, uint32_t kind)
{
    int64_t need = q_record_size(len);
    int reclaimed = 0;
    for (;;) {
        int64_t t = ld_acq64(q->ctl + Q_TAIL);
        if ((t & (R_ALIGN - 1)) != 0) return SHMIPC_ECORRUPT; /* positions are multiples of 32 */
        int64_t off = t & q->offmask, to_end = q->cap - off;
        int wrap = need > to_end;
        int64_t size = wrap ? to_end : need;
        int64_t h = q->cached_head;
        if (t + size > h + q->cap || t < h) {
            h = q->cached_head = ld_acq64(q->ctl + Q_HEAD);
            if (t < h) {
                /* our t is stale (Head moved past it), unless Tail itself is behind Head */
                if (ld_acq64(q->ctl + Q_TAIL) < ld_acq64(q->ctl + Q_HEAD)) return SHMIPC_ECORRUPT;
                continue;
            }
        }
        if (t + size > h + q->cap) {
            int corrupt = 0;
            if (!reclaimed && q_reclaim(q, NULL, NULL, &corrupt) > 0) { reclaimed = 1; continue; }
            if (corrupt) return SHMIPC_ECORRUPT;
            return -1;
        }
        uint8_t *rec = q->data + off;
        uint64_t stamp = free_stamp(t);
        uint64_t seen = (uint64_t)ld_acq64(rec + R_CLAIM);
        if (seen != stamp) { /* claimed by someone else first: help Tail past it */
            uint32_t k; int32_t l; int64_t sz;
            if (decode_claim(q, seen, to_end, &k, &l, &sz)) cas64(q->ctl + Q_TAIL, t, t + sz);
            else if (ld_acq64(q->ctl + Q_TAIL) == t) return SHMIPC_ECORRUPT;
            continue;
        }
        uint64_t mine = wrap ? claim_word(K_PADDING, (int32_t)to_end, s_pid) : claim_word(kind, len, s_pid);
        if ((uint64_t)cas64(rec + R_CLAIM, (int64_t)stamp, (int64_t)mine) != stamp) continue;
        if (!wrap) st_plain64(rec + R_PRODUCER, (int64_t)s_identity); /* read only for liveness */
        cas64(q->ctl + Q_TAIL, t, t + size); /* failure: a helper did it */
        if (!wrap) return t;
    }
}

int64_t shmipc_queue_claim_only(shmipc_queue *q, int32_t length)
{
    if (length < 0 || length > q->maxlen) return SHMIPC_ETOOLONG;
    return q_claim(q, length, K_MESSAGE);
}

static int q_has_space(shmipc_queue *q, int32_t len)
{
    int64_t h = ld_acq64(q->ctl + Q_HEAD), t = ld_acq64(q->ctl + Q_TAIL);
    int64_t need = q_record_size(len), to_end = q->cap - (t & q->offmask);
    return t + (need > to_end ? to_end + need : need) <= h + q->cap;
}

struct q_put_ctx { shmipc_queue *q; int32_t len; };

/* §6.9: the Shutdown word (acquire): 0 open, 1 shut down (drain), 2 shut down immediately. */
static inline int32_t q_shutdown(const shmipc_queue *q) { return ld_acq32(q->ctl + Q_SHUTDOWN); }

int shmipc_queue_shutdown_state(const shmipc_queue *q) { return q_shutdown(q); }

int shmipc_queue_shutdown(shmipc_queue *q, int immediate)
{
    int32_t want = immediate ? 2 : 1, seen = q_shutdown(q);
    while (seen < want) {
        int32_t found = cas32(q->ctl + Q_SHUTDOWN, seen, want); /* upward only; a full fence */
        if (found == seen) break;
        seen = found;
    }
    /* every sleeper's condition now holds: wake them all, in every process */
    notify(&q->data_sig);
    notify(&q->space_sig);
    return SHMIPC_OK;
}

/* ---- §6.10 acknowledged delivery */
enum { TAKE_OK = 0, TAKE_EMPTY = 1, TAKE_PENDING = 2 }; /* q_take's results (§6.4) */
static int q_take_or_shutdown(shmipc_queue *q, void *buffer, size_t capacity, size_t *length);
static int q_readable_cond(void *c);
static int q_readable_before_sleep(void *c);

static uint64_t deliveries_word(int64_t p, uint32_t n) { return (tag_of(p) << 32) | ((uint64_t)n << 5) | 5; }

/* The deliveries begun for the record at p by its Deliveries word: 1 unless it is one tagged for p. */
static uint32_t deliveries_of(uint64_t w, int64_t p)
{
    uint32_t n = (uint32_t)w >> 5;
    return (w & 0x1F) == 5 && (w >> 32) == tag_of(p) && n > 0 ? n : 1;
}

/* Visits the message records of [Head, min(ReadPosition, Tail)) (State, Claim, State: a record reclaimed under the
 * scan restarts it at the new Head). visit returns nonzero to stop; so does q_scan then. */
static int q_scan(shmipc_queue *q, int (*visit)(shmipc_queue *, int64_t, uint8_t *, uint32_t, int32_t, void *), void *arg)
{
    int64_t p = ld_acq64(q->ctl + Q_HEAD), t = ld_acq64(q->ctl + Q_TAIL), r = ld_acq64(q->ctl + Q_READ);
    int64_t limit = r < t ? r : t;
    for (int64_t steps = q->cap / R_ALIGN + 1; p < limit && steps > 0; steps--) {
        int64_t off = p & q->offmask;
        uint8_t *rec = q->data + off;
        uint64_t st = (uint64_t)ld_acq64(rec + R_STATE), w = (uint64_t)ld_acq64(rec + R_CLAIM);
        uint32_t kind; int32_t len; int64_t size;
        if ((st >> 32) != tag_of(p) || !decode_claim(q, w, q->cap - off, &kind, &len, &size)
            || (uint64_t)ld_acq64(rec + R_STATE) != st) {
            int64_t h = ld_acq64(q->ctl + Q_HEAD);
            if (h > p) { p = h; continue; }
            return 0;
        }
        if (kind == K_MESSAGE && visit(q, p, rec, (uint32_t)st, len, arg)) return 1;
        p += size;
    }
    return 0;
}

/* Reader taker -> Released(n), then Redeliveries += 1 and notify s0. 1 when released. */
static int q_release(shmipc_queue *q, int64_t p, uint64_t taker)
{
    uint8_t *rec = q_record(q, p);
    if ((uint64_t)ld_acq64(rec + R_STATE) != state_word(p, S_COMMITTED) || (uint64_t)ld_acq64(rec + R_READER) != taker) return 0;
    uint32_t n = deliveries_of((uint64_t)ld_acq64(rec + R_PRODUCER), p);
    if ((uint64_t)cas64(rec + R_READER, (int64_t)taker, (int64_t)(((uint64_t)n << 5) | 4)) != taker) return 0;
    atomic_fetch_add_explicit(A64(q->ctl + Q_REDELIVERIES), 1, memory_order_seq_cst);
    notify(&q->data_sig);
    return 1;
}

static int visit_dead_taker(shmipc_queue *q, int64_t p, uint8_t *rec, uint32_t state, int32_t len, void *arg)
{
    (void)len;
    uint64_t reader = (uint64_t)ld_acq64(rec + R_READER);
    if (state == S_COMMITTED && is_identity_word(reader) && reader != s_identity && !identity_alive(reader))
        *(int *)arg += q_release(q, p, reader);
    return 0;
}

static int q_release_dead_takers(shmipc_queue *q)
{
    int released = 0;
    q_scan(q, visit_dead_taker, &released);
    return released;
}

struct retake { void *buffer; size_t capacity; size_t *length; int64_t position; uint32_t count; };

static int visit_released(shmipc_queue *q, int64_t p, uint8_t *rec, uint32_t state, int32_t len, void *arg)
{
    struct retake *x = arg;
    uint64_t reader = (uint64_t)ld_acq64(rec + R_READER);
    if (state != S_COMMITTED || (reader & 0x1F) != 4 || (reader >> 32) != 0 || (size_t)len > x->capacity) return 0;
    uint32_t n = (uint32_t)reader >> 5;
    uint32_t max_deliveries = rd32(q->ctl + Q_MAX_DELIVERIES);
    if (max_deliveries != 0 && n >= max_deliveries) return 0; /* due for the dead-letter queue: left for a .NET consumer */
    for (;;) { /* raise Deliveries to n + 1 before the Reader CAS (§6.10) */
        int64_t d = ld_acq64(rec + R_PRODUCER);
        if (((uint64_t)d & 0x1F) == 5 && ((uint64_t)d >> 32) == tag_of(p) && ((uint32_t)d >> 5) >= n + 1) break;
        if (cas64(rec + R_PRODUCER, d, (int64_t)deliveries_word(p, n + 1)) == d) break;
    }
    if ((uint64_t)cas64(rec + R_READER, (int64_t)reader, (int64_t)s_identity) != reader) return 0;
    memcpy(x->buffer, rec + R_HEADER, (size_t)len);
    *x->length = (size_t)len;
    x->position = p;
    x->count = n + 1;
    return 1;
}

/* A released record taken by us (1), when Redeliveries moved since our last scan that found nothing. */
static int q_retake(shmipc_queue *q, struct retake *x)
{
    int64_t seen = ld_acq64(q->ctl + Q_REDELIVERIES);
    if (seen == q->redeliveries_seen) return 0;
    if (q_scan(q, visit_released, x)) return 1;
    q->redeliveries_seen = seen;
    return 0;
}

int shmipc_queue_ack(shmipc_queue *q, const shmipc_delivery *d)
{
    uint8_t *rec = q_record(q, d->position);
    if ((uint64_t)ld_acq64(rec + R_STATE) != state_word(d->position, S_COMMITTED) || (uint64_t)ld_acq64(rec + R_READER) != s_identity)
        return SHMIPC_ENOTHELD;
    st_rel64(rec + R_STATE, (int64_t)state_word(d->position, S_CONSUMED));
    notify(&q->space_sig);
    return SHMIPC_OK;
}

int shmipc_queue_nack(shmipc_queue *q, const shmipc_delivery *d)
{
    return q_release(q, d->position, s_identity) ? SHMIPC_OK : SHMIPC_ENOTHELD;
}

int shmipc_queue_take(shmipc_queue *q, void *buffer, size_t capacity, size_t *length, int64_t timeout_ns, shmipc_delivery *d)
{
    if (!q->acknowledged) return SHMIPC_EINVALID;
    int64_t deadline = timeout_ns == 0 ? 0 : deadline_from(timeout_ns);
    for (;;) {
        struct retake x = {buffer, capacity, length, 0, 0};
        if (q_shutdown(q) != 2 && q_retake(q, &x)) {
            d->position = x.position;
            d->delivery_count = (int32_t)x.count;
            return SHMIPC_OK;
        }
        q->hold = 1;
        int rc = q_take_or_shutdown(q, buffer, capacity, length);
        q->hold = 0;
        if (rc == TAKE_OK) {
            d->position = q->held;
            /* §6.10: 1, or the count a dead letter was enqueued with (its Deliveries word, published with State) */
            d->delivery_count = (int32_t)deliveries_of((uint64_t)ld_acq64(q->data + (q->held & q->offmask) + R_PRODUCER), q->held);
            return SHMIPC_OK;
        }
        if (rc < 0) return rc;
        if (timeout_ns == 0) return SHMIPC_ETIMEOUT;
        shmipc_wait wait = q->wait;
        if (wait.slice_ns > 20000000) wait.slice_ns = 20000000; /* look for dead takers at least every 20 ms */
        rc = wait_for(&q->data_sig, &wait, deadline, q_readable_cond, q_readable_before_sleep, q);
        if (rc == SHMIPC_ETIMEOUT) timeout_ns = 0; /* one more look, then SHMIPC_ETIMEOUT */
        else if (rc != SHMIPC_OK) return rc;
    }
}

static int q_space_cond(void *c)
{
    struct q_put_ctx *x = c;
    if (q_has_space(x->q, x->len) || q_shutdown(x->q) != 0) return 1;
    int corrupt = 0;
    return q_reclaim(x->q, NULL, NULL, &corrupt) > 0 && q_has_space(x->q, x->len);
}

/* §6.6: before a producer sleeps, repair what dead processes hold: the reclaim lock, a taken record. */
static int q_space_before_sleep(void *c)
{
    shmipc_queue *q = ((struct q_put_ctx *)c)->q;
    uint64_t owner = (uint64_t)ld_acq64(q->ctl + Q_LOCK);
    if (owner != 0 && !identity_alive(owner)) cas64(q->ctl + Q_LOCK, (int64_t)owner, 0);
    int64_t at; uint64_t reader; int corrupt = 0;
    q_reclaim(q, &at, &reader, &corrupt);
    if (corrupt) return SHMIPC_ECORRUPT;
    if (q->acknowledged) { /* §6.10: a dead taker's message is delivered again, never dropped */
        if (q_release_dead_takers(q) > 0) q_reclaim(q, NULL, NULL, &corrupt);
        return SHMIPC_OK;
    }
    if (at >= 0 && is_identity_word(reader) && !identity_alive(reader)) {
        uint8_t *rec = q_record(q, at);
        if ((uint64_t)ld_acq64(rec + R_READER) == reader) {
            int64_t committed = (int64_t)state_word(at, S_COMMITTED);
            if (cas64(rec + R_STATE, committed, (int64_t)state_word(at, S_CONSUMED)) == committed) {
                fprintf(stderr, "shmipc: queue %s: consumer pid %d died while reading position %lld; that message is lost\n",
                        q->seg.name, (int)((uint32_t)reader >> 5), (long long)at);
                q_reclaim(q, NULL, NULL, &corrupt);
            }
        }
    }
    return SHMIPC_OK;
}

static int q_try_put(shmipc_queue *q, const void *message, size_t length, uint32_t kind)
{
    if (q_shutdown(q) != 0) return SHMIPC_ESHUTDOWN;
    int64_t p = q_claim(q, (int32_t)length, kind);
    if (p < 0) return p < -1 ? (int)p : SHMIPC_ETIMEOUT;
    uint8_t *rec = q_record(q, p);
    /* §6.9: looked at again after the claim and Tail CASes (full fences): set now, the record is abandoned, not
     * committed, so a message is either delivered by the drain or refused. Consumers may wait for it: notify. */
    if (q_shutdown(q) != 0) {
        st_rel64(rec + R_STATE, (int64_t)state_word(p, S_ABANDONED));
        notify(&q->data_sig);
        return SHMIPC_ESHUTDOWN;
    }
    memcpy(rec + R_HEADER, message, length);
    st_rel64(rec + R_STATE, (int64_t)state_word(p, S_COMMITTED)); /* commit: pairs with consumers' acquire of State */
    notify(&q->data_sig);
    return SHMIPC_OK;
}

/* Writes one record of `kind` (a message, or a side segment's reference), waiting for room until the deadline. */
static int q_put_record(shmipc_queue *q, const void *message, size_t length, uint32_t kind, int64_t timeout_ns)
{
    int64_t deadline = timeout_ns == 0 ? 0 : deadline_from(timeout_ns);
    for (;;) {
        int rc = q_try_put(q, message, length, kind);
        if (rc != SHMIPC_ETIMEOUT || timeout_ns == 0) return rc;
        struct q_put_ctx ctx = {q, (int32_t)length};
        rc = wait_for(&q->space_sig, &q->wait, deadline, q_space_cond, q_space_before_sleep, &ctx);
        if (rc == SHMIPC_ETIMEOUT) return q_try_put(q, message, length, kind); /* one last try, then give up */
        if (rc != SHMIPC_OK) return rc;
    }
}

static int q_put_side_record(void *q, const void *record, size_t length, int64_t timeout_ns)
{
    return q_put_record(q, record, length, K_SIDE, timeout_ns);
}

int shmipc_queue_put(shmipc_queue *q, const void *message, size_t length, int64_t timeout_ns)
{
    if (length <= (size_t)q->maxlen) return q_put_record(q, message, length, K_MESSAGE, timeout_ns);
    /* §8: longer than the ring takes: into a side segment, the ring carries a kind-3 record naming it. Acknowledged
     * queues carry none (§8.3), and .NET peers read at most SIDE_MAX_LENGTH bytes. */
    if (q->acknowledged || length > (size_t)SIDE_MAX_LENGTH) return SHMIPC_ETOOLONG;
    if (q_shutdown(q) != 0) return SHMIPC_ESHUTDOWN;
    if (timeout_ns == 0 && !q_has_space(q, SR_MAX)) { /* a try-put must not copy the payload for nothing */
        int corrupt = 0;
        q_reclaim(q, NULL, NULL, &corrupt);
        if (!q_has_space(q, SR_MAX)) return corrupt ? SHMIPC_ECORRUPT : SHMIPC_ETIMEOUT;
    }
    return side_send(&q->side_sent, &q->seg, message, length, q_put_side_record, q, timeout_ns);
}


/* §6.4: something unexpected is at r. TAKE_EMPTY when nothing was enqueued there yet (r == Tail), 0 when our r
 * was stale (retry), SHMIPC_ECORRUPT when r is current, below Tail, and its header stays invalid. */
static int q_empty_or_stale(shmipc_queue *q, int64_t r)
{
    int64_t t = ld_acq64(q->ctl + Q_TAIL);
    if (ld_acq64(q->ctl + Q_READ) != r) return 0;
    if (r == t) return TAKE_EMPTY;
    if (r > t) return SHMIPC_ECORRUPT;
    /* r < t: a record was claimed here, so its header must be valid. Re-read once (State, then Claim): a claim
     * made between our reads is legitimate. */
    int64_t off = r & q->offmask;
    uint8_t *rec = q->data + off;
    uint64_t st = (uint64_t)ld_acq64(rec + R_STATE), w = (uint64_t)ld_acq64(rec + R_CLAIM);
    uint32_t kind; int32_t len; int64_t size;
    if ((decode_claim(q, w, q->cap - off, &kind, &len, &size) && (st >> 32) == tag_of(r)) || ld_acq64(q->ctl + Q_READ) != r)
        return 0;
    return SHMIPC_ECORRUPT;
}

/* §6.4 one attempt. TAKE_OK (copied), TAKE_EMPTY, TAKE_PENDING, or a negative status. The fast path never reads
 * Tail. It loads State first, then Claim: every State tagged for r was published (release) after the Claim that
 * goes with it, so the Claim loaded after it is this lap's or newer (then ReadPosition has moved on and every CAS
 * below fails). */
static int q_take(shmipc_queue *q, void *buffer, size_t capacity, size_t *length)
{
    for (;;) {
        int64_t r = ld_acq64(q->ctl + Q_READ);
        if ((r & (R_ALIGN - 1)) != 0) { /* positions are multiples of 32 */
            if (ld_acq64(q->ctl + Q_READ) == r) return SHMIPC_ECORRUPT;
            continue;
        }
        int64_t off = r & q->offmask;
        uint8_t *rec = q->data + off;
        uint64_t st = (uint64_t)ld_acq64(rec + R_STATE); /* this order: State, then Claim */
        uint64_t w = (uint64_t)ld_acq64(rec + R_CLAIM);
        if (w == free_stamp(r)) return TAKE_EMPTY;
        uint32_t kind; int32_t len; int64_t size;
        if ((st >> 32) != tag_of(r) || !decode_claim(q, w, q->cap - off, &kind, &len, &size)) {
            /* an older lap's record not yet reclaimed (empty), or r is stale */
            int rc = q_empty_or_stale(q, r);
            if (rc != 0) return rc;
            continue;
        }
        if (kind == K_PADDING) {
            /* its producer may not have advanced Tail yet: help it first, so ReadPosition never passes Tail.
             * A padding record keeps its stamp's "writing" state: that is not PENDING. */
            cas64(q->ctl + Q_TAIL, r, r + size);
            cas64(q->ctl + Q_READ, r, r + size);
            continue;
        }
        switch ((uint32_t)st) {
        case S_COMMITTED:
            if (kind == K_SIDE) {
                int64_t announced = side_announced(rec + R_HEADER, len);
                if (announced < 0) {
                    if (ld_acq64(q->ctl + Q_READ) != r) continue;
                    return refuse(SHMIPC_ECORRUPT, "queue '%s': a malformed side-segment record at %lld", q->seg.name, (long long)r);
                }
                if (q->acknowledged) announced = 0; /* §8.3: dropped, never copied into the caller's buffer */
                if ((size_t)announced > capacity) {
                    if ((uint64_t)ld_acq64(rec + R_READER) != free_stamp(r)) {
                        cas64(q->ctl + Q_READ, r, r + size);
                        continue;
                    }
                    *length = (size_t)announced;
                    return SHMIPC_ETOOSMALL;
                }
                if ((uint64_t)cas64(rec + R_READER, (int64_t)free_stamp(r), (int64_t)s_identity) != free_stamp(r)) {
                    cas64(q->ctl + Q_READ, r, r + size);
                    continue;
                }
                cas64(q->ctl + Q_READ, r, r + size);
                uint8_t ref[SR_MAX];
                memcpy(ref, rec + R_HEADER, (size_t)len);
                /* the message is ours now, whatever its side segment holds: the record is consumed either way */
                int rc = side_read(&q->side_read, q->seg.name, ref, len, q->acknowledged ? NULL : buffer, capacity, length);
                st_rel64(rec + R_STATE, (int64_t)state_word(r, S_CONSUMED));
                notify(&q->space_sig);
                if (q->acknowledged) { /* §8.3: a writer ignored the refusal; its segment is handed back, the message dropped */
                    fprintf(stderr, "shmipc: acknowledged queue %s held a side-segment record at %lld; that message was dropped\n",
                            q->seg.name, (long long)r);
                    continue;
                }
                return rc == SHMIPC_OK ? TAKE_OK : rc;
            }
            if ((size_t)len > capacity) {
                if ((uint64_t)ld_acq64(rec + R_READER) != free_stamp(r)) { /* taken already: not ours to refuse */
                    cas64(q->ctl + Q_READ, r, r + size);
                    continue;
                }
                *length = (size_t)len;
                return SHMIPC_ETOOSMALL;
            }
            if ((uint64_t)cas64(rec + R_READER, (int64_t)free_stamp(r), (int64_t)s_identity) == free_stamp(r)) {
                cas64(q->ctl + Q_READ, r, r + size); /* ours: let the others move on at once */
                memcpy(buffer, rec + R_HEADER, (size_t)len);
                *length = (size_t)len;
                if (q->hold) { q->held = r; return TAKE_OK; } /* §6.10 take: stays taken until ack / nack */
                st_rel64(rec + R_STATE, (int64_t)state_word(r, S_CONSUMED)); /* our reads before the space is reused */
                notify(&q->space_sig);
                if (ld_acq64(q->ctl + Q_READ) - ld_acq64(q->ctl + Q_HEAD) >= q->cap / 4) {
                    int corrupt = 0;
                    q_reclaim(q, NULL, NULL, &corrupt); /* notifies s1 itself when it freed space */
                }
                return TAKE_OK;
            }
            cas64(q->ctl + Q_READ, r, r + size); /* another consumer has it: help */
            continue;
        case S_CONSUMED:
        case S_ABANDONED:
            cas64(q->ctl + Q_READ, r, r + size);
            continue;
        case S_WRITING:
            return TAKE_PENDING;
        default: /* tagged for r yet no known state: corrupt unless our r was stale */
            if (ld_acq64(q->ctl + Q_READ) == r) return SHMIPC_ECORRUPT;
            continue;
        }
    }
}

/* §6.7 consumer condition: something at ReadPosition that is not a message still being written (a padding
 * record keeps the stamp's "writing" state: it is readable, q_take skips it). Anything odd counts as readable
 * so that q_take looks closer. State, then Claim, as in q_take. */
static int q_readable_cond(void *c)
{
    shmipc_queue *q = c;
    int64_t r = ld_acq64(q->ctl + Q_READ);
    uint8_t *rec = q_record(q, r);
    uint64_t st = (uint64_t)ld_acq64(rec + R_STATE), claim = (uint64_t)ld_acq64(rec + R_CLAIM);
    int32_t shut = q_shutdown(q);
    if (shut == 2) return 1; /* §6.9: get fails at once */
    if (q->acknowledged && ld_acq64(q->ctl + Q_REDELIVERIES) != q->redeliveries_seen) return 1; /* §6.10 */
    if (claim == free_stamp(r)) return shut != 0; /* drained: get fails */
    if ((st >> 32) != tag_of(r)) return r != ld_acq64(q->ctl + Q_TAIL) || shut != 0;
    return (uint32_t)st != S_WRITING || (claim & 31) == K_PADDING; /* a message still being written is waited for */
}

/* §6.6: a record still being written at ReadPosition whose producer is dead is abandoned. */
static int q_readable_before_sleep(void *c)
{
    shmipc_queue *q = c;
    if (q->acknowledged) q_release_dead_takers(q);
    int64_t r = ld_acq64(q->ctl + Q_READ);
    if (r == ld_acq64(q->ctl + Q_TAIL)) return SHMIPC_OK;
    uint8_t *rec = q_record(q, r);
    uint64_t st = (uint64_t)ld_acq64(rec + R_STATE), claim = (uint64_t)ld_acq64(rec + R_CLAIM);
    if (((claim & 31) != K_MESSAGE && (claim & 31) != K_SIDE) || st != state_word(r, S_WRITING)) return SHMIPC_OK;
    int pid = (int)(claim >> 32);
    uint64_t ident = (uint64_t)ld_acq64(rec + R_PRODUCER);
    int alive = is_identity_word(ident) && (int)((uint32_t)ident >> 5) == pid ? identity_alive(ident) : is_alive(pid, 0, 0);
    if (!alive && cas64(rec + R_STATE, (int64_t)st, (int64_t)state_word(r, S_ABANDONED)) == (int64_t)st) {
        fprintf(stderr, "shmipc: queue %s: producer pid %d died while writing position %lld; that message is lost\n",
                q->seg.name, pid, (long long)r);
        notify(&q->data_sig);
    }
    return SHMIPC_OK;
}

/* q_take with §6.9: immediate shutdown takes nothing; a drained shut-down queue (empty after a fence that orders
 * our look after every claim made before the word was set) reports SHMIPC_ESHUTDOWN. */
static int q_take_or_shutdown(shmipc_queue *q, void *buffer, size_t capacity, size_t *length)
{
    if (q_shutdown(q) == 2) return SHMIPC_ESHUTDOWN;
    int rc = q_take(q, buffer, capacity, length);
    if (rc != TAKE_EMPTY || q_shutdown(q) == 0) return rc;
    full_fence();
    if (q_shutdown(q) == 2) return SHMIPC_ESHUTDOWN;
    rc = q_take(q, buffer, capacity, length);
    return rc == TAKE_EMPTY ? SHMIPC_ESHUTDOWN : rc;
}

int shmipc_queue_get(shmipc_queue *q, void *buffer, size_t capacity, size_t *length, int64_t timeout_ns)
{
    int64_t deadline = timeout_ns == 0 ? 0 : deadline_from(timeout_ns);
    for (;;) {
        struct retake x = {buffer, capacity, length, 0, 0};
        if (q->acknowledged && q_shutdown(q) != 2 && q_retake(q, &x)) { /* §6.10: take + ack */
            shmipc_delivery d = {x.position, (int32_t)x.count};
            return shmipc_queue_ack(q, &d);
        }
        int rc = q_take_or_shutdown(q, buffer, capacity, length);
        if (rc == TAKE_OK) return SHMIPC_OK;
        if (rc < 0) return rc;
        if (timeout_ns == 0) return SHMIPC_ETIMEOUT;
        rc = wait_for(&q->data_sig, &q->wait, deadline, q_readable_cond, q_readable_before_sleep, q);
        if (rc == SHMIPC_ETIMEOUT) {
            rc = q_take_or_shutdown(q, buffer, capacity, length);
            return rc == TAKE_OK ? SHMIPC_OK : rc < 0 ? rc : SHMIPC_ETIMEOUT;
        }
        if (rc != SHMIPC_OK) return rc;
    }
}

/* ================================================================= §5 Pipe */

enum {
    P_CONTROL = 1152, P_CAP = 0, P_MAXLEN = 8, P_RINGS = 16, P_FLAGS = 20, P_SLOTS = 128, P_OWNER = 0, P_CLOSED = 8,
    P_RING0 = 384, RING_CTL = 384, RG_TAIL = 0, RG_HEAD = 128, RG_DATA_SLEEPERS = 256, RG_SPACE_SLEEPERS = 320,
    T_MESSAGE = 1, T_PADDING = 2, T_SIDE = 3, /* §8: a type-3 record's payload names a side segment */
    /* §5.7 shared ends */
    P_HOLDERS = 16, P_MAX_HOLDERS = 14, P_KNOWN_FLAGS = 7, P_ASYMMETRIC_FENCE = 4, RG_SEND_LOCK = 8, RG_RECV_LOCK = 136, P_SHARED_OWNER = 3,
};

static int is_handover_word(uint64_t w) { return (w & 0x1F) == 2 && (w >> 5) != 0; }

struct ring {
    uint8_t *tail_word, *head_word, *bytes, *lock_word; /* lock_word: SendLock (producer) or ReceiveLock (consumer) */
    int64_t pos;   /* producer: our Tail; consumer: our Head */
    int64_t cache; /* producer: last Head read; consumer: last Tail read */
    struct signal data_sig, space_sig;
};

struct shmipc_pipe {
    struct seg seg;
    int end;
    int64_t cap, mask;
    int32_t maxlen;
    int has_send, has_recv;
    struct ring send, recv;
    uint8_t *own_slot, *peer_slot;
    int peer_gone;
    int64_t next_liveness;
    shmipc_wait wait;
    int shared; /* §5.7: this end is shared; sends and receives take the ring's lock */
    int holder; /* our Holders word while shared */
    struct side *side_sent; /* §8: the side segment of our last large message, kept for reuse */
    struct side *side_read; /* §8: the mapping of the last side segment we read */
};

static inline int64_t p_record_size(int64_t len) { return 8 + ((len + 7) & ~(int64_t)7); }

static void p_ring(shmipc_pipe *p, struct ring *rg, int r)
{
    uint8_t *ctl = p->seg.base + HDR_SIZE, *rc = ctl + P_RING0 + RING_CTL * r;
    rg->tail_word = rc + RG_TAIL;
    rg->head_word = rc + RG_HEAD;
    rg->bytes = ctl + P_CONTROL + (int64_t)r * p->cap;
    int marked = (ld_acq32(ctl + P_FLAGS) & P_ASYMMETRIC_FENCE) != 0; /* §4 asymmetric form */
    rg->data_sig = (struct signal){rc + RG_DATA_SLEEPERS, p->seg.sems[2 * r], marked};
    rg->space_sig = (struct signal){rc + RG_SPACE_SLEEPERS, p->seg.sems[2 * r + 1], marked};
}

/* End e receives from ring e and sends on ring 1 - e, where they exist. */
static void p_attach(shmipc_pipe *p, int end)
{
    uint8_t *ctl = p->seg.base + HDR_SIZE;
    int rings = (int)rd32(ctl + P_RINGS);
    p->end = end;
    p->own_slot = ctl + P_SLOTS + 128 * end;
    p->peer_slot = ctl + P_SLOTS + 128 * (1 - end);
    p->wait = default_wait;
    p->has_recv = end < rings;
    p->has_send = 1 - end < rings;
    if (p->has_recv) {
        p_ring(p, &p->recv, end);
        p->recv.lock_word = p->recv.tail_word + RG_RECV_LOCK;
        p->recv.pos = ld_acq64(p->recv.head_word);
        p->recv.cache = ld_acq64(p->recv.tail_word);
    }
    if (p->has_send) {
        p_ring(p, &p->send, 1 - end);
        p->send.lock_word = p->send.tail_word + RG_SEND_LOCK;
        p->send.pos = ld_acq64(p->send.tail_word);
        p->send.cache = ld_acq64(p->send.head_word);
    }
}

/* Opens NAME and validates its control block (§5.1, §5.2): flags bits 0-1 (shared ends, §5.7) are accepted. */
static int p_open_validated(const char *name, shmipc_pipe **out)
{
    *out = NULL;
    shmipc_pipe *p = calloc(1, sizeof *p);
    if (!p) return SHMIPC_ESYS;
    int rc = seg_open(name, KIND_PIPE, &p->seg);
    if (rc) { free(p); return rc; }
    uint8_t *b = p->seg.base, *ctl = b + HDR_SIZE;
    int64_t cap = (int64_t)rd64(ctl + P_CAP), maxlen = (int64_t)rd64(ctl + P_MAXLEN);
    int32_t rings = (int32_t)rd32(ctl + P_RINGS), flags = (int32_t)rd32(ctl + P_FLAGS);
    rc = SHMIPC_ECORRUPT;
    if (rd64(b + 40) != P_CONTROL) goto bad;
    if (cap < 1024 || cap > (1LL << 30) || (cap & (cap - 1)) != 0 || (rings != 1 && rings != 2) || (flags & ~P_KNOWN_FLAGS) != 0) goto bad;
    if (maxlen < 0 || maxlen > cap / 2 - 8 || rd64(b + 56) != (uint64_t)(rings * cap) || p->seg.nsems != (uint32_t)(2 * rings)) goto bad;
    for (int r = 0; r < rings; r++) {
        uint8_t *rc0 = ctl + P_RING0 + RING_CTL * r;
        int64_t t = ld_acq64(rc0 + RG_TAIL), h = ld_acq64(rc0 + RG_HEAD);
        if (h < 0 || ((h | t) & 7) != 0 || t - h < 0 || t - h > cap) goto bad;
    }
    p->cap = cap;
    p->mask = cap - 1;
    p->maxlen = (int32_t)maxlen;
    *out = p;
    return SHMIPC_OK;
bad:
    seg_close(&p->seg, 0);
    free(p);
    return rc;
}

int shmipc_pipe_connect(const char *name, shmipc_pipe **out)
{
    shmipc_pipe *p;
    int rc = p_open_validated(name, &p);
    *out = NULL;
    if (rc) return rc;
    p_attach(p, 1);
    /* Claim end 1 last, after everything that can fail (§5.6). */
    if (cas64(p->own_slot + P_OWNER, 0, (int64_t)s_identity) != 0) {
        seg_close(&p->seg, 0);
        free(p);
        return SHMIPC_EBUSY;
    }
    *out = p;
    return SHMIPC_OK;
}

/* §5.7 attaching: CAS(Holders[k], handover word -> my identity), then Flags bit e must be set. */
int shmipc_pipe_attach_shared(const char *token, shmipc_pipe **out)
{
    *out = NULL;
    int end = -1, slot = -1, unlink_flag = -1, off = 0;
    unsigned long long nonce = 0;
    /* the unlink flag (the creator's duty) is for .NET holders; this peer never unlinks a pipe it did not create */
    if (sscanf(token, "shmpipe2:%d:%d:%16llx:%d:%n", &end, &slot, &nonce, &unlink_flag, &off) != 4 || off == 0 || (end != 0 && end != 1)
        || (unlink_flag != 0 && unlink_flag != 1)
        || slot < 0 || slot >= P_MAX_HOLDERS || !is_handover_word(nonce))
        return SHMIPC_EINVALID;
    shmipc_pipe *p;
    int rc = p_open_validated(token + off, &p);
    if (rc) return rc;
    p_attach(p, end);
    uint8_t *word = p->own_slot + P_HOLDERS + 8 * slot;
    if ((uint64_t)cas64(word, (int64_t)nonce, (int64_t)s_identity) != nonce) {
        seg_close(&p->seg, 0);
        free(p);
        return SHMIPC_EBUSY; /* the token was used */
    }
    if ((ld_acq32(p->seg.base + HDR_SIZE + P_FLAGS) & (1 << end)) == 0) {
        cas64(word, (int64_t)s_identity, (int64_t)nonce);
        seg_close(&p->seg, 0);
        free(p);
        return SHMIPC_ECORRUPT;
    }
    p->shared = 1;
    p->holder = slot;
    *out = p;
    return SHMIPC_OK;
}

int shmipc_pipe_create(const char *name, int64_t capacity, int32_t max_message_length, int duplex, shmipc_pipe **out)
{
    *out = NULL;
    if (capacity < 1024 || capacity > (1LL << 30) || (capacity & (capacity - 1)) != 0) return SHMIPC_EINVALID;
    int64_t maxlen = max_message_length < 0 ? capacity / 4 : max_message_length;
    if (maxlen > capacity / 2 - 8) return SHMIPC_EINVALID;
    int rings = duplex ? 2 : 1;
    shmipc_pipe *p = calloc(1, sizeof *p);
    if (!p) return SHMIPC_ESYS;
    int rc = seg_create(name, KIND_PIPE, P_CONTROL, (uint64_t)(rings * capacity), (uint32_t)(2 * rings), &p->seg);
    if (rc) { free(p); return rc; }
    uint8_t *ctl = p->seg.base + HDR_SIZE;
    wr64(ctl + P_CAP, (uint64_t)capacity);
    wr64(ctl + P_MAXLEN, (uint64_t)maxlen);
    wr32(ctl + P_RINGS, (uint32_t)rings);
    wr64(ctl + P_SLOTS + P_OWNER, s_identity); /* end 0 is ours before the magic */
    p->cap = capacity;
    p->mask = capacity - 1;
    p->maxlen = (int32_t)maxlen;
    p_attach(p, 0);
    seg_publish(&p->seg);
    *out = p;
    return SHMIPC_OK;
}

int32_t shmipc_pipe_max_message_length(const shmipc_pipe *p) { return p->maxlen; }
void shmipc_pipe_set_wait(shmipc_pipe *p, shmipc_wait wait) { p->wait = wait; }

static int peer_closed_cheap(shmipc_pipe *p)
{
    /* acquire pairs with the peer's release of Closed: its last Tail store is visible after this */
    return p->peer_gone || ld_acq64(p->peer_slot + P_CLOSED) != 0;
}

/* §5.7: a live identity or a pending token among the Holders words of SLOT; "none" needs two equal scans.
 * A word that is none of 0, an identity or a handover word counts as left (never declare an end gone on garbage). */
static int holders_left(uint8_t *slot)
{
    uint64_t prev[P_MAX_HOLDERS] = {0};
    for (int scan = 0;; scan++) {
        int same = scan > 0;
        for (int i = 0; i < P_MAX_HOLDERS; i++) {
            uint64_t w = (uint64_t)ld_acq64(slot + P_HOLDERS + 8 * i);
            if (w != 0 && (!is_identity_word(w) || identity_alive(w))) return 1;
            same &= prev[i] == w;
            prev[i] = w;
        }
        if (same) return 0;
    }
}

/* §5.7 lock word: CAS 0 -> me; a holder proved dead is taken over by CAS from its word. ETIMEOUT at the deadline. */
static int p_lock(uint8_t *word, int64_t deadline)
{
    int64_t next_check = 0;
    for (unsigned i = 0;; i++) {
        uint64_t w = (uint64_t)cas64(word, 0, (int64_t)s_identity);
        if (w == 0) return SHMIPC_OK;
        if (!is_identity_word(w)) return SHMIPC_ECORRUPT;
        int64_t now = now_ns();
        if (now >= next_check) {
            next_check = now + 5000000;
            if (!identity_alive(w) && (uint64_t)cas64(word, (int64_t)w, (int64_t)s_identity) == w) return SHMIPC_OK;
        }
        if (now >= deadline) return SHMIPC_ETIMEOUT;
        if (i < 64) cpu_relax();
        else if (i < 256) sched_yield();
        else { struct timespec ms = {0, 1000000}; nanosleep(&ms, NULL); }
    }
}

static void p_unlock(uint8_t *word) { cas64(word, (int64_t)s_identity, 0); /* never a plain store (§5.7) */ }

/* §5.7 after taking a lock: resume from the shared Tail and Head, checked. */
static int p_sync(shmipc_pipe *p, struct ring *rg, int producer)
{
    int64_t t = ld_acq64(rg->tail_word), h = ld_acq64(rg->head_word);
    if (t - h < 0 || t - h > p->cap || ((t | h) & 7) != 0) return SHMIPC_ECORRUPT;
    rg->pos = producer ? t : h;
    rg->cache = producer ? h : t;
    return SHMIPC_OK;
}

/* §5.6 "Peer gone": dead owner identity, confirmed by a second load of the unchanged word. */
static void check_peer_alive(shmipc_pipe *p)
{
    int64_t now = now_ns();
    if (p->peer_gone || now < p->next_liveness) return;
    p->next_liveness = now + 5000000;
    uint64_t w = (uint64_t)ld_acq64(p->peer_slot + P_OWNER);
    if (w == P_SHARED_OWNER) {
        if (!holders_left(p->peer_slot)) p->peer_gone = 1;
        return;
    }
    if (!is_identity_word(w) || identity_alive(w)) return;
    if ((uint64_t)ld_acq64(p->peer_slot + P_OWNER) != w) return;
    p->peer_gone = 1;
}

/* ---- send (§5.4) */

static int p_refresh_head(shmipc_pipe *p, int64_t required, int *corrupt)
{
    struct ring *rg = &p->send;
    int64_t h = ld_acq64(rg->head_word); /* pairs with the consumer's release of Head */
    int64_t used = rg->pos - h;
    if (used < 0 || used > p->cap || (h & 7) != 0) { *corrupt = 1; return 0; }
    rg->cache = h;
    return rg->pos + required - h <= p->cap;
}

static int64_t p_required(shmipc_pipe *p, size_t len)
{
    int64_t size = p_record_size((int64_t)len), to_end = p->cap - (p->send.pos & p->mask);
    return size <= to_end ? size : to_end + size;
}

static int p_write(shmipc_pipe *p, const void *msg, size_t len, int32_t type, int publish)
{
    struct ring *rg = &p->send;
    int64_t size = p_record_size((int64_t)len), idx = rg->pos & p->mask, to_end = p->cap - idx;
    int64_t required = size <= to_end ? size : to_end + size;
    if (rg->pos + required - rg->cache > p->cap) {
        int corrupt = 0;
        if (!p_refresh_head(p, required, &corrupt)) return corrupt ? SHMIPC_ECORRUPT : SHMIPC_ETIMEOUT;
    }
    uint8_t *rec = rg->bytes + idx;
    if (size > to_end) {
        wr32(rec, (uint32_t)(to_end - 8));
        wr32(rec + 4, T_PADDING);
        rec = rg->bytes;
    }
    wr32(rec, (uint32_t)len);
    wr32(rec + 4, (uint32_t)type);
    memcpy(rec + 8, msg, len);
    if (!publish) return SHMIPC_OK;
    rg->pos += required;
    st_rel64(rg->tail_word, rg->pos); /* publishes header + payload (+ padding) */
    return SHMIPC_OK;
}

struct p_space_ctx { shmipc_pipe *p; size_t len; };

static int p_space_cond(void *c)
{
    struct p_space_ctx *x = c;
    int corrupt = 0;
    int64_t required = p_required(x->p, x->len);
    return peer_closed_cheap(x->p) || x->p->send.pos + required - x->p->send.cache <= x->p->cap
        || p_refresh_head(x->p, required, &corrupt) || corrupt;
}

static int p_before_sleep(void *c)
{
    check_peer_alive(*(shmipc_pipe **)c);
    return SHMIPC_OK;
}

/* Shared wait condition (no lock held): would the record fit after the shared Tail? */
static int p_shared_space_cond(void *c)
{
    struct p_space_ctx *x = c;
    shmipc_pipe *p = x->p;
    int64_t t = ld_acq64(p->send.tail_word), h = ld_acq64(p->send.head_word);
    int64_t size = p_record_size((int64_t)x->len), to_end = p->cap - (t & p->mask);
    int64_t required = size <= to_end ? size : to_end + size;
    return peer_closed_cheap(p) || t - h < 0 || t - h > p->cap || t + required - h <= p->cap;
}

/* §5.7 sending on a shared end: lock, resync, write + publish, unlock, notify; wait for space without the lock. */
static int p_send_shared(shmipc_pipe *p, const void *message, size_t length, int32_t type, int64_t timeout_ns)
{
    int64_t deadline = timeout_ns == 0 ? 0 : deadline_from(timeout_ns);
    for (;;) {
        int rc = p_lock(p->send.lock_word, deadline);
        if (rc) return rc;
        rc = p_sync(p, &p->send, 1);
        if (rc == SHMIPC_OK) rc = p_write(p, message, length, type, 1);
        p_unlock(p->send.lock_word);
        if (rc == SHMIPC_OK) {
            notify(&p->send.data_sig);
            return SHMIPC_OK;
        }
        if (rc != SHMIPC_ETIMEOUT || timeout_ns == 0) return rc;
        struct p_space_ctx ctx = {p, length};
        rc = wait_for(&p->send.space_sig, &p->wait, deadline, p_shared_space_cond, p_before_sleep, &ctx);
        if (peer_closed_cheap(p)) return SHMIPC_ECLOSED;
        if (rc == SHMIPC_ETIMEOUT) return rc;
    }
}

/* Writes one record of `type` (a message, or a side segment's reference), waiting for room until the deadline. */
static int p_send_record(shmipc_pipe *p, const void *message, size_t length, int32_t type, int64_t timeout_ns)
{
    if (p->shared) return p_send_shared(p, message, length, type, timeout_ns);
    int64_t deadline = timeout_ns == 0 ? 0 : deadline_from(timeout_ns);
    for (;;) {
        int rc = p_write(p, message, length, type, 1);
        if (rc == SHMIPC_OK) {
            notify(&p->send.data_sig);
            return SHMIPC_OK;
        }
        if (rc != SHMIPC_ETIMEOUT || timeout_ns == 0) return rc;
        struct p_space_ctx ctx = {p, length};
        rc = wait_for(&p->send.space_sig, &p->wait, deadline, p_space_cond, p_before_sleep, &ctx);
        if (peer_closed_cheap(p)) return SHMIPC_ECLOSED;
        if (rc == SHMIPC_ETIMEOUT) {
            rc = p_write(p, message, length, type, 1);
            if (rc == SHMIPC_OK) notify(&p->send.data_sig);
            return rc;
        }
    }
}

static int p_send_side_record(void *p, const void *record, size_t length, int64_t timeout_ns)
{
    return p_send_record(p, record, length, T_SIDE, timeout_ns);
}

int shmipc_pipe_send(shmipc_pipe *p, const void *message, size_t length, int64_t timeout_ns)
{
    if (!p->has_send) return SHMIPC_ENOSEND;
    if (peer_closed_cheap(p)) return SHMIPC_ECLOSED;
    if (length <= (size_t)p->maxlen) return p_send_record(p, message, length, T_MESSAGE, timeout_ns);
    /* §8: longer than the ring takes: into a side segment, the ring carries a type-3 record naming it */
    if (length > (size_t)SIDE_MAX_LENGTH) return SHMIPC_ETOOLONG;
    return side_send(&p->side_sent, &p->seg, message, length, p_send_side_record, p, timeout_ns);
}

int shmipc_pipe_write_uncommitted(shmipc_pipe *p, const void *message, size_t length)
{
    if (!p->has_send) return SHMIPC_ENOSEND;
    if (length > (size_t)p->maxlen) return SHMIPC_ETOOLONG;
    if (p->shared) return SHMIPC_EINVALID; /* a shared end publishes before it lets go of the lock (§5.7) */
    return p_write(p, message, length, T_MESSAGE, 0);
}

/* ---- receive (§5.5) */

static int p_has_data(shmipc_pipe *p, int *corrupt)
{
    struct ring *rg = &p->recv;
    if (rg->pos != rg->cache) return 1;
    int64_t t = ld_acq64(rg->tail_word); /* pairs with the producer's release of Tail */
    if (t == rg->pos) return 0;
    int64_t avail = t - rg->pos;
    if (avail < 0 || avail > p->cap || (t & 7) != 0) { *corrupt = 1; return 0; }
    rg->cache = t;
    return 1;
}

/* Reads the record at Head (data present). Returns OK, ETOOSMALL (length set) or ECORRUPT. */
static int p_read(shmipc_pipe *p, void *buffer, size_t capacity, size_t *length)
{
    struct ring *rg = &p->recv;
    int64_t head = rg->pos, avail = rg->cache - head, idx = head & p->mask;
    uint8_t *rec = rg->bytes + idx;
    /* each field read once into a local (the peer may change them) */
    int32_t type = (int32_t)atomic_load_explicit(A32(rec + 4), memory_order_relaxed);
    if (type == T_PADDING) {
        int64_t to_end = p->cap - idx;
        int32_t pad = (int32_t)atomic_load_explicit(A32(rec), memory_order_relaxed);
        if (pad != to_end - 8 || avail <= to_end) return SHMIPC_ECORRUPT;
        head += to_end;
        avail -= to_end;
        idx = 0;
        rec = rg->bytes;
        type = (int32_t)atomic_load_explicit(A32(rec + 4), memory_order_relaxed);
    }
    int32_t len = (int32_t)atomic_load_explicit(A32(rec), memory_order_relaxed);
    if ((type != T_MESSAGE && type != T_SIDE) || len < 0 || len > (type == T_MESSAGE ? p->maxlen : SR_MAX)) return SHMIPC_ECORRUPT;
    int64_t size = p_record_size(len);
    if (size > avail || size > p->cap - idx) return SHMIPC_ECORRUPT;
    int rc = SHMIPC_OK;
    if (type == T_SIDE) {
        uint8_t ref[SR_MAX]; /* one copy of the peer's bytes: every check and the read see the same record */
        memcpy(ref, rec + 8, (size_t)len);
        int64_t announced = side_announced(ref, len);
        if (announced < 0) return refuse(SHMIPC_ECORRUPT, "pipe '%s': a malformed side-segment record of %d bytes", p->seg.name, len);
        *length = (size_t)announced;
        if ((size_t)announced > capacity) return SHMIPC_ETOOSMALL;
        rc = side_read(&p->side_read, p->seg.name, ref, len, buffer, capacity, length); /* consumed either way */
    } else {
        *length = (size_t)len;
        if ((size_t)len > capacity) return SHMIPC_ETOOSMALL;
        memcpy(buffer, rec + 8, (size_t)len);
    }
    rg->pos = head + size;
    st_rel64(rg->head_word, rg->pos); /* our reads are done before the producer reuses the bytes */
    notify(&rg->space_sig);
    return rc;
}

static int p_readable_cond(void *c)
{
    shmipc_pipe *p = *(shmipc_pipe **)c;
    int corrupt = 0;
    return p_has_data(p, &corrupt) || corrupt || peer_closed_cheap(p);
}

/* Data waiting (1), none (0), corrupt (<0). */
static int p_ready(shmipc_pipe *p)
{
    int corrupt = 0;
    int has = p_has_data(p, &corrupt);
    return corrupt ? SHMIPC_ECORRUPT : has;
}

static int p_shared_readable_cond(void *c)
{
    shmipc_pipe *p = *(shmipc_pipe **)c;
    return ld_acq64(p->recv.tail_word) != ld_acq64(p->recv.head_word) || peer_closed_cheap(p);
}

/* §5.7 receiving on a shared end: lock, resync, read + release Head, unlock; wait for data without the lock. */
static int p_recv_shared(shmipc_pipe *p, void *buffer, size_t capacity, size_t *length, int64_t timeout_ns)
{
    int64_t deadline = timeout_ns == 0 ? 0 : deadline_from(timeout_ns);
    for (;;) {
        int closed = peer_closed_cheap(p); /* before the look at Tail: "closed and empty" is then final */
        int rc = p_lock(p->recv.lock_word, deadline);
        if (rc) return rc;
        rc = p_sync(p, &p->recv, 0);
        int empty = rc == SHMIPC_OK && p->recv.pos == p->recv.cache;
        if (rc == SHMIPC_OK && !empty) rc = p_read(p, buffer, capacity, length);
        p_unlock(p->recv.lock_word);
        if (!empty) return rc;
        if (closed) return SHMIPC_ECLOSED;
        if (timeout_ns == 0) return SHMIPC_ETIMEOUT;
        shmipc_pipe *self = p;
        rc = wait_for(&p->recv.data_sig, &p->wait, deadline, p_shared_readable_cond, p_before_sleep, &self);
        if (rc == SHMIPC_ETIMEOUT) timeout_ns = 0; /* one last look, then ETIMEOUT */
        else if (rc != SHMIPC_OK) return rc;
    }
}

int shmipc_pipe_recv(shmipc_pipe *p, void *buffer, size_t capacity, size_t *length, int64_t timeout_ns)
{
    if (!p->has_recv) return SHMIPC_ENOSEND;
    if (p->shared) return p_recv_shared(p, buffer, capacity, length, timeout_ns);
    int64_t deadline = timeout_ns == 0 ? 0 : deadline_from(timeout_ns);
    for (;;) {
        int ready = p_ready(p);
        if (ready < 0) return ready;
        if (ready) return p_read(p, buffer, capacity, length);
        if (peer_closed_cheap(p)) {
            /* the closed flag (or the death) was seen before this last look at Tail: drain, then report */
            ready = p_ready(p);
            if (ready < 0) return ready;
            return ready ? p_read(p, buffer, capacity, length) : SHMIPC_ECLOSED;
        }
        if (timeout_ns == 0) return SHMIPC_ETIMEOUT;
        shmipc_pipe *self = p;
        int rc = wait_for(&p->recv.data_sig, &p->wait, deadline, p_readable_cond, p_before_sleep, &self);
        if (rc == SHMIPC_ETIMEOUT) {
            ready = p_ready(p);
            if (ready < 0) return ready;
            if (ready) return p_read(p, buffer, capacity, length);
            return peer_closed_cheap(p) ? SHMIPC_ECLOSED : SHMIPC_ETIMEOUT;
        }
    }
}

int shmipc_pipe_poll(shmipc_pipe *p, int64_t timeout_ns)
{
    if (!p->has_recv) return SHMIPC_ENOSEND;
    shmipc_pipe *self = p;
    cond_fn cond = p->shared ? p_shared_readable_cond : p_readable_cond;
    if (cond(&self)) return SHMIPC_OK;
    if (timeout_ns == 0) return SHMIPC_ETIMEOUT;
    return wait_for(&p->recv.data_sig, &p->wait, deadline_from(timeout_ns), cond, p_before_sleep, &self);
}

void shmipc_pipe_close(shmipc_pipe *p)
{
    if (!p) return;
    /* §5.7: a holder of a shared end clears its Holders word; only the last one closes the end for the peer */
    int last = !p->shared;
    if (p->shared) {
        cas64(p->own_slot + P_HOLDERS + 8 * p->holder, (int64_t)s_identity, 0);
        last = !holders_left(p->own_slot);
    }
    if (last) st_rel64(p->own_slot + P_CLOSED, 1); /* after our last Tail store: pairs with the peer's acquire of Closed */
    if (p->has_send) notify(&p->send.data_sig);
    if (p->has_recv) notify(&p->recv.space_sig);
    side_let_go(p->side_sent);
    side_unmap(p->side_read);
    seg_close(&p->seg, p->seg.creator);
    free(p);
}

/* ================================================================= §7 Shared state */

enum {
    KIND_SHARED_MEMORY = 3, KIND_LOCK = 7, KIND_EVENT = 8,
    L_OWNER = 0, L_THREAD = 8, L_DEPTH = 12, L_SLEEPERS = 16, L_FLAGS = 20,
    E_STATE = 0, E_FLAGS = 4, E_GENERATION = 8, E_SLEEPERS = 16,
};

static int control_shape(const struct seg *s, uint64_t control_size, int64_t data_size, uint32_t nsems)
{
    return rd64(s->base + 40) == control_size && (data_size < 0 || rd64(s->base + 56) == (uint64_t)data_size) && s->nsems == nsems;
}

struct shmipc_shm {
    struct seg seg;
};

int shmipc_shm_open(const char *name, shmipc_shm **out)
{
    *out = NULL;
    shmipc_shm *m = calloc(1, sizeof *m);
    if (!m) return SHMIPC_ESYS;
    int rc = seg_open(name, KIND_SHARED_MEMORY, &m->seg);
    if (rc) { free(m); return rc; }
    uint64_t size = rd64(m->seg.base + HDR_SIZE);
    if (!control_shape(&m->seg, 128, -1, 0) || size != rd64(m->seg.base + 56) || size < 1) {
        seg_close(&m->seg, 0);
        free(m);
        return SHMIPC_ECORRUPT;
    }
    *out = m;
    return SHMIPC_OK;
}

int shmipc_shm_create(const char *name, int64_t size, shmipc_shm **out)
{
    *out = NULL;
    if (size < 1 || size > (1LL << 40)) return SHMIPC_EINVALID;
    shmipc_shm *m = calloc(1, sizeof *m);
    if (!m) return SHMIPC_ESYS;
    int rc = seg_create(name, KIND_SHARED_MEMORY, 128, (uint64_t)size, 0, &m->seg);
    if (rc) { free(m); return rc; }
    wr64(m->seg.base + HDR_SIZE, (uint64_t)size);
    seg_publish(&m->seg);
    *out = m;
    return SHMIPC_OK;
}

void *shmipc_shm_data(const shmipc_shm *m) { return m->seg.base + HDR_SIZE + 128; }
int64_t shmipc_shm_size(const shmipc_shm *m) { return (int64_t)rd64(m->seg.base + HDR_SIZE); }

void shmipc_shm_close(shmipc_shm *m)
{
    if (!m) return;
    seg_close(&m->seg, m->seg.creator);
    free(m);
}

/* §7.3. Owner: CAS 0 -> identity; release by exchange -> 0 (seq_cst: publishes the protected writes and is the
 * notifier's fence). Before each sleep slice a waiter takes over a dead (or non-identity) owner by CAS. */
struct shmipc_lock {
    struct seg seg;   /* unused (closed) for the embedded lock of an Array or Value, whose segment it is in */
    uint8_t *b;
    int recursive;
    int embedded;     /* the lock block of an Array or Value (§7.2): closed with that object */
    struct signal sig;
    shmipc_wait wait;
};

static int32_t lock_thread(void) { int32_t t = (int32_t)(gettid() & 0x7FFFFFFF); return t ? t : 1; }

/* Binds a handle to the lock block at `block`, whose waiters sleep on `sem` (§7.3: a Lock segment's s0; §7.2: an Array's). */
static void lock_bind(shmipc_lock *l, uint8_t *block, sem_t *sem)
{
    l->b = block;
    l->recursive = (rd32(l->b + L_FLAGS) & 1) != 0;
    l->sig = (struct signal){l->b + L_SLEEPERS, sem, 0};
    l->wait = default_wait;
}

static int lock_init(shmipc_lock *l)
{
    lock_bind(l, l->seg.base + HDR_SIZE, l->seg.sems[0]);
    return SHMIPC_OK;
}

int shmipc_lock_open(const char *name, shmipc_lock **out)
{
    *out = NULL;
    shmipc_lock *l = calloc(1, sizeof *l);
    if (!l) return SHMIPC_ESYS;
    int rc = seg_open(name, KIND_LOCK, &l->seg);
    if (rc) { free(l); return rc; }
    if (!control_shape(&l->seg, 128, 0, 1) || (rd32(l->seg.base + HDR_SIZE + L_FLAGS) & ~1u) != 0) {
        refuse(SHMIPC_ECORRUPT, "lock '%s': control block of %llu bytes, %u semaphores, flags 0x%x; a lock has 128, 1, bit 0 only", name,
               (unsigned long long)rd64(l->seg.base + 40), l->seg.nsems, rd32(l->seg.base + HDR_SIZE + L_FLAGS));
        seg_close(&l->seg, 0);
        free(l);
        return SHMIPC_ECORRUPT;
    }
    lock_init(l);
    *out = l;
    return SHMIPC_OK;
}

int shmipc_lock_create(const char *name, int recursive, shmipc_lock **out)
{
    *out = NULL;
    shmipc_lock *l = calloc(1, sizeof *l);
    if (!l) return SHMIPC_ESYS;
    int rc = seg_create(name, KIND_LOCK, 128, 0, 1, &l->seg);
    if (rc) { free(l); return rc; }
    wr32(l->seg.base + HDR_SIZE + L_FLAGS, recursive ? 1 : 0);
    lock_init(l);
    seg_publish(&l->seg);
    *out = l;
    return SHMIPC_OK;
}

struct lock_ctx { shmipc_lock *l; int held; int abandoned; };

static int lock_try(shmipc_lock *l)
{
    return ld_acq64(l->b + L_OWNER) == 0 && cas64(l->b + L_OWNER, 0, (int64_t)s_identity) == 0;
}

static int lock_cond(void *c)
{
    struct lock_ctx *x = c;
    if (!x->held) x->held = lock_try(x->l);
    return x->held;
}

static int lock_before_sleep(void *c)
{
    struct lock_ctx *x = c;
    if (x->held) return SHMIPC_OK;
    uint64_t owner = (uint64_t)ld_acq64(x->l->b + L_OWNER);
    if (owner == 0 || owner == s_identity) return SHMIPC_OK;
    if (is_identity_word(owner) && identity_alive(owner)) return SHMIPC_OK; /* a live holder is never overtaken */
    if ((uint64_t)cas64(x->l->b + L_OWNER, (int64_t)owner, (int64_t)s_identity) == owner) {
        x->held = 1;
        x->abandoned = 1;
    }
    return SHMIPC_OK;
}

static void lock_took(shmipc_lock *l)
{
    atomic_store_explicit(A32(l->b + L_THREAD), lock_thread(), memory_order_relaxed);
    atomic_store_explicit(A32(l->b + L_DEPTH), 1, memory_order_relaxed);
}

int shmipc_lock_acquire(shmipc_lock *l, int64_t timeout_ns)
{
    if (lock_try(l)) {
        lock_took(l);
        return SHMIPC_OK;
    }
    if ((uint64_t)ld_acq64(l->b + L_OWNER) == s_identity && ld_acq32(l->b + L_THREAD) == lock_thread()) {
        if (!l->recursive) return SHMIPC_EBUSY; /* this thread holds it: waiting would deadlock */
        atomic_fetch_add_explicit(A32(l->b + L_DEPTH), 1, memory_order_relaxed);
        return SHMIPC_OK;
    }
    struct lock_ctx x = {l, 0, 0};
    int rc = wait_for(&l->sig, &l->wait, deadline_from(timeout_ns), lock_cond, lock_before_sleep, &x);
    if (rc != SHMIPC_OK) return rc;
    lock_took(l);
    return x.abandoned ? SHMIPC_EABANDONED : SHMIPC_OK;
}

int shmipc_lock_release(shmipc_lock *l)
{
    if ((uint64_t)ld_acq64(l->b + L_OWNER) != s_identity) return SHMIPC_ENOTHELD;
    if (l->recursive) {
        if (ld_acq32(l->b + L_THREAD) != lock_thread()) return SHMIPC_ENOTHELD;
        int32_t depth = ld_acq32(l->b + L_DEPTH);
        if (depth > 1) {
            atomic_store_explicit(A32(l->b + L_DEPTH), depth - 1, memory_order_relaxed);
            return SHMIPC_OK;
        }
    }
    atomic_store_explicit(A32(l->b + L_THREAD), 0, memory_order_relaxed);
    atomic_exchange_explicit(A64(l->b + L_OWNER), 0, memory_order_seq_cst);
    notify(&l->sig); /* its own fence is redundant after the exchange, and harmless */
    return SHMIPC_OK;
}

void shmipc_lock_close(shmipc_lock *l)
{
    if (!l || l->embedded) return;
    seg_close(&l->seg, l->seg.creator);
    free(l);
}

/* §7.4. */
struct shmipc_event {
    struct seg seg;
    uint8_t *c;
    int auto_reset;
    struct signal sig;
    shmipc_wait wait;
};

static void event_init(shmipc_event *e)
{
    e->c = e->seg.base + HDR_SIZE;
    e->auto_reset = (rd32(e->c + E_FLAGS) & 1) != 0;
    e->sig = (struct signal){e->c + E_SLEEPERS, e->seg.sems[0], 0};
    e->wait = default_wait;
}

int shmipc_event_open(const char *name, shmipc_event **out)
{
    *out = NULL;
    shmipc_event *e = calloc(1, sizeof *e);
    if (!e) return SHMIPC_ESYS;
    int rc = seg_open(name, KIND_EVENT, &e->seg);
    if (rc) { free(e); return rc; }
    if (!control_shape(&e->seg, 128, 0, 1) || (rd32(e->seg.base + HDR_SIZE + E_FLAGS) & ~1u) != 0) {
        seg_close(&e->seg, 0);
        free(e);
        return SHMIPC_ECORRUPT;
    }
    event_init(e);
    *out = e;
    return SHMIPC_OK;
}

int shmipc_event_create(const char *name, int auto_reset, int initial_state, shmipc_event **out)
{
    *out = NULL;
    shmipc_event *e = calloc(1, sizeof *e);
    if (!e) return SHMIPC_ESYS;
    int rc = seg_create(name, KIND_EVENT, 128, 0, 1, &e->seg);
    if (rc) { free(e); return rc; }
    wr32(e->seg.base + HDR_SIZE + E_STATE, initial_state ? 1 : 0);
    wr32(e->seg.base + HDR_SIZE + E_FLAGS, auto_reset ? 1 : 0);
    event_init(e);
    seg_publish(&e->seg);
    *out = e;
    return SHMIPC_OK;
}

void shmipc_event_set(shmipc_event *e)
{
    atomic_store_explicit(A32(e->c + E_STATE), 1, memory_order_release);
    if (!e->auto_reset) atomic_fetch_add_explicit(A64(e->c + E_GENERATION), 1, memory_order_seq_cst);
    notify(&e->sig);
}

void shmipc_event_reset(shmipc_event *e) { atomic_store_explicit(A32(e->c + E_STATE), 0, memory_order_release); }

int shmipc_event_is_set(const shmipc_event *e) { return ld_acq32(e->c + E_STATE) != 0; }

struct event_ctx { shmipc_event *e; int64_t generation; };

static int event_cond(void *c)
{
    struct event_ctx *x = c;
    uint8_t *state = x->e->c + E_STATE;
    if (x->e->auto_reset) return ld_acq32(state) != 0 && cas32(state, 1, 0) == 1;
    return ld_acq32(state) != 0 || ld_acq64(x->e->c + E_GENERATION) != x->generation;
}

static int event_before_sleep(void *c) { (void)c; return SHMIPC_OK; }

int shmipc_event_wait(shmipc_event *e, int64_t timeout_ns)
{
    struct event_ctx x = {e, ld_acq64(e->c + E_GENERATION)};
    return wait_for(&e->sig, &e->wait, deadline_from(timeout_ns), event_cond, event_before_sleep, &x);
}

void shmipc_event_close(shmipc_event *e)
{
    if (!e) return;
    seg_close(&e->seg, e->seg.creator);
    free(e);
}

/* §7.5. Count changes by CAS only; a release's CAS is the notifier's full fence. */
enum { KIND_SEMAPHORE = 9, S_COUNT = 0, S_MAX = 4, S_SLEEPERS = 8 };

struct shmipc_semaphore {
    struct seg seg;
    uint8_t *c;
    int32_t max;
    struct signal sig;
    shmipc_wait wait;
};

int shmipc_semaphore_open(const char *name, shmipc_semaphore **out)
{
    *out = NULL;
    shmipc_semaphore *s = calloc(1, sizeof *s);
    if (!s) return SHMIPC_ESYS;
    int rc = seg_open(name, KIND_SEMAPHORE, &s->seg);
    if (rc) { free(s); return rc; }
    s->c = s->seg.base + HDR_SIZE;
    s->max = (int32_t)rd32(s->c + S_MAX);
    int32_t count = ld_acq32(s->c + S_COUNT);
    if (!control_shape(&s->seg, 128, 0, 1) || s->max < 1 || count < 0 || count > s->max) {
        seg_close(&s->seg, 0);
        free(s);
        return SHMIPC_ECORRUPT;
    }
    s->sig = (struct signal){s->c + S_SLEEPERS, s->seg.sems[0], 0};
    s->wait = default_wait;
    *out = s;
    return SHMIPC_OK;
}

static int semaphore_take(void *ctx)
{
    shmipc_semaphore *s = ctx;
    int32_t cur = ld_acq32(s->c + S_COUNT);
    while (cur > 0) {
        int32_t seen = cas32(s->c + S_COUNT, cur, cur - 1);
        if (seen == cur) return 1;
        cur = seen;
    }
    return 0;
}

static int semaphore_before_sleep(void *ctx) { (void)ctx; return SHMIPC_OK; }

int shmipc_semaphore_wait(shmipc_semaphore *s, int64_t timeout_ns)
{
    return wait_for(&s->sig, &s->wait, deadline_from(timeout_ns), semaphore_take, semaphore_before_sleep, s);
}

int shmipc_semaphore_release(shmipc_semaphore *s, int32_t n, int32_t *previous)
{
    if (n < 1) return SHMIPC_EINVALID;
    int32_t cur = ld_acq32(s->c + S_COUNT);
    for (;;) {
        if (cur > s->max - n) return SHMIPC_EINVALID;
        int32_t seen = cas32(s->c + S_COUNT, cur, cur + n);
        if (seen == cur) break;
        cur = seen;
    }
    if (previous) *previous = cur;
    notify(&s->sig);
    return SHMIPC_OK;
}

void shmipc_semaphore_close(shmipc_semaphore *s)
{
    if (!s) return;
    seg_close(&s->seg, s->seg.creator);
    free(s);
}


/* ================================================================= §7.1 Counter */

enum { KIND_ARRAY = 4, KIND_VALUE = 5, KIND_COUNTER = 6, KIND_CONDITION = 10, KIND_BARRIER = 11 };

/* Value at control offset 0: changed only by seq_cst RMWs (add, exchange, CAS), read with acquire. No lock, no semaphore. */
struct shmipc_counter {
    struct seg seg;
    uint8_t *v;
};

int shmipc_counter_open(const char *name, shmipc_counter **out)
{
    *out = NULL;
    shmipc_counter *c = calloc(1, sizeof *c);
    if (!c) return SHMIPC_ESYS;
    int rc = seg_open(name, KIND_COUNTER, &c->seg);
    if (rc) { free(c); return rc; }
    if (!control_shape(&c->seg, 128, 0, 0)) {
        refuse(SHMIPC_ECORRUPT, "counter '%s': control block of %llu bytes, data of %llu, %u semaphores; a counter has 128, 0, 0", name,
               (unsigned long long)rd64(c->seg.base + 40), (unsigned long long)rd64(c->seg.base + 56), c->seg.nsems);
        seg_close(&c->seg, 0);
        free(c);
        return SHMIPC_ECORRUPT;
    }
    c->v = c->seg.base + HDR_SIZE;
    *out = c;
    return SHMIPC_OK;
}

int shmipc_counter_create(const char *name, int64_t initial, shmipc_counter **out)
{
    *out = NULL;
    shmipc_counter *c = calloc(1, sizeof *c);
    if (!c) return SHMIPC_ESYS;
    int rc = seg_create(name, KIND_COUNTER, 128, 0, 0, &c->seg);
    if (rc) { free(c); return rc; }
    c->v = c->seg.base + HDR_SIZE;
    wr64(c->v, (uint64_t)initial); /* published by the release store of Magic */
    seg_publish(&c->seg);
    *out = c;
    return SHMIPC_OK;
}

int64_t shmipc_counter_read(const shmipc_counter *c) { return ld_acq64(c->v); }
int64_t shmipc_counter_add(shmipc_counter *c, int64_t delta)
{
    /* Wrapping, as .NET's Interlocked.Add: unsigned arithmetic has no overflow. */
    return (int64_t)((uint64_t)atomic_fetch_add_explicit(A64(c->v), delta, memory_order_seq_cst) + (uint64_t)delta);
}
int64_t shmipc_counter_exchange(shmipc_counter *c, int64_t value) { return atomic_exchange_explicit(A64(c->v), value, memory_order_seq_cst); }
int64_t shmipc_counter_compare_exchange(shmipc_counter *c, int64_t value, int64_t comparand) { return cas64(c->v, comparand, value); }

void shmipc_counter_close(shmipc_counter *c)
{
    if (!c) return;
    seg_close(&c->seg, c->seg.creator);
    free(c);
}

/* ================================================================= §7.2 Array, Value */

enum { A_CONTROL = 256, A_ELEMENT_SIZE = 0, A_LENGTH = 8, A_LOCK = 128 };

/* ElementSize and Length are written once by the creator; the elements are plain memory ordered by the embedded
 * recursive lock (control offset 128, waiters on s0), which this handle owns as `lock` (never closed on its own). */
struct shmipc_array {
    struct seg seg;
    int32_t element_size;
    int64_t length;
    shmipc_lock lock;
};

static void array_bind(shmipc_array *a)
{
    uint8_t *control = a->seg.base + HDR_SIZE;
    a->element_size = (int32_t)rd32(control + A_ELEMENT_SIZE);
    a->length = (int64_t)rd64(control + A_LENGTH);
    memset(&a->lock, 0, sizeof a->lock);
    a->lock.seg.fd = -1;
    a->lock.embedded = 1;
    lock_bind(&a->lock, control + A_LOCK, a->seg.sems[0]);
}

static int array_open(const char *name, uint32_t kind, int32_t element_size, shmipc_array **out)
{
    *out = NULL;
    if (element_size < 1) return refuse(SHMIPC_EINVALID, "%s '%s': element size %d", kind_name(kind), name, element_size);
    shmipc_array *a = calloc(1, sizeof *a);
    if (!a) return SHMIPC_ESYS;
    int rc = seg_open(name, kind, &a->seg);
    if (rc) { free(a); return rc; }
    /* The shape first: the words read below lie inside a control block of that size. */
    int shaped = control_shape(&a->seg, A_CONTROL, -1, 1);
    uint8_t *control = a->seg.base + HDR_SIZE;
    int32_t stored_size = shaped ? (int32_t)rd32(control + A_ELEMENT_SIZE) : 0;
    int64_t length = shaped ? (int64_t)rd64(control + A_LENGTH) : 0;
    uint64_t dsize = rd64(a->seg.base + 56);
    uint32_t flags = shaped ? rd32(control + A_LOCK + L_FLAGS) : 0;
    rc = SHMIPC_ECORRUPT;
    if (!shaped)
        refuse(rc, "%s '%s': control block of %llu bytes and %u semaphores; an array has %d and 1", kind_name(kind), name,
               (unsigned long long)rd64(a->seg.base + 40), a->seg.nsems, A_CONTROL);
    else if (stored_size != element_size)
        refuse(rc, "%s '%s': elements of %d bytes, the opener's have %d", kind_name(kind), name, stored_size, element_size);
    else if (length < 0 || length > INT32_MAX || (uint64_t)length * (uint64_t)stored_size != dsize)
        refuse(rc, "%s '%s': length %lld of %d-byte elements does not match the data region of %llu bytes", kind_name(kind), name,
               (long long)length, stored_size, (unsigned long long)dsize);
    else if (kind == KIND_VALUE && length != 1)
        refuse(rc, "value '%s' holds one element, this one %lld", name, (long long)length);
    else if ((flags & ~1u) != 0)
        refuse(rc, "%s '%s': lock flags 0x%x: unknown bits", kind_name(kind), name, flags);
    else
        rc = SHMIPC_OK;
    if (rc) {
        seg_close(&a->seg, 0);
        free(a);
        return rc;
    }
    array_bind(a);
    *out = a;
    return SHMIPC_OK;
}

static int array_create(const char *name, uint32_t kind, int32_t element_size, int64_t length, const void *first, shmipc_array **out)
{
    *out = NULL;
    if (element_size < 1 || length < 0 || length > INT32_MAX) return SHMIPC_EINVALID;
    shmipc_array *a = calloc(1, sizeof *a);
    if (!a) return SHMIPC_ESYS;
    int rc = seg_create(name, kind, A_CONTROL, (uint64_t)element_size * (uint64_t)length, 1, &a->seg);
    if (rc) { free(a); return rc; }
    uint8_t *control = a->seg.base + HDR_SIZE; /* a fresh file is zero: elements, lock Owner and Sleepers included */
    wr32(control + A_ELEMENT_SIZE, (uint32_t)element_size);
    wr64(control + A_LENGTH, (uint64_t)length);
    wr32(control + A_LOCK + L_FLAGS, 1); /* recursive, as Python's get_lock() */
    if (first && length > 0) memcpy(control + A_CONTROL, first, (size_t)element_size);
    array_bind(a);
    seg_publish(&a->seg);
    *out = a;
    return SHMIPC_OK;
}

int shmipc_array_open(const char *name, int32_t element_size, shmipc_array **out) { return array_open(name, KIND_ARRAY, element_size, out); }
int shmipc_array_create(const char *name, int32_t element_size, int64_t length, shmipc_array **out)
{
    return array_create(name, KIND_ARRAY, element_size, length, NULL, out);
}
int shmipc_value_open(const char *name, int32_t element_size, shmipc_array **out) { return array_open(name, KIND_VALUE, element_size, out); }
int shmipc_value_create(const char *name, int32_t element_size, const void *initial, shmipc_array **out)
{
    return array_create(name, KIND_VALUE, element_size, 1, initial, out);
}

void *shmipc_array_data(const shmipc_array *a) { return a->seg.base + HDR_SIZE + A_CONTROL; }
int64_t shmipc_array_length(const shmipc_array *a) { return a->length; }
int32_t shmipc_array_element_size(const shmipc_array *a) { return a->element_size; }
shmipc_lock *shmipc_array_lock(shmipc_array *a) { return &a->lock; }

void shmipc_array_close(shmipc_array *a)
{
    if (!a) return;
    seg_close(&a->seg, a->seg.creator);
    free(a);
}

/* ================================================================= §7.6 Condition */

enum { C_CONTROL = 1152, C_SLEEPERS = 0, C_SLOT_COUNT = 4, C_SLOTS = 128, C_SLOT = 16, C_NSLOTS = 64, C_TICKET = 8,
       TICKET_WAITING = 0, TICKET_NOTIFIED = 1, TICKET_WITHDRAWN = 2 };

/* Design: a waiter claims a slot (CAS Owner 0 -> me) while it holds the lock, releases the lock, and waits (§4) for its
 * Ticket to turn 1. Notifiers hold the lock too, so a Notify sees exactly the waiters that registered before it. A waiter
 * whose time runs out withdraws by CAS Ticket 0 -> 2; finding 1 there, it was notified and counts as woken. Leaving:
 * Ticket 0 (release), then Owner 0 (release): a free slot always has Ticket 0. Dead owners' slots are freed by Notify
 * (Ticket 0, then CAS Owner dead -> 0) and by a waiter that finds no free slot. */
struct shmipc_condition {
    struct seg seg;
    uint8_t *c;
    shmipc_lock *lock;
    struct signal sig;
    shmipc_wait wait;
};

static int cond_bind(shmipc_condition *c, shmipc_lock *lock, shmipc_condition **out)
{
    c->c = c->seg.base + HDR_SIZE;
    c->lock = lock;
    c->sig = (struct signal){c->c + C_SLEEPERS, c->seg.sems[0], 0};
    c->wait = default_wait;
    *out = c;
    return SHMIPC_OK;
}

int shmipc_condition_open(const char *name, shmipc_lock *lock, shmipc_condition **out)
{
    *out = NULL;
    if (!lock) return refuse(SHMIPC_EINVALID, "condition '%s': no lock to bind it to", name);
    shmipc_condition *c = calloc(1, sizeof *c);
    if (!c) return SHMIPC_ESYS;
    int rc = seg_open(name, KIND_CONDITION, &c->seg);
    if (rc) { free(c); return rc; }
    int shaped = control_shape(&c->seg, C_CONTROL, 0, 1);
    int32_t slots = shaped ? (int32_t)rd32(c->seg.base + HDR_SIZE + C_SLOT_COUNT) : 0; /* read only inside the block */
    if (!shaped || slots != C_NSLOTS) {
        refuse(SHMIPC_ECORRUPT, "condition '%s': control block of %llu bytes, data of %llu, %u semaphores, %d slots; a condition has %d, 0, 1, %d",
               name, (unsigned long long)rd64(c->seg.base + 40), (unsigned long long)rd64(c->seg.base + 56), c->seg.nsems, slots, C_CONTROL,
               C_NSLOTS);
        seg_close(&c->seg, 0);
        free(c);
        return SHMIPC_ECORRUPT;
    }
    return cond_bind(c, lock, out);
}

int shmipc_condition_create(const char *name, shmipc_lock *lock, shmipc_condition **out)
{
    *out = NULL;
    if (!lock) return SHMIPC_EINVALID;
    shmipc_condition *c = calloc(1, sizeof *c);
    if (!c) return SHMIPC_ESYS;
    int rc = seg_create(name, KIND_CONDITION, C_CONTROL, 0, 1, &c->seg);
    if (rc) { free(c); return rc; }
    wr32(c->seg.base + HDR_SIZE + C_SLOT_COUNT, C_NSLOTS);
    cond_bind(c, lock, out);
    seg_publish(&c->seg);
    return SHMIPC_OK;
}

static int lock_held_here(const shmipc_lock *l)
{
    return (uint64_t)ld_acq64(l->b + L_OWNER) == s_identity && (!l->recursive || ld_acq32(l->b + L_THREAD) == lock_thread());
}

static uint8_t *cond_slot(shmipc_condition *c, int i) { return c->c + C_SLOTS + i * C_SLOT; }

/* Ticket 0 first, so that whoever claims the slot next finds it "waiting"; then CAS Owner dead -> 0. */
static void cond_free_slot(uint8_t *slot, int64_t owner)
{
    st_rel32(slot + C_TICKET, TICKET_WAITING);
    cas64(slot, owner, 0);
}

static int owner_alive(int64_t owner) { return is_identity_word((uint64_t)owner) && identity_alive((uint64_t)owner); }

/* Claims a free slot; when none is, frees the slots of dead waiters and looks again (as .NET's ClaimSlot). */
static uint8_t *cond_claim(shmipc_condition *c)
{
    for (int pass = 0; pass < 3; pass++) {
        for (int i = 0; i < C_NSLOTS; i++) {
            uint8_t *slot = cond_slot(c, i);
            int64_t owner = ld_acq64(slot);
            if (pass != 1 && owner == 0 && cas64(slot, 0, (int64_t)s_identity) == 0) return slot;
            if (pass == 1 && owner != 0 && (uint64_t)owner != s_identity && !owner_alive(owner)) cond_free_slot(slot, owner);
        }
    }
    return NULL;
}

static int ticket_cond(void *ctx) { return ld_acq32((uint8_t *)ctx + C_TICKET) == TICKET_NOTIFIED; }
static int no_check(void *ctx) { (void)ctx; return SHMIPC_OK; }

int shmipc_condition_wait(shmipc_condition *c, int64_t timeout_ns)
{
    shmipc_lock *l = c->lock;
    if (!lock_held_here(l)) return SHMIPC_ENOTHELD;
    uint8_t *slot = cond_claim(c);
    if (!slot) return refuse(SHMIPC_EBUSY, "condition '%s' has %d waiters already, its limit", c->seg.name, C_NSLOTS);
    /* A recursive lock is released whole and taken back at the same depth (Python's Condition over an RLock). */
    int32_t depth = l->recursive ? ld_acq32(l->b + L_DEPTH) : 1;
    if (l->recursive) atomic_store_explicit(A32(l->b + L_DEPTH), 1, memory_order_relaxed);
    shmipc_lock_release(l);
    wait_for(&c->sig, &c->wait, deadline_from(timeout_ns), ticket_cond, no_check, slot);
    /* Withdraw unless notified; a notification that lands now still counts. */
    int notified = cas32(slot + C_TICKET, TICKET_WAITING, TICKET_WITHDRAWN) == TICKET_NOTIFIED;
    st_rel32(slot + C_TICKET, TICKET_WAITING);
    st_rel64(slot, 0);
    int rc = shmipc_lock_acquire(l, SHMIPC_FOREVER);
    if (l->recursive) atomic_store_explicit(A32(l->b + L_DEPTH), depth, memory_order_relaxed);
    if (rc == SHMIPC_EABANDONED) return rc;
    return notified ? SHMIPC_OK : SHMIPC_ETIMEOUT;
}

int shmipc_condition_notify(shmipc_condition *c, int n)
{
    if (n < 1) return SHMIPC_EINVALID;
    if (!lock_held_here(c->lock)) return SHMIPC_ENOTHELD;
    int notified = 0;
    for (int i = 0; i < C_NSLOTS && notified < n; i++) {
        uint8_t *slot = cond_slot(c, i);
        int64_t owner = ld_acq64(slot);
        if (owner == 0 || ld_acq32(slot + C_TICKET) != TICKET_WAITING) continue;
        if ((uint64_t)owner != s_identity && !owner_alive(owner)) { /* a dead waiter never takes a live one's notification */
            cond_free_slot(slot, owner);
            continue;
        }
        if (cas32(slot + C_TICKET, TICKET_WAITING, TICKET_NOTIFIED) == TICKET_WAITING) notified++;
    }
    if (notified > 0) notify(&c->sig); /* the CASes were the full fence; notify's own is harmless */
    return SHMIPC_OK;
}

int shmipc_condition_notify_all(shmipc_condition *c) { return shmipc_condition_notify(c, INT32_MAX); }

void shmipc_condition_close(shmipc_condition *c)
{
    if (!c) return;
    seg_close(&c->seg, c->seg.creator);
    free(c);
}

/* ================================================================= §7.7 Barrier */

enum { B_CONTROL = 1152, B_PHASE = 0, B_ARRIVED = 8, B_BROKEN = 12, B_SLEEPERS = 16, B_PARTIES = 20, B_EPOCH = 24,
       B_SLOTS = 128, B_SLOT = 16, B_NSLOTS = 64, B_ARRIVED_PHASE = 8 };

/* Design: every open handle claims a slot (CAS Owner 0 -> me) and frees it on close (CAS me -> 0). Arrive: store the
 * slot's ArrivedPhase = p + 1, then ++Arrived; the last arriver stores Arrived = 0, then increments Phase (the §4 full
 * fence) and wakes everyone. Others wait for "Phase != p or Broken or Epoch changed"; Phase != p wins. Before every sleep
 * slice a waiter looks for a participant that has not arrived in phase p and is dead: it breaks the barrier. */
struct shmipc_barrier {
    struct seg seg;
    uint8_t *c;
    uint8_t *slot;
    int32_t parties;
    struct signal sig;
    shmipc_wait wait;
};

static void barrier_break(shmipc_barrier *b)
{
    atomic_exchange_explicit(A32(b->c + B_BROKEN), 1, memory_order_seq_cst);
    notify(&b->sig);
}

static int barrier_bind(shmipc_barrier *b, shmipc_barrier **out)
{
    b->c = b->seg.base + HDR_SIZE;
    b->parties = (int32_t)rd32(b->c + B_PARTIES);
    b->sig = (struct signal){b->c + B_SLEEPERS, b->seg.sems[0], 0};
    b->wait = default_wait;
    for (int pass = 0; pass < 2 && !b->slot; pass++) {
        for (int i = 0; i < B_NSLOTS && !b->slot; i++) {
            uint8_t *slot = b->c + B_SLOTS + i * B_SLOT;
            if (cas64(slot, 0, (int64_t)s_identity) == 0) {
                st_rel64(slot + B_ARRIVED_PHASE, 0);
                b->slot = slot;
            }
        }
        for (int i = 0; i < B_NSLOTS && !b->slot; i++) { /* full: dead processes can no longer arrive; free their slots */
            uint8_t *slot = b->c + B_SLOTS + i * B_SLOT;
            int64_t owner = ld_acq64(slot);
            if ((uint64_t)owner != s_identity && !owner_alive(owner)) cas64(slot, owner, 0);
        }
    }
    if (!b->slot) return refuse(SHMIPC_EBUSY, "barrier '%s' has %d open handles already, its limit", b->seg.name, B_NSLOTS);
    *out = b;
    return SHMIPC_OK;
}

int shmipc_barrier_open(const char *name, shmipc_barrier **out)
{
    *out = NULL;
    shmipc_barrier *b = calloc(1, sizeof *b);
    if (!b) return SHMIPC_ESYS;
    int rc = seg_open(name, KIND_BARRIER, &b->seg);
    if (rc) { free(b); return rc; }
    int shaped = control_shape(&b->seg, B_CONTROL, 0, 1);
    int32_t parties = shaped ? (int32_t)rd32(b->seg.base + HDR_SIZE + B_PARTIES) : 0; /* read only inside the block */
    rc = SHMIPC_ECORRUPT;
    if (!shaped)
        refuse(rc, "barrier '%s': control block of %llu bytes, data of %llu, %u semaphores; a barrier has %d, 0, 1", name,
               (unsigned long long)rd64(b->seg.base + 40), (unsigned long long)rd64(b->seg.base + 56), b->seg.nsems, B_CONTROL);
    else if (parties < 1 || parties > B_NSLOTS)
        refuse(rc, "barrier '%s': participant count %d is not between 1 and %d", name, parties, B_NSLOTS);
    else
        rc = barrier_bind(b, out);
    if (rc) {
        seg_close(&b->seg, 0);
        free(b);
    }
    return rc;
}

int shmipc_barrier_create(const char *name, int32_t participants, shmipc_barrier **out)
{
    *out = NULL;
    if (participants < 1 || participants > B_NSLOTS) return SHMIPC_EINVALID;
    shmipc_barrier *b = calloc(1, sizeof *b);
    if (!b) return SHMIPC_ESYS;
    int rc = seg_create(name, KIND_BARRIER, B_CONTROL, 0, 1, &b->seg);
    if (rc) { free(b); return rc; }
    wr32(b->seg.base + HDR_SIZE + B_PARTIES, (uint32_t)participants);
    barrier_bind(b, out); /* the fresh table is empty: slot 0 */
    seg_publish(&b->seg);
    return SHMIPC_OK;
}

struct barrier_ctx { shmipc_barrier *b; int64_t phase, epoch; };

static int barrier_cond(void *ctx)
{
    struct barrier_ctx *x = ctx;
    uint8_t *c = x->b->c;
    return ld_acq64(c + B_PHASE) != x->phase || ld_acq32(c + B_BROKEN) != 0 || ld_acq64(c + B_EPOCH) != x->epoch;
}

/* A participant other than this process that has not arrived in this phase and is dead breaks the barrier. */
static int barrier_before_sleep(void *ctx)
{
    struct barrier_ctx *x = ctx;
    for (int i = 0; i < B_NSLOTS; i++) {
        uint8_t *slot = x->b->c + B_SLOTS + i * B_SLOT;
        int64_t owner = ld_acq64(slot);
        if (owner == 0 || (uint64_t)owner == s_identity || ld_acq64(slot + B_ARRIVED_PHASE) == x->phase + 1 || owner_alive(owner)) continue;
        cas64(slot, owner, 0);
        barrier_break(x->b);
        break;
    }
    return SHMIPC_OK;
}

int shmipc_barrier_wait(shmipc_barrier *b, int64_t timeout_ns, int64_t *phase_out)
{
    uint8_t *c = b->c;
    int64_t epoch = ld_acq64(c + B_EPOCH), phase = ld_acq64(c + B_PHASE);
    if (phase_out) *phase_out = phase;
    if (ld_acq32(c + B_BROKEN) != 0) return SHMIPC_EBROKEN;
    st_rel64(b->slot + B_ARRIVED_PHASE, phase + 1);
    int32_t arrived = atomic_fetch_add_explicit(A32(c + B_ARRIVED), 1, memory_order_seq_cst) + 1;
    if (arrived >= b->parties) {
        st_rel32(c + B_ARRIVED, 0);
        atomic_fetch_add_explicit(A64(c + B_PHASE), 1, memory_order_seq_cst); /* §4 notifier step 1 */
        notify(&b->sig);
        return SHMIPC_OK;
    }
    struct barrier_ctx x = {b, phase, epoch};
    int rc = wait_for(&b->sig, &b->wait, deadline_from(timeout_ns), barrier_cond, barrier_before_sleep, &x);
    if (ld_acq64(c + B_PHASE) != phase) return SHMIPC_OK;
    if (rc == SHMIPC_ETIMEOUT) {
        barrier_break(b); /* as in Python: a waiter's timeout breaks it for all */
        return SHMIPC_ETIMEOUT;
    }
    return SHMIPC_EBROKEN;
}

void shmipc_barrier_abort(shmipc_barrier *b) { barrier_break(b); }

void shmipc_barrier_reset(shmipc_barrier *b)
{
    st_rel32(b->c + B_ARRIVED, 0);
    st_rel32(b->c + B_BROKEN, 0);
    atomic_fetch_add_explicit(A64(b->c + B_EPOCH), 1, memory_order_seq_cst);
    notify(&b->sig);
}

int shmipc_barrier_broken(const shmipc_barrier *b) { return ld_acq32(b->c + B_BROKEN) != 0; }
int64_t shmipc_barrier_phase(const shmipc_barrier *b) { return ld_acq64(b->c + B_PHASE); }
int32_t shmipc_barrier_participants(const shmipc_barrier *b) { return b->parties; }

void shmipc_barrier_close(shmipc_barrier *b)
{
    if (!b) return;
    if (b->slot) cas64(b->slot, (int64_t)s_identity, 0);
    seg_close(&b->seg, b->seg.creator);
    free(b);
}
