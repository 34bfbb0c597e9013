/*
 * shmipc.h: a C99 peer of ShmIpc (the .NET library) on Linux, written from native-notes/LAYOUT.md.
 *
 * Opens (or creates) a ShmIpc Queue or Pipe by name and sends and receives messages with the same
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
};

const char *shmipc_strerror(int status);

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

#ifdef __cplusplus
}
#endif

#endif
