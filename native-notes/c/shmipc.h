/*
 * shmipc.h: a C99 peer of ShmIpc (the .NET library) on Linux, written from native-notes/LAYOUT.md.
 *
 * Opens (or creates) a ShmIpc Queue or Pipe by name and sends and receives messages, and every shared-state kind
 * (LAYOUT.md §7: SharedMemory, Array, Value, Counter, Lock, Event, Semaphore, Condition, Barrier), with the same
 * bytes, the same commit protocol, the same crash rules and the same named semaphores as the .NET side.
 * libc and pthread only; memory ordering with C11 <stdatomic.h>.
 *
 *   cc -std=c11 -O2 -Wall -Wextra -pthread -c shmipc.c
 *
 * Every call returns SHMIPC_OK (0) or a negative SHMIPC_E* code; shmipc_strerror() names it. Calls
 * that can fail for an OS reason leave errno set. A handle is used by one thread at a time.
 * Timeouts are in nanoseconds; SHMIPC_FOREVER waits without limit, 0 does not wait at all.
 */
#ifndef SHMIPC_H
#define SHMIPC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHMIPC_FOREVER (-1LL)

enum shmipc_status {
    SHMIPC_OK = 0,
    SHMIPC_ETIMEOUT = -1,      /* nothing within the timeout (empty / full); nothing changed */
    SHMIPC_ENOENT = -2,        /* no segment (or semaphore) of that name */
    SHMIPC_EINVALID = -3,      /* bad argument: name, size, capacity */
    SHMIPC_ETOOLONG = -4,      /* message longer than the object's maximum; nothing written */
    SHMIPC_ETOOSMALL = -5,     /* the next message does not fit the buffer; it was left in place */
    SHMIPC_ECLOSED = -6,       /* pipe: the other end closed or its process died (after draining) */
    SHMIPC_EBUSY = -7,         /* pipe: the second end is taken; segment: being removed */
    SHMIPC_EEXIST = -8,        /* create: a segment of that name exists */
    SHMIPC_ECORRUPT = -9,      /* shared state is inconsistent (a bad peer); nothing consumed */
    SHMIPC_ETRUNCATED = -10,   /* open: file shorter than its header says (or than a header) */
    SHMIPC_ENOTREADY = -11,    /* open: the creator never published the header (magic stays 0) */
    SHMIPC_EFOREIGN = -12,     /* open: not a ShmIpc segment (magic) */
    SHMIPC_EVERSION = -13,     /* open: another layout version */
    SHMIPC_EWRONGKIND = -14,   /* open: a Pipe opened as a Queue or the reverse */
    SHMIPC_ESYS = -15,         /* an OS call failed: see errno */
    SHMIPC_ENOSEND = -16,      /* pipe: this end of a one-way pipe only receives (or only sends) */
    SHMIPC_ESHUTDOWN = -17,    /* queue: shut down (§6.9): put refused; get after the drain (at once if immediate) */
    SHMIPC_EABANDONED = -18,   /* lock: its holder died holding it; THE CALLER HOLDS IT NOW (check, then release) */
    SHMIPC_ENOTHELD = -19,     /* lock: released by a process (or thread) that does not hold it */
    SHMIPC_EBROKEN = -20,      /* barrier: broken (a waiter timed out, a participant died, abort, or reset while waiting) */
};

const char *shmipc_strerror(int status);

/* Why the last open (or create) that failed in this thread refused its object, naming it: "barrier 'b1': participant
 * count 65 is not between 1 and 64", "'jobs' is a Queue segment, expected Lock". Empty when none failed yet. */
const char *shmipc_last_error(void);

/* How blocking calls wait: spin, then sleep on the semaphore in slices (LAYOUT.md §4). */
typedef struct shmipc_wait {
    int64_t spin_ns;   /* default 50 us */
    int64_t slice_ns;  /* default 100 ms; bounds how late a dead peer is noticed */
} shmipc_wait;

/* ------------------------------------------------------------------ Queue (LAYOUT.md §6) */

typedef struct shmipc_queue shmipc_queue;

/* Opens an existing queue, validating header (§3) and control block (§6.1). */
int shmipc_queue_open(const char *name, shmipc_queue **out);

/* Creates a queue (capacity: power of two, 4 KiB..1 GiB; max_message_length < 0: the .NET default).
 * The creator unlinks the names on shmipc_queue_close. SHMIPC_EEXIST if the name exists. */
int shmipc_queue_create(const char *name, int64_t capacity, int32_t max_message_length, shmipc_queue **out);

/* SHMIPC_ESHUTDOWN once the queue is shut down (also while waiting for space); nothing written. */
int shmipc_queue_put(shmipc_queue *q, const void *message, size_t length, int64_t timeout_ns);

/* Takes the next message into buffer; *length receives its length (also on SHMIPC_ETOOSMALL).
 * On a shut-down queue: the messages left, then SHMIPC_ESHUTDOWN instead of waiting (at once if immediate). */
int shmipc_queue_get(shmipc_queue *q, void *buffer, size_t capacity, size_t *length, int64_t timeout_ns);

/* Shuts the queue down for every process (§6.9; Python 3.13's Queue.shutdown): immediate != 0 also discards
 * what is queued. Wakes every sleeper. Cannot be undone. */
int shmipc_queue_shutdown(shmipc_queue *q, int immediate);

/* 0 open, 1 shut down (draining), 2 shut down immediately. */
int shmipc_queue_shutdown_state(const shmipc_queue *q);

int32_t shmipc_queue_max_message_length(const shmipc_queue *q);
void shmipc_queue_set_wait(shmipc_queue *q, shmipc_wait wait);
void shmipc_queue_close(shmipc_queue *q);

/* Acknowledged queues (LAYOUT.md §6.10): a message taken stays taken, its bytes copied into buffer, until it is
 * acked (done) or nacked (delivered again, delivery_count one higher). A process that dies holding one has it
 * delivered again once a waiting consumer proves it dead. shmipc_queue_get on such a queue takes and acks. */
typedef struct { int64_t position; int32_t delivery_count; } shmipc_delivery;
/* SHMIPC_EINVALID on a plain queue; otherwise as shmipc_queue_get. */
int shmipc_queue_take(shmipc_queue *q, void *buffer, size_t capacity, size_t *length, int64_t timeout_ns, shmipc_delivery *delivery);
/* SHMIPC_ENOTHELD when the delivery was already settled. */
int shmipc_queue_ack(shmipc_queue *q, const shmipc_delivery *delivery);
int shmipc_queue_nack(shmipc_queue *q, const shmipc_delivery *delivery);

/* Testing only: claims a record for `length` bytes and never commits it (a producer "killed while
 * writing"). Returns its position, or a negative status. */
int64_t shmipc_queue_claim_only(shmipc_queue *q, int32_t length);

/* ------------------------------------------------------------------ Pipe (LAYOUT.md §5) */

typedef struct shmipc_pipe shmipc_pipe;

/* Connects to an existing pipe as end 1 (CAS of End1.Owner 0 -> my identity); SHMIPC_EBUSY if taken. */
int shmipc_pipe_connect(const char *name, shmipc_pipe **out);

/* Attaches to a shared end with a share token "shmpipe2:<end>:<slot>:<nonce>:<unlink>:<name>" that a holder of the end made
 * (LAYOUT.md §5.7; .NET: ShmConnection.Share, done by ShmProcess when it passes an end to a child). Several processes
 * may then send (or receive) on that end: each send takes the ring's SendLock, each receive its ReceiveLock, and a
 * holder killed while holding one is taken over (pid + start time). SHMIPC_EBUSY: the token was used already.
 * shmipc_pipe_close of a shared end closes it for the peer only when it was the last holder. */
int shmipc_pipe_attach_shared(const char *token, shmipc_pipe **out);

/* Creates a pipe and holds end 0 (capacity per ring: power of two 1 KiB..1 GiB; max < 0: capacity/4). */
int shmipc_pipe_create(const char *name, int64_t capacity, int32_t max_message_length, int duplex, shmipc_pipe **out);

int shmipc_pipe_send(shmipc_pipe *p, const void *message, size_t length, int64_t timeout_ns);
int shmipc_pipe_recv(shmipc_pipe *p, void *buffer, size_t capacity, size_t *length, int64_t timeout_ns);

/* SHMIPC_OK when a message waits or the peer is gone (recv then says which); SHMIPC_ETIMEOUT otherwise. */
int shmipc_pipe_poll(shmipc_pipe *p, int64_t timeout_ns);

int32_t shmipc_pipe_max_message_length(const shmipc_pipe *p);
void shmipc_pipe_set_wait(shmipc_pipe *p, shmipc_wait wait);

/* Closes this end (Closed = 1, wakes the peer); the creator's end also unlinks the names. */
void shmipc_pipe_close(shmipc_pipe *p);

/* Testing only: writes a record header and payload past Tail without publishing it (killed mid-write). */
int shmipc_pipe_write_uncommitted(shmipc_pipe *p, const void *message, size_t length);

/* ------------------------------------------------------------------ Shared state (LAYOUT.md §7) */

/* SharedMemory (§7.1): a named block of bytes. */
typedef struct shmipc_shm shmipc_shm;
int shmipc_shm_open(const char *name, shmipc_shm **out);
int shmipc_shm_create(const char *name, int64_t size, shmipc_shm **out);
void *shmipc_shm_data(const shmipc_shm *m);
int64_t shmipc_shm_size(const shmipc_shm *m);
void shmipc_shm_close(shmipc_shm *m);

/* Lock (§7.3), also Python's RLock when its creator made it recursive (recursion per calling thread). */
typedef struct shmipc_lock shmipc_lock;
int shmipc_lock_open(const char *name, shmipc_lock **out);
int shmipc_lock_create(const char *name, int recursive, shmipc_lock **out);
/* SHMIPC_OK; SHMIPC_EABANDONED (held by the caller: the previous holder died holding it); SHMIPC_ETIMEOUT. */
int shmipc_lock_acquire(shmipc_lock *l, int64_t timeout_ns);
/* SHMIPC_OK, or SHMIPC_ENOTHELD. */
int shmipc_lock_release(shmipc_lock *l);
void shmipc_lock_close(shmipc_lock *l);

/* Event (§7.4): manual reset, or auto reset (one waiter per set) when its creator asked. */
typedef struct shmipc_event shmipc_event;
int shmipc_event_open(const char *name, shmipc_event **out);
int shmipc_event_create(const char *name, int auto_reset, int initial_state, shmipc_event **out);
void shmipc_event_set(shmipc_event *e);
void shmipc_event_reset(shmipc_event *e);
int shmipc_event_is_set(const shmipc_event *e);
/* SHMIPC_OK when set (auto reset: and taken), SHMIPC_ETIMEOUT. */
int shmipc_event_wait(shmipc_event *e, int64_t timeout_ns);
void shmipc_event_close(shmipc_event *e);

/* Semaphore (§7.5): counts, at most a maximum fixed by its creator. */
typedef struct shmipc_semaphore shmipc_semaphore;
int shmipc_semaphore_open(const char *name, shmipc_semaphore **out);
/* SHMIPC_OK (a count taken) or SHMIPC_ETIMEOUT. */
int shmipc_semaphore_wait(shmipc_semaphore *s, int64_t timeout_ns);
/* Adds n; SHMIPC_EINVALID (nothing added) past the maximum. *previous (if not NULL) gets the count before. */
int shmipc_semaphore_release(shmipc_semaphore *s, int32_t n, int32_t *previous);
void shmipc_semaphore_close(shmipc_semaphore *s);

/* Counter (§7.1): a 64-bit value changed only by atomic read-modify-writes (seq_cst). */
typedef struct shmipc_counter shmipc_counter;
int shmipc_counter_open(const char *name, shmipc_counter **out);
int shmipc_counter_create(const char *name, int64_t initial, shmipc_counter **out);
int64_t shmipc_counter_read(const shmipc_counter *c);                                    /* acquire */
int64_t shmipc_counter_add(shmipc_counter *c, int64_t delta);                            /* the new value (wraps) */
int64_t shmipc_counter_exchange(shmipc_counter *c, int64_t value);                       /* the old value */
int64_t shmipc_counter_compare_exchange(shmipc_counter *c, int64_t value, int64_t comparand); /* the old value */
void shmipc_counter_close(shmipc_counter *c);

/* Array (§7.2, Kind 4) and Value (Kind 5, an array of one element): plain elements of element_size bytes (the opener's
 * must equal the creator's) and a recursive lock in the same segment (Python's get_lock()): shmipc_array_lock(a) is
 * used with shmipc_lock_acquire / _release, and is closed with the array (do not shmipc_lock_close it). */
typedef struct shmipc_array shmipc_array;
int shmipc_array_open(const char *name, int32_t element_size, shmipc_array **out);
int shmipc_array_create(const char *name, int32_t element_size, int64_t length, shmipc_array **out);
int shmipc_value_open(const char *name, int32_t element_size, shmipc_array **out);
/* initial: element_size bytes, or NULL for zero. */
int shmipc_value_create(const char *name, int32_t element_size, const void *initial, shmipc_array **out);
void *shmipc_array_data(const shmipc_array *a);
int64_t shmipc_array_length(const shmipc_array *a);
int32_t shmipc_array_element_size(const shmipc_array *a);
shmipc_lock *shmipc_array_lock(shmipc_array *a);
void shmipc_array_close(shmipc_array *a);

/* Condition (§7.6), bound to a lock this process opened (the lock's name is not stored: every process names it). At most
 * 64 threads wait at once, in all processes. Wait and notify with the lock held (else SHMIPC_ENOTHELD). */
typedef struct shmipc_condition shmipc_condition;
int shmipc_condition_open(const char *name, shmipc_lock *lock, shmipc_condition **out);
int shmipc_condition_create(const char *name, shmipc_lock *lock, shmipc_condition **out);
/* Releases the lock (a recursive one wholly), waits to be notified, takes the lock back (at the same depth).
 * SHMIPC_OK notified; SHMIPC_ETIMEOUT not notified in time; SHMIPC_EABANDONED the lock's holder died meanwhile (the
 * caller holds the lock: check the state); SHMIPC_EBUSY 64 waiters already. The lock is held again in every case but
 * SHMIPC_ENOTHELD and SHMIPC_EBUSY (where it was never released). */
int shmipc_condition_wait(shmipc_condition *c, int64_t timeout_ns);
/* Wakes up to n waiters that were waiting when it was called (dead waiters are skipped and their slots freed). */
int shmipc_condition_notify(shmipc_condition *c, int n);
int shmipc_condition_notify_all(shmipc_condition *c);
void shmipc_condition_close(shmipc_condition *c);

/* Barrier (§7.7): every open handle is a participant (at most 64); one that dies before arriving breaks the barrier for
 * the waiters within one sleep slice. */
typedef struct shmipc_barrier shmipc_barrier;
int shmipc_barrier_open(const char *name, shmipc_barrier **out);
int shmipc_barrier_create(const char *name, int32_t participants, shmipc_barrier **out);
/* Arrives and waits. SHMIPC_OK: the phase *phase (if not NULL) completed; SHMIPC_ETIMEOUT: the time ran out, which
 * broke the barrier for everyone (as Python's Barrier); SHMIPC_EBROKEN: broken before the phase completed. */
int shmipc_barrier_wait(shmipc_barrier *b, int64_t timeout_ns, int64_t *phase);
void shmipc_barrier_abort(shmipc_barrier *b);   /* breaks it: waiters get SHMIPC_EBROKEN */
void shmipc_barrier_reset(shmipc_barrier *b);   /* mends it; threads waiting now get SHMIPC_EBROKEN */
int shmipc_barrier_broken(const shmipc_barrier *b);
int64_t shmipc_barrier_phase(const shmipc_barrier *b);  /* completed phases */
int32_t shmipc_barrier_participants(const shmipc_barrier *b);
void shmipc_barrier_close(shmipc_barrier *b);  /* stops being a participant */

#ifdef __cplusplus
}
#endif

#endif
