"""The Python peer used by the interop tests and the bench; the same modes and lines as native-notes/c/shmipc_tool.c.

    python3 shmipc_tool.py queue-produce NAME PRODUCER COUNT MAXPAYLOAD   self-checking messages (tests/Common/QueueMessages)
    python3 shmipc_tool.py queue-consume NAME COUNT MAXPAYLOAD            verifies content and per-producer order; OK <n> <sum>
    python3 shmipc_tool.py queue-consume-sleepy NAME COUNT SLICE_US       never spins (sleeps whenever empty, in slices of
                                                                          SLICE_US); message i must be the 4-byte int i; OK <n>
    python3 shmipc_tool.py queue-try-get NAME                             one get that does not wait: EMPTY, or GOT <length>
    python3 shmipc_tool.py queue-claim-hold NAME LENGTH                   claims a record, never commits (killed mid-write)
    python3 shmipc_tool.py queue-drain-until-shutdown NAME                gets until shut down, then one put: SHUTDOWN <n> REFUSED
    python3 shmipc_tool.py queue-shutdown NAME IMMEDIATE                  shuts the queue down (IMMEDIATE 1: discarding), SHUTDOWN
    python3 shmipc_tool.py queue-create NAME CAPACITY                     creates a queue, holds it until stdin closes
    python3 shmipc_tool.py queue-blast NAME COUNT SIZE                    COUNT messages of SIZE bytes, as fast as it can
    python3 shmipc_tool.py queue-echo IN OUT COUNT MAXLEN                 gets COUNT messages (longer than the ring: through side
                                                                          segments, LAYOUT.md §8) from queue IN, puts each into
                                                                          queue OUT; ECHOED <n> <bytes>
    python3 shmipc_tool.py pipe-echo NAME [MAXLEN]                        connects, echoes until the peer closes
    python3 shmipc_tool.py pipe-send-hold NAME COUNT                      sends COUNT messages, half-writes one more, holds
    python3 shmipc_tool.py pipe-create-echo NAME                          creates a pipe, echoes until the peer closes
    python3 shmipc_tool.py pipe-shared-send TOKEN TAG COUNT LENGTH        attaches to a shared end (share TOKEN), sends COUNT
                                                                          messages "TAG:i:" + bytes (i+k)%251 up to LENGTH
                                                                          (tests/Common/PipeMessages.Tagged); SENT, closes
    python3 shmipc_tool.py lock-count LOCK SHM COUNT                     COUNT times: take Lock LOCK, add 1 to the int64 at byte 0
                                                                          of SharedMemory SHM, release; DONE
    python3 shmipc_tool.py lock-acquire LOCK                              takes the lock: ACQUIRED, or ABANDONED <dead pid>; releases
    python3 shmipc_tool.py lock-hold LOCK                                 takes the lock, says READY, holds it (to be killed)
    python3 shmipc_tool.py semaphore-take-release NAME TAKE RELEASE      takes TAKE counts (waiting), says TOOK, releases RELEASE; DONE
    python3 shmipc_tool.py event-pong PING PONG COUNT                     COUNT times: wait on Event PING, set Event PONG; DONE
    python3 shmipc_tool.py value-add VALUE COUNT                          COUNT times: take the lock of int64 Value VALUE, add 1; DONE
    python3 shmipc_tool.py array-create NAME LENGTH                       creates an int64 Array, a[i] = i*i; READY; after a line on
                                                                          stdin checks a[i] == i*i + 1 under its lock: OK <sum>
    python3 shmipc_tool.py counter-create NAME INITIAL                    creates a Counter; READY; when stdin closes: FINAL <value>
    python3 shmipc_tool.py counter-add NAME COUNT                         COUNT times: add 1; DONE <value after the last add>
    python3 shmipc_tool.py counter-swap NAME                              SWAP <exchange(-5)> <cas(7 if -5)> <cas(9 if -5)> <read>
    python3 shmipc_tool.py condition-notify LOCK COND FLAG                takes LOCK, sets Counter FLAG to 1, notifies one waiter of
                                                                          Condition COND, releases: NOTIFIED
    python3 shmipc_tool.py condition-wait LOCK COND FLAG CREATE           takes LOCK (CREATE 1: creates COND), READY, waits on COND
                                                                          until Counter FLAG != 0 (10 s per wait): WOKE <flag>
    python3 shmipc_tool.py barrier-wait NAME PHASES TIMEOUT_MS PARTIES    opens Barrier NAME (PARTIES > 0: creates it), READY, arrives
                                                                          PHASES times: DONE <last phase>, TIMEOUT <phase> or BROKEN <phase>
    python3 shmipc_tool.py barrier-hold NAME                              opens the barrier (a participant), READY, never arrives
    python3 shmipc_tool.py open-check KIND NAME [LOCK]                    KIND counter, array8, value8, condition (bound to LOCK) or
                                                                          barrier: OPENED, or REFUSED <why, naming the object>
SHMBENCH_CPU=<n> in the environment pins the tool to CPU n (the bench keeps spinning peers apart).
Exit status: 0 done, 1 an error (printed), 2 usage, 3 a message failed its check.
"""
import os
import queue
import signal
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shmipc  # noqa: E402


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def length_of(producer, sequence, max_payload):
    return 12 + ((producer * 7919 + sequence * 104729) & 0xFFFFFFFF) % (max_payload + 1)


def fnv32(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def make_message(producer, sequence, max_payload):
    n = length_of(producer, sequence, max_payload) - 12
    payload = bytes((producer + sequence + i) & 0xFF for i in range(n))
    return struct.pack("<iiI", producer, sequence, fnv32(payload)) + payload


def check_message(data, max_payload):
    if len(data) < 12:
        return None
    producer, sequence, checksum = struct.unpack_from("<iiI", data)
    if producer < 0 or len(data) != length_of(producer, sequence, max_payload):
        return None
    payload = data[12:]
    if payload != bytes((producer + sequence + i) & 0xFF for i in range(len(payload))) or fnv32(payload) != checksum:
        return None
    return producer, sequence


def hold():
    sys.stdin.read()
    signal.pause()


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    mode, name, args = argv[1], argv[2], argv[3:]
    if os.environ.get("SHMBENCH_CPU"):  # the bench pins spinning peers to different CPUs
        os.sched_setaffinity(0, {int(os.environ["SHMBENCH_CPU"])})
    if mode == "queue-produce" and len(args) == 3:
        producer, count, max_payload = map(int, args)
        q = shmipc.Queue.open(name)
        say("READY")
        i = 0
        while count < 0 or i < count:
            q.put(make_message(producer, i, max_payload))
            i += 1
        say("DONE")
        q.close()
        return 0
    if mode == "queue-consume" and len(args) == 2:
        count, max_payload = map(int, args)
        q = shmipc.Queue.open(name)
        last, got, total = {}, 0, 0
        say("READY")
        while got < count:
            data = q.get()
            if data == b"\xff\xff\xff\xff":
                break
            checked = check_message(data, max_payload)
            if checked is None or checked[1] <= last.get(checked[0], -1):
                say(f"BAD message {got} (length {len(data)})")
                return 3
            last[checked[0]] = checked[1]
            total += checked[1]
            got += 1
        say(f"OK {got} {total}")
        q.close()
        return 0
    if mode == "queue-consume-sleepy" and len(args) == 2:
        count = int(args[0])
        q = shmipc.Queue.open(name)
        q.spin = 0  # no spin: every empty get registers and sleeps
        q.slice = int(args[1]) / 1e6  # short slices: many sleeps also end by timing out
        say("READY")
        for i in range(count):
            data = q.get()
            if data != struct.pack("<i", i):
                say(f"BAD message {i} (length {len(data)})")
                return 3
        say(f"OK {count}")
        q.close()
        return 0
    if mode == "queue-try-get" and not args:
        q = shmipc.Queue.open(name)
        try:
            say(f"GOT {len(q.get_nowait())}")
        except queue.Empty:
            say("EMPTY")
        q.close()
        return 0
    if mode == "queue-drain-until-shutdown" and not args:
        q = shmipc.Queue.open(name)
        say("READY")
        got = 0
        try:
            while True:
                q.get()
                got += 1
        except shmipc.ShutDown:
            pass
        try:
            q.put(b"x", block=False)
            result = "ACCEPTED"
        except shmipc.ShutDown:
            result = "REFUSED"
        say(f"SHUTDOWN {got} {result}")
        q.close()
        return 0
    if mode == "queue-shutdown" and len(args) == 1:
        q = shmipc.Queue.open(name)
        q.shutdown(immediate=args[0] == "1")
        say("SHUTDOWN")
        q.close()
        return 0
    if mode == "queue-claim-hold" and len(args) == 1:
        q = shmipc.Queue.open(name)
        say("CLAIMED" if q.claim_only(int(args[0])) >= 0 else "FULL")
        hold()
        return 0
    if mode == "queue-create" and len(args) == 1:
        q = shmipc.Queue.create(name, int(args[0]))
        say("READY")
        sys.stdin.read()
        q.close()
        say("CLOSED")
        return 0
    if mode == "queue-blast" and len(args) == 2:
        count, size = map(int, args)
        q = shmipc.Queue.open(name)
        message = bytes(size)
        say("READY")
        put = q.put
        for _ in range(count):
            put(message)
        say("DONE")
        q.close()
        return 0
    if mode == "queue-echo" and len(args) == 3:
        q_in, q_out = shmipc.Queue.open(name), shmipc.Queue.open(args[0])
        say("READY")
        total = 0
        for _ in range(int(args[1])):
            message = q_in.get(timeout=30)
            q_out.put(message, timeout=30)
            total += len(message)
        say(f"ECHOED {args[1]} {total}")
        q_in.close()
        q_out.close()
        return 0
    if mode in ("pipe-echo", "pipe-create-echo") and (not args or (mode == "pipe-echo" and len(args) == 1)):
        c = shmipc.Pipe.connect(name) if mode == "pipe-echo" else shmipc.Pipe.create(name, 1 << 16)
        say("READY")
        echoed = 0
        recv, send = c.recv_bytes, c.send_bytes
        try:
            while True:
                send(recv())
                echoed += 1
        except shmipc.PeerClosedError:
            pass
        say(f"PEER-CLOSED {echoed}")
        c.close()
        return 0
    if mode == "pipe-send-hold" and len(args) == 1:
        c = shmipc.Pipe.connect(name)
        count = int(args[0])
        for i in range(count):
            c.send_bytes(struct.pack("<i", i))
        c.write_uncommitted(struct.pack("<i", count))
        say("READY")
        hold()
        return 0
    if mode == "pipe-shared-send" and len(args) == 3:
        tag, count, length = args[0], int(args[1]), int(args[2])
        c = shmipc.Pipe.attach_shared(name)
        say("READY")
        for i in range(count):
            head = f"{tag}:{i}:".encode("ascii")
            total = max(length, len(head))
            c.send_bytes(head + bytes((i + k) % 251 for k in range(len(head), total)))
        say("SENT")
        c.close()
        return 0
    if mode == "lock-count" and len(args) == 2:
        lk, mem, count = shmipc.Lock.open(name), shmipc.SharedMemory.open(args[0]), int(args[1])
        counter = mem.buf.cast("q")
        say("READY")
        for _ in range(count):
            lk.acquire()
            counter[0] += 1
            lk.release()
        counter.release()
        say("DONE")
        mem.close()
        lk.close()
        return 0
    if mode == "lock-acquire" and not args:
        lk = shmipc.Lock.open(name)
        try:
            lk.acquire()
            say("ACQUIRED")
        except shmipc.LockAbandonedError as e:
            say(f"ABANDONED {e.pid}")
        lk.release()
        lk.close()
        return 0
    if mode == "lock-hold" and not args:
        lk = shmipc.Lock.open(name)
        lk.acquire()
        say("READY")
        hold()
        return 0
    if mode == "semaphore-take-release" and len(args) == 2:
        sem, take, give = shmipc.Semaphore.open(name), int(args[0]), int(args[1])
        say("READY")
        for _ in range(take):
            if not sem.acquire(timeout=10):
                say("BAD no count within 10 s")
                return 3
        say(f"TOOK {take}")
        sem.release(give)
        say("DONE")
        sem.close()
        return 0
    if mode == "event-pong" and len(args) == 2:
        ping, pong, count = shmipc.Event.open(name), shmipc.Event.open(args[0]), int(args[1])
        say("READY")
        for _ in range(count):
            if not ping.wait(timeout=10):
                say("BAD no ping within 10 s")
                return 3
            pong.set()
        say("DONE")
        ping.close()
        pong.close()
        return 0
    if mode == "value-add" and len(args) == 1:
        v, count = shmipc.Value.open(name, "q"), int(args[0])
        lk = v.get_lock()
        say("READY")
        for _ in range(count):
            with lk:
                v.value += 1
        say("DONE")
        v.close()
        return 0
    if mode == "array-create" and len(args) == 1:
        length = int(args[0])
        a = shmipc.Array.create(name, "q", length)
        for i in range(length):
            a[i] = i * i
        say("READY")
        sys.stdin.readline()
        with a:
            for i in range(length):
                if a[i] != i * i + 1:
                    say(f"BAD a[{i}] = {a[i]}")
                    return 3
            total = sum(a.buf)
        say(f"OK {total}")
        a.close()
        return 0
    if mode == "counter-create" and len(args) == 1:
        c = shmipc.Counter.create(name, int(args[0]))
        say("READY")
        sys.stdin.read()
        say(f"FINAL {c.value}")
        c.close()
        return 0
    if mode in ("counter-add", "counter-swap") and len(args) == (1 if mode == "counter-add" else 0):
        c = shmipc.Counter.open(name)
        if mode == "counter-swap":
            x = c.exchange(-5)
            c1, c2 = c.compare_exchange(7, -5), c.compare_exchange(9, -5)
            say(f"SWAP {x} {c1} {c2} {c.value}")
        else:
            say("READY")
            last = 0
            for _ in range(int(args[0])):
                last = c.add(1)
            say(f"DONE {last}")
        c.close()
        return 0
    if (mode == "condition-notify" and len(args) == 2) or (mode == "condition-wait" and len(args) == 3):
        lk = shmipc.Lock.open(name)
        waiter = mode == "condition-wait"
        cv = shmipc.Condition.create(args[0], lk) if waiter and args[2] == "1" else shmipc.Condition.open(args[0], lk)
        flag = shmipc.Counter.open(args[1])
        if not lk.acquire(timeout=10):
            say("BAD the lock was not free within 10 s")
            return 3
        if waiter:
            say("READY")
            while flag.value == 0:
                if not cv.wait(10):
                    say("BAD not notified within 10 s")
                    return 3
            say(f"WOKE {flag.value}")
        else:
            flag.exchange(1)
            cv.notify()
        lk.release()
        if not waiter:
            say("NOTIFIED")
        flag.close()
        cv.close()
        lk.close()
        return 0
    if mode == "barrier-wait" and len(args) == 3:
        phases, timeout, parties = int(args[0]), int(args[1]) / 1000.0, int(args[2])
        b = shmipc.Barrier.create(name, parties) if parties > 0 else shmipc.Barrier.open(name)
        say("READY")
        phase = -1
        try:
            for _ in range(phases):
                phase = b.phase
                phase = b.wait(timeout)
        except shmipc.BrokenBarrierError as e:
            say(f"{'TIMEOUT' if e.reason == 'timeout' else 'BROKEN'} {phase}")
            b.close()
            return 0
        say(f"DONE {phase}")
        b.close()
        return 0
    if mode == "barrier-hold" and not args:
        shmipc.Barrier.open(name)
        say("READY")
        hold()
        return 0
    if mode == "open-check" and len(args) in (1, 2):
        kind, target = name, args[0]
        openers = {
            "counter": lambda: shmipc.Counter.open(target),
            "array8": lambda: shmipc.Array.open(target, "q"),
            "value8": lambda: shmipc.Value.open(target, "q"),
            "barrier": lambda: shmipc.Barrier.open(target),
        }
        lk = None
        if kind == "condition" and len(args) == 2:
            lk = shmipc.Lock.open(args[1])
            openers["condition"] = lambda: shmipc.Condition.open(target, lk)
        if kind not in openers:
            print(f"unknown kind: {kind}", file=sys.stderr)
            return 2
        try:
            openers[kind]().close()
            say("OPENED")
        except (shmipc.ShmIpcError, FileNotFoundError) as e:
            say(f"REFUSED {e}")
        if lk is not None:
            lk.close()
        return 0
    print(f"unknown mode or wrong arguments: {mode}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Exception as e:  # report on stdout too, so a test waiting for a line fails with the reason
        say(f"ERROR {type(e).__name__}: {e}")
        raise
