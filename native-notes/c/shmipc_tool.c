/*
 * shmipc_tool: the C peer used by the interop tests and the bench. One mode per run; each prints READY
 * once it is attached (the parent waits for that line) and a final line saying how it ended.
 *
 *   shmipc_tool queue-produce NAME PRODUCER COUNT MAXPAYLOAD   self-checking messages (tests/Common/QueueMessages)
 *   shmipc_tool queue-consume NAME COUNT MAXPAYLOAD            verifies content and per-producer order; OK <n>
 *   shmipc_tool queue-consume-sleepy NAME COUNT SLICE_US       never spins (sleeps whenever empty, in slices of
 *                                                              SLICE_US); message i must be the 4-byte int i; OK <n>
 *   shmipc_tool queue-try-get NAME                             one get that does not wait: EMPTY, or GOT <length>
 *   shmipc_tool queue-claim-hold NAME LENGTH                   claims a record, never commits (killed mid-write)
 *   shmipc_tool queue-drain-until-shutdown NAME                gets until shut down, then one put: SHUTDOWN <n> REFUSED
 *   shmipc_tool queue-shutdown NAME IMMEDIATE                  shuts the queue down (IMMEDIATE 1: discarding), SHUTDOWN
 *   shmipc_tool queue-create NAME CAPACITY                     creates a queue, holds it until stdin closes
 *   shmipc_tool queue-blast NAME COUNT SIZE                    COUNT messages of SIZE bytes, as fast as it can
 *   shmipc_tool queue-echo IN OUT COUNT MAXLEN                 gets COUNT messages of up to MAXLEN bytes (longer than the
 *                                                              ring: through side segments, LAYOUT.md §8) from queue IN
 *                                                              and puts each into queue OUT; ECHOED <n> <bytes>
 *   shmipc_tool pipe-echo NAME [MAXLEN]                        connects, echoes (messages of up to MAXLEN bytes, default
 *                                                              the ring's maximum) until the peer closes
 *   shmipc_tool pipe-send-hold NAME COUNT                      sends COUNT messages, half-writes one more, holds
 *   shmipc_tool pipe-create-echo NAME                          creates a pipe, echoes on it until the peer closes
 *   shmipc_tool pipe-shared-send TOKEN TAG COUNT LENGTH        attaches to a shared end (share TOKEN), sends COUNT
 *                                                              messages "TAG:i:" + bytes (i+k)%251 up to LENGTH
 *                                                              (tests/Common/PipeMessages.Tagged); SENT, closes
 *   shmipc_tool lock-count LOCK SHM COUNT                      COUNT times: take LOCK, add 1 to the int64 at byte 0 of
 *                                                              SharedMemory SHM, release; DONE
 *   shmipc_tool lock-acquire LOCK                              takes the lock: ACQUIRED or ABANDONED; releases
 *   shmipc_tool lock-hold LOCK                                 takes the lock, says READY, holds it (to be killed)
 *   shmipc_tool semaphore-take-release NAME TAKE RELEASE       takes TAKE counts (waiting), says TOOK, releases RELEASE; DONE
 *   shmipc_tool event-pong PING PONG COUNT                     COUNT times: wait on event PING, set event PONG; DONE
 *   shmipc_tool value-add VALUE COUNT                          COUNT times: take the lock of int64 Value VALUE, add 1, release; DONE
 *   shmipc_tool array-create NAME LENGTH                       creates an int64 Array, a[i] = i*i; READY; after a line on stdin
 *                                                              checks a[i] == i*i + 1 under its lock: OK <sum>; removes it
 *   shmipc_tool counter-create NAME INITIAL                    creates a Counter; READY; when stdin closes: FINAL <value>
 *   shmipc_tool counter-add NAME COUNT                         COUNT times: add 1; DONE <value after the last add>
 *   shmipc_tool counter-swap NAME                              SWAP <exchange(-5)> <cas(7 if -5)> <cas(9 if -5)> <read>
 *   shmipc_tool condition-notify LOCK COND FLAG                takes LOCK, sets Counter FLAG to 1, notifies one waiter of
 *                                                              Condition COND, releases: NOTIFIED
 *   shmipc_tool condition-wait LOCK COND FLAG CREATE           takes LOCK (CREATE 1: creates COND), READY, waits on COND
 *                                                              until Counter FLAG != 0 (10 s per wait): WOKE <flag>
 *   shmipc_tool barrier-wait NAME PHASES TIMEOUT_MS PARTIES    opens Barrier NAME (PARTIES > 0: creates it), READY, arrives
 *                                                              PHASES times: DONE <last phase>, TIMEOUT <phase> or BROKEN <phase>
 *   shmipc_tool barrier-hold NAME                              opens the barrier (a participant), READY, never arrives
 *   shmipc_tool open-check KIND NAME [LOCK]                    KIND counter, array8, value8, condition (bound to LOCK) or
 *                                                              barrier: OPENED, or REFUSED <why, naming the object>
 *
 * SHMBENCH_CPU=<n> in the environment pins the tool to CPU n (the bench keeps spinning peers apart).
 * Exit status: 0 done, 1 a library error (printed), 2 usage, 3 a message failed its check.
 */
#define _GNU_SOURCE
#include "shmipc.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void say(const char *line)
{
    fputs(line, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

static int fail(const char *what, int rc)
{
    printf("ERROR %s: %s\n", what, shmipc_strerror(rc));
    fflush(stdout);
    return 1;
}

static void hold_until_stdin_closes(void)
{
    char buf[256];
    while (read(0, buf, sizeof buf) > 0) {
    }
}

/* tests/Common/QueueMessages.cs: producer, sequence, FNV-1a 32 of the payload, payload (byte)(p + s + i). */
static size_t length_of(int producer, int sequence, int max_payload)
{
    uint32_t mix = (uint32_t)producer * 7919u + (uint32_t)sequence * 104729u;
    return 12 + mix % (uint32_t)(max_payload + 1);
}

static uint32_t fnv32(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static size_t make_message(uint8_t *buf, int producer, int sequence, int max_payload)
{
    size_t len = length_of(producer, sequence, max_payload);
    memcpy(buf, &producer, 4);
    memcpy(buf + 4, &sequence, 4);
    for (size_t i = 12; i < len; i++) buf[i] = (uint8_t)(producer + sequence + (int)(i - 12));
    uint32_t sum = fnv32(buf + 12, len - 12);
    memcpy(buf + 8, &sum, 4);
    return len;
}

static int check_message(const uint8_t *buf, size_t len, int max_payload, int *producer, int *sequence)
{
    if (len < 12) return 0;
    memcpy(producer, buf, 4);
    memcpy(sequence, buf + 4, 4);
    uint32_t sum;
    memcpy(&sum, buf + 8, 4);
    if (*producer < 0 || len != length_of(*producer, *sequence, max_payload)) return 0;
    for (size_t i = 12; i < len; i++)
        if (buf[i] != (uint8_t)(*producer + *sequence + (int)(i - 12))) return 0;
    return fnv32(buf + 12, len - 12) == sum;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: shmipc_tool MODE NAME ... (see the source)\n");
        return 2;
    }
    const char *mode = argv[1], *name = argv[2];
    int rc;
    const char *cpu = getenv("SHMBENCH_CPU"); /* the bench pins spinning peers to different CPUs */
    if (cpu) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(atoi(cpu), &set);
        sched_setaffinity(0, sizeof set, &set);
    }

    if (!strcmp(mode, "queue-produce") && argc == 6) {
        int producer = atoi(argv[3]), count = atoi(argv[4]), max_payload = atoi(argv[5]);
        shmipc_queue *q;
        if ((rc = shmipc_queue_open(name, &q))) return fail("open", rc);
        uint8_t *buf = malloc((size_t)max_payload + 12);
        say("READY");
        for (int i = 0; count < 0 || i < count; i++) {
            size_t len = make_message(buf, producer, i, max_payload);
            if ((rc = shmipc_queue_put(q, buf, len, SHMIPC_FOREVER))) return fail("put", rc);
        }
        say("DONE");
        shmipc_queue_close(q);
        free(buf);
        return 0;
    }

    /* queue-ack-demo NAME: on an acknowledged queue (§6.10): take, nack, take again, ack, take the next and hold it
     * until a line on stdin (a test kills it there), printing "first|again|next <first byte> <delivery count>". */
    if (!strcmp(mode, "queue-ack-demo") && argc == 3) {
        shmipc_queue *q;
        if ((rc = shmipc_queue_open(name, &q))) return fail("open", rc);
        uint8_t buf[256];
        size_t len;
        shmipc_delivery d;
        const char *steps[] = {"first", "again", "next"};
        for (int i = 0; i < 3; i++) {
            if ((rc = shmipc_queue_take(q, buf, sizeof buf, &len, 10000000000LL, &d))) return fail("take", rc);
            printf("%s %d %d\n", steps[i], buf[0], d.delivery_count);
            fflush(stdout);
            if (i == 0 && (rc = shmipc_queue_nack(q, &d))) return fail("nack", rc);
            if (i == 1 && (rc = shmipc_queue_ack(q, &d))) return fail("ack", rc);
        }
        say("hold");
        char line[16];
        if (!fgets(line, sizeof line, stdin)) return 0;
        shmipc_queue_ack(q, &d);
        shmipc_queue_close(q);
        return 0;
    }

    if (!strcmp(mode, "queue-consume") && argc == 5) {
        int count = atoi(argv[3]), max_payload = atoi(argv[4]);
        shmipc_queue *q;
        if ((rc = shmipc_queue_open(name, &q))) return fail("open", rc);
        size_t cap = (size_t)shmipc_queue_max_message_length(q);
        uint8_t *buf = malloc(cap + 1);
        int last[64];
        for (int i = 0; i < 64; i++) last[i] = -1;
        long long sum = 0;
        int got = 0;
        say("READY");
        while (got < count) {
            size_t len;
            if ((rc = shmipc_queue_get(q, buf, cap, &len, SHMIPC_FOREVER))) return fail("get", rc);
            int producer, sequence;
            if (len == 4 && !memcmp(buf, "\xff\xff\xff\xff", 4)) break; /* stop marker */
            if (!check_message(buf, len, max_payload, &producer, &sequence) || producer >= 64 || sequence <= last[producer]) {
                printf("BAD message %d (length %zu)\n", got, len);
                fflush(stdout);
                return 3;
            }
            last[producer] = sequence;
            sum += sequence;
            got++;
        }
        printf("OK %d %lld\n", got, sum);
        fflush(stdout);
        shmipc_queue_close(q);
        free(buf);
        return 0;
    }

    if (!strcmp(mode, "queue-consume-sleepy") && argc == 5) {
        int count = atoi(argv[3]);
        shmipc_queue *q;
        if ((rc = shmipc_queue_open(name, &q))) return fail("open", rc);
        /* no spin: every empty get registers and sleeps; short slices: many sleeps also end by timing out */
        shmipc_queue_set_wait(q, (shmipc_wait){0, atoll(argv[4]) * 1000});
        say("READY");
        for (int i = 0; i < count; i++) {
            int32_t value;
            size_t len;
            if ((rc = shmipc_queue_get(q, &value, sizeof value, &len, SHMIPC_FOREVER))) return fail("get", rc);
            if (len != sizeof value || value != i) {
                printf("BAD message %d (length %zu, value %d)\n", i, len, len == sizeof value ? value : -1);
                fflush(stdout);
                return 3;
            }
        }
        printf("OK %d\n", count);
        fflush(stdout);
        shmipc_queue_close(q);
        return 0;
    }

    if (!strcmp(mode, "queue-try-get") && argc == 3) {
        shmipc_queue *q;
        if ((rc = shmipc_queue_open(name, &q))) return fail("open", rc);
        size_t cap = (size_t)shmipc_queue_max_message_length(q), len;
        uint8_t *buf = malloc(cap + 1);
        rc = shmipc_queue_get(q, buf, cap, &len, 0);
        if (rc == SHMIPC_ETIMEOUT) say("EMPTY");
        else if (rc) return fail("get", rc);
        else { printf("GOT %zu\n", len); fflush(stdout); }
        shmipc_queue_close(q);
        free(buf);
        return 0;
    }

    if (!strcmp(mode, "queue-drain-until-shutdown") && argc == 3) {
        /* gets until the queue is shut down, then tries one put: "SHUTDOWN <count> REFUSED|ACCEPTED" */
        shmipc_queue *q;
        if ((rc = shmipc_queue_open(name, &q))) return fail("open", rc);
        size_t cap = (size_t)shmipc_queue_max_message_length(q), len;
        uint8_t *buf = malloc(cap + 1);
        int got = 0;
        say("READY");
        while ((rc = shmipc_queue_get(q, buf, cap, &len, SHMIPC_FOREVER)) == SHMIPC_OK) got++;
        if (rc != SHMIPC_ESHUTDOWN) return fail("get", rc);
        rc = shmipc_queue_put(q, "x", 1, 0);
        printf("SHUTDOWN %d %s\n", got, rc == SHMIPC_ESHUTDOWN ? "REFUSED" : rc == SHMIPC_OK ? "ACCEPTED" : shmipc_strerror(rc));
        fflush(stdout);
        shmipc_queue_close(q);
        free(buf);
        return 0;
    }

    if (!strcmp(mode, "queue-shutdown") && argc == 4) {
        /* shuts the queue down (argv[3]: 1 immediate), then prints SHUTDOWN */
        shmipc_queue *q;
        if ((rc = shmipc_queue_open(name, &q))) return fail("open", rc);
        if ((rc = shmipc_queue_shutdown(q, atoi(argv[3])))) return fail("shutdown", rc);
        say("SHUTDOWN");
        shmipc_queue_close(q);
        return 0;
    }

    if (!strcmp(mode, "queue-claim-hold") && argc == 4) {
        shmipc_queue *q;
        if ((rc = shmipc_queue_open(name, &q))) return fail("open", rc);
        int64_t position = shmipc_queue_claim_only(q, atoi(argv[3]));
        say(position >= 0 ? "CLAIMED" : "FULL");
        hold_until_stdin_closes();
        pause(); /* the test kills us with SIGKILL */
        return 0;
    }

    if (!strcmp(mode, "queue-create") && argc == 4) {
        shmipc_queue *q;
        if ((rc = shmipc_queue_create(name, atoll(argv[3]), -1, &q))) return fail("create", rc);
        say("READY");
        hold_until_stdin_closes();
        shmipc_queue_close(q); /* the creator unlinks */
        say("CLOSED");
        return 0;
    }

    if (!strcmp(mode, "queue-blast") && argc == 5) {
        long long count = atoll(argv[3]);
        size_t size = (size_t)atoi(argv[4]);
        shmipc_queue *q;
        if ((rc = shmipc_queue_open(name, &q))) return fail("open", rc);
        uint8_t *buf = calloc(1, size + 1);
        say("READY");
        for (long long i = 0; i < count; i++) {
            memcpy(buf, &i, size < 8 ? size : 8);
            if ((rc = shmipc_queue_put(q, buf, size, SHMIPC_FOREVER))) return fail("put", rc);
        }
        say("DONE");
        shmipc_queue_close(q);
        free(buf);
        return 0;
    }

    if (!strcmp(mode, "queue-echo") && argc == 6) {
        int count = atoi(argv[4]);
        size_t cap = (size_t)atoll(argv[5]), len;
        long long bytes = 0;
        shmipc_queue *in, *out;
        if ((rc = shmipc_queue_open(name, &in))) return fail("open in", rc);
        if ((rc = shmipc_queue_open(argv[3], &out))) return fail("open out", rc);
        uint8_t *buf = malloc(cap + 1);
        say("READY");
        for (int i = 0; i < count; i++) {
            if ((rc = shmipc_queue_get(in, buf, cap, &len, 30000000000LL))) return fail("get", rc);
            if ((rc = shmipc_queue_put(out, buf, len, 30000000000LL))) return fail("put", rc);
            bytes += (long long)len;
        }
        printf("ECHOED %d %lld\n", count, bytes);
        fflush(stdout);
        shmipc_queue_close(in);
        shmipc_queue_close(out);
        free(buf);
        return 0;
    }

    if ((!strcmp(mode, "pipe-echo") || !strcmp(mode, "pipe-create-echo")) && (argc == 3 || (argc == 4 && !strcmp(mode, "pipe-echo")))) {
        shmipc_pipe *p;
        rc = !strcmp(mode, "pipe-echo") ? shmipc_pipe_connect(name, &p) : shmipc_pipe_create(name, 1 << 16, -1, 1, &p);
        if (rc) return fail("attach", rc);
        size_t cap = argc == 4 ? (size_t)atoll(argv[3]) : (size_t)shmipc_pipe_max_message_length(p);
        uint8_t *buf = malloc(cap + 1);
        say("READY");
        long long echoed = 0;
        for (;;) {
            size_t len;
            rc = shmipc_pipe_recv(p, buf, cap, &len, SHMIPC_FOREVER);
            if (rc == SHMIPC_ECLOSED) break;
            if (rc) return fail("recv", rc);
            rc = shmipc_pipe_send(p, buf, len, SHMIPC_FOREVER);
            if (rc == SHMIPC_ECLOSED) break;
            if (rc) return fail("send", rc);
            echoed++;
        }
        printf("PEER-CLOSED %lld\n", echoed);
        fflush(stdout);
        shmipc_pipe_close(p);
        free(buf);
        return 0;
    }

    if (!strcmp(mode, "pipe-send-hold") && argc == 4) {
        int count = atoi(argv[3]);
        shmipc_pipe *p;
        if ((rc = shmipc_pipe_connect(name, &p))) return fail("connect", rc);
        for (int i = 0; i < count; i++)
            if ((rc = shmipc_pipe_send(p, &i, 4, SHMIPC_FOREVER))) return fail("send", rc);
        int never = count;
        if ((rc = shmipc_pipe_write_uncommitted(p, &never, 4))) return fail("write", rc);
        say("READY");
        hold_until_stdin_closes();
        pause();
        return 0;
    }

    if (!strcmp(mode, "pipe-shared-send") && argc == 6) {
        const char *tag = argv[3];
        int count = atoi(argv[4]), length = atoi(argv[5]);
        shmipc_pipe *p;
        if ((rc = shmipc_pipe_attach_shared(name, &p))) return fail("attach", rc);
        say("READY");
        unsigned char *buf = malloc((size_t)length + 64);
        for (int i = 0; i < count; i++) {
            int n = snprintf((char *)buf, 64, "%s:%d:", tag, i);
            int total = n > length ? n : length;
            for (int k = n; k < total; k++) buf[k] = (unsigned char)((i + k) % 251);
            if ((rc = shmipc_pipe_send(p, buf, (size_t)total, SHMIPC_FOREVER))) return fail("send", rc);
        }
        free(buf);
        say("SENT");
        shmipc_pipe_close(p);
        return 0;
    }

    if (!strcmp(mode, "lock-count") && argc == 5) {
        shmipc_lock *l;
        shmipc_shm *m;
        if ((rc = shmipc_lock_open(name, &l))) return fail("lock open", rc);
        if ((rc = shmipc_shm_open(argv[3], &m))) return fail("shm open", rc);
        if (shmipc_shm_size(m) < 8) return fail("shm size", SHMIPC_EINVALID);
        volatile int64_t *counter = shmipc_shm_data(m);
        long count = atol(argv[4]);
        say("READY");
        for (long i = 0; i < count; i++) {
            if ((rc = shmipc_lock_acquire(l, SHMIPC_FOREVER))) return fail("acquire", rc);
            *counter += 1;
            if ((rc = shmipc_lock_release(l))) return fail("release", rc);
        }
        say("DONE");
        shmipc_shm_close(m);
        shmipc_lock_close(l);
        return 0;
    }

    if (!strcmp(mode, "lock-acquire") && argc == 3) {
        shmipc_lock *l;
        if ((rc = shmipc_lock_open(name, &l))) return fail("lock open", rc);
        rc = shmipc_lock_acquire(l, SHMIPC_FOREVER);
        if (rc != SHMIPC_OK && rc != SHMIPC_EABANDONED) return fail("acquire", rc);
        say(rc == SHMIPC_EABANDONED ? "ABANDONED" : "ACQUIRED");
        if ((rc = shmipc_lock_release(l))) return fail("release", rc);
        shmipc_lock_close(l);
        return 0;
    }

    if (!strcmp(mode, "lock-hold") && argc == 3) {
        shmipc_lock *l;
        if ((rc = shmipc_lock_open(name, &l))) return fail("lock open", rc);
        if ((rc = shmipc_lock_acquire(l, SHMIPC_FOREVER))) return fail("acquire", rc);
        say("READY");
        hold_until_stdin_closes();
        pause(); /* the test kills us with SIGKILL */
        return 0;
    }

    if (!strcmp(mode, "semaphore-take-release") && argc == 5) {
        shmipc_semaphore *sem;
        if ((rc = shmipc_semaphore_open(name, &sem))) return fail("semaphore open", rc);
        int take = atoi(argv[3]), give = atoi(argv[4]);
        say("READY");
        for (int i = 0; i < take; i++)
            if ((rc = shmipc_semaphore_wait(sem, 10000000000LL))) return fail("wait", rc);
        printf("TOOK %d\n", take);
        fflush(stdout);
        if ((rc = shmipc_semaphore_release(sem, give, NULL))) return fail("release", rc);
        say("DONE");
        shmipc_semaphore_close(sem);
        return 0;
    }

    if (!strcmp(mode, "event-pong") && argc == 5) {
        shmipc_event *ping, *pong;
        if ((rc = shmipc_event_open(name, &ping))) return fail("ping open", rc);
        if ((rc = shmipc_event_open(argv[3], &pong))) return fail("pong open", rc);
        long count = atol(argv[4]);
        say("READY");
        for (long i = 0; i < count; i++) {
            if ((rc = shmipc_event_wait(ping, 10000000000LL))) return fail("ping wait", rc);
            shmipc_event_set(pong);
        }
        say("DONE");
        shmipc_event_close(ping);
        shmipc_event_close(pong);
        return 0;
    }

    if (!strcmp(mode, "value-add") && argc == 4) {
        shmipc_array *v;
        if ((rc = shmipc_value_open(name, 8, &v))) return fail(shmipc_last_error(), rc);
        shmipc_lock *l = shmipc_array_lock(v);
        volatile int64_t *value = shmipc_array_data(v);
        long count = atol(argv[3]);
        say("READY");
        for (long i = 0; i < count; i++) {
            if ((rc = shmipc_lock_acquire(l, SHMIPC_FOREVER))) return fail("acquire", rc);
            *value += 1;
            if ((rc = shmipc_lock_release(l))) return fail("release", rc);
        }
        say("DONE");
        shmipc_array_close(v);
        return 0;
    }

    if (!strcmp(mode, "array-create") && argc == 4) {
        shmipc_array *a;
        long length = atol(argv[3]);
        if ((rc = shmipc_array_create(name, 8, length, &a))) return fail("array create", rc);
        int64_t *e = shmipc_array_data(a);
        for (long i = 0; i < length; i++) e[i] = (int64_t)i * i;
        say("READY");
        char line[64];
        if (!fgets(line, sizeof line, stdin)) return fail("stdin closed", SHMIPC_EINVALID);
        if ((rc = shmipc_lock_acquire(shmipc_array_lock(a), SHMIPC_FOREVER))) return fail("acquire", rc);
        int64_t sum = 0;
        for (long i = 0; i < length; i++) {
            if (e[i] != (int64_t)i * i + 1) {
                printf("BAD a[%ld] = %lld\n", i, (long long)e[i]);
                return 3;
            }
            sum += e[i];
        }
        if ((rc = shmipc_lock_release(shmipc_array_lock(a)))) return fail("release", rc);
        printf("OK %lld\n", (long long)sum);
        fflush(stdout);
        shmipc_array_close(a);
        return 0;
    }

    if (!strcmp(mode, "counter-create") && argc == 4) {
        shmipc_counter *c;
        if ((rc = shmipc_counter_create(name, atoll(argv[3]), &c))) return fail("counter create", rc);
        say("READY");
        hold_until_stdin_closes();
        printf("FINAL %lld\n", (long long)shmipc_counter_read(c));
        fflush(stdout);
        shmipc_counter_close(c);
        return 0;
    }

    if ((!strcmp(mode, "counter-add") && argc == 4) || (!strcmp(mode, "counter-swap") && argc == 3)) {
        shmipc_counter *c;
        if ((rc = shmipc_counter_open(name, &c))) return fail(shmipc_last_error(), rc);
        if (!strcmp(mode, "counter-swap")) {
            int64_t x = shmipc_counter_exchange(c, -5);
            int64_t c1 = shmipc_counter_compare_exchange(c, 7, -5);
            int64_t c2 = shmipc_counter_compare_exchange(c, 9, -5);
            printf("SWAP %lld %lld %lld %lld\n", (long long)x, (long long)c1, (long long)c2, (long long)shmipc_counter_read(c));
        } else {
            long count = atol(argv[3]);
            int64_t last = 0;
            say("READY");
            for (long i = 0; i < count; i++) last = shmipc_counter_add(c, 1);
            printf("DONE %lld\n", (long long)last);
        }
        fflush(stdout);
        shmipc_counter_close(c);
        return 0;
    }

    if ((!strcmp(mode, "condition-notify") && argc == 5) || (!strcmp(mode, "condition-wait") && argc == 6)) {
        shmipc_lock *l;
        shmipc_condition *cv;
        shmipc_counter *flag;
        int waiter = !strcmp(mode, "condition-wait");
        if ((rc = shmipc_lock_open(name, &l))) return fail(shmipc_last_error(), rc);
        rc = waiter && atoi(argv[5]) ? shmipc_condition_create(argv[3], l, &cv) : shmipc_condition_open(argv[3], l, &cv);
        if (rc) return fail(shmipc_last_error(), rc);
        if ((rc = shmipc_counter_open(argv[4], &flag))) return fail(shmipc_last_error(), rc);
        if ((rc = shmipc_lock_acquire(l, 10000000000LL))) return fail("acquire", rc);
        if (waiter) {
            say("READY");
            while (shmipc_counter_read(flag) == 0)
                if ((rc = shmipc_condition_wait(cv, 10000000000LL))) return fail("condition wait", rc);
            printf("WOKE %lld\n", (long long)shmipc_counter_read(flag));
            fflush(stdout);
        } else {
            shmipc_counter_exchange(flag, 1);
            if ((rc = shmipc_condition_notify(cv, 1))) return fail("notify", rc);
        }
        if ((rc = shmipc_lock_release(l))) return fail("release", rc);
        if (!waiter) say("NOTIFIED");
        shmipc_counter_close(flag);
        shmipc_condition_close(cv);
        shmipc_lock_close(l);
        return 0;
    }

    if (!strcmp(mode, "barrier-wait") && argc == 6) {
        shmipc_barrier *b;
        int parties = atoi(argv[5]);
        rc = parties > 0 ? shmipc_barrier_create(name, parties, &b) : shmipc_barrier_open(name, &b);
        if (rc) return fail(shmipc_last_error(), rc);
        long phases = atol(argv[3]);
        int64_t timeout = atoll(argv[4]) * 1000000LL, phase = -1;
        say("READY");
        for (long i = 0; i < phases; i++) {
            rc = shmipc_barrier_wait(b, timeout, &phase);
            if (rc == SHMIPC_ETIMEOUT || rc == SHMIPC_EBROKEN) {
                printf("%s %lld\n", rc == SHMIPC_ETIMEOUT ? "TIMEOUT" : "BROKEN", (long long)phase);
                fflush(stdout);
                shmipc_barrier_close(b);
                return 0;
            }
            if (rc) return fail("barrier wait", rc);
        }
        printf("DONE %lld\n", (long long)phase);
        fflush(stdout);
        shmipc_barrier_close(b);
        return 0;
    }

    if (!strcmp(mode, "barrier-hold") && argc == 3) {
        shmipc_barrier *b;
        if ((rc = shmipc_barrier_open(name, &b))) return fail(shmipc_last_error(), rc);
        say("READY");
        hold_until_stdin_closes();
        pause(); /* the test kills us with SIGKILL */
        return 0;
    }

    if (!strcmp(mode, "open-check") && (argc == 4 || argc == 5)) {
        const char *kind = argv[2], *target = argv[3];
        if (!strcmp(kind, "counter")) {
            shmipc_counter *c;
            if (!(rc = shmipc_counter_open(target, &c))) shmipc_counter_close(c);
        } else if (!strcmp(kind, "array8") || !strcmp(kind, "value8")) {
            shmipc_array *a;
            rc = !strcmp(kind, "array8") ? shmipc_array_open(target, 8, &a) : shmipc_value_open(target, 8, &a);
            if (!rc) shmipc_array_close(a);
        } else if (!strcmp(kind, "condition") && argc == 5) {
            shmipc_lock *l;
            shmipc_condition *cv;
            if ((rc = shmipc_lock_open(argv[4], &l))) return fail(shmipc_last_error(), rc);
            if (!(rc = shmipc_condition_open(target, l, &cv))) shmipc_condition_close(cv);
            shmipc_lock_close(l);
        } else if (!strcmp(kind, "barrier")) {
            shmipc_barrier *b;
            if (!(rc = shmipc_barrier_open(target, &b))) shmipc_barrier_close(b);
        } else {
            fprintf(stderr, "unknown kind: %s\n", kind);
            return 2;
        }
        if (rc) printf("REFUSED %s: %s\n", shmipc_strerror(rc), shmipc_last_error());
        else say("OPENED");
        fflush(stdout);
        return 0;
    }

    fprintf(stderr, "unknown mode or wrong arguments: %s\n", mode);
    return 2;
}
