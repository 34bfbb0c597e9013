"""Python multiprocessing baselines for the ShmIpc harness (bench/ShmBench, Baselines/PythonBaselines.cs).

Usage: python3 mp_baselines.py <test> <count> <runs> <warmup>

  pipe         multiprocessing.Pipe 8 B round trip (child echoes); count = round trips per run
  queue        multiprocessing.Queue, one producer process, parent drains 64 B bytes; count = messages per run
  pool_apply   Pool(2).apply(trivial, (i,)) round trip; count = calls per run
  pool_map     Pool(2).map(trivial, range(count)) throughput
  pool8_map    the same on Pool(8) (more processes than cores: the oversubscribed scenario)
  pool_start   Pool(2) start to first result, with the "spawn" and "fork" start methods; count is ignored
  pool_start_spawn, pool_start_fork   the same with one start method (the harness pairs spawn runs with its own)

Output, one line per measured run (the same protocol as bench/native/shm_baselines.c):
  latency <name> <p50> <p90> <p99> <p99.9> <max>     nanoseconds
  value <name> <value> <unit>
  # note
Every process this script starts is joined before it exits (Pool via its context manager).
"""

import multiprocessing as mp
import sys
import time


def trivial(x):
    return x


def echo(conn, total):
    for _ in range(total):
        conn.send_bytes(conn.recv_bytes())
    conn.close()


def produce(queue, total):
    message = b"x" * 64
    for _ in range(total):
        queue.put(message)


def print_latency(name, ns):
    ns.sort()
    n = len(ns)

    def at(q):
        return ns[min(n - 1, int(q * n))]

    print(f"latency {name} {at(0.5)} {at(0.9)} {at(0.99)} {at(0.999)} {ns[-1]}", flush=True)


def pipe_rtt(count, runs, warmup):
    parent, child = mp.Pipe()
    peer = mp.Process(target=echo, args=(child, warmup + count * runs), daemon=True)
    peer.start()
    message = b"12345678"
    clock = time.perf_counter_ns
    for r in range(-1, runs):
        n = warmup if r < 0 else count
        ns = [0] * n
        for k in range(n):
            t0 = clock()
            parent.send_bytes(message)
            parent.recv_bytes()
            ns[k] = clock() - t0
        if r >= 0:
            print_latency("py.pipe_8B_rtt", ns)
    peer.join()


def queue_throughput(count, runs, warmup):
    queue = mp.Queue()
    peer = mp.Process(target=produce, args=(queue, warmup + count * runs), daemon=True)
    peer.start()
    for r in range(-1, runs):
        n = warmup if r < 0 else count
        t0 = time.perf_counter_ns()
        for _ in range(n):
            queue.get()
        elapsed = time.perf_counter_ns() - t0
        if r >= 0:
            print(f"value py.queue_64B_throughput {n * 1e9 / elapsed:.0f} msg/s", flush=True)
    peer.join()


def pool_apply(count, runs, warmup):
    with mp.Pool(2) as pool:
        clock = time.perf_counter_ns
        for r in range(-1, runs):
            n = warmup if r < 0 else count
            ns = [0] * n
            for k in range(n):
                t0 = clock()
                pool.apply(trivial, (k,))
                ns[k] = clock() - t0
            if r >= 0:
                print_latency("py.pool2_apply_rtt", ns)


def pool_map(count, runs, warmup, processes=2):
    with mp.Pool(processes) as pool:
        pool.map(trivial, range(max(1, warmup)))
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            result = pool.map(trivial, range(count))
            elapsed = time.perf_counter_ns() - t0
            assert len(result) == count
            print(f"value py.pool{processes}_map_{label(count)}_throughput {count * 1e9 / elapsed:.0f} items/s", flush=True)


def pool_start(_count, runs, warmup, methods=("spawn", "fork")):
    """Pool(2) start to first result; `warmup` unmeasured starts first (each method), so that a run of one measured
    start in a fresh interpreter (the harness's back-to-back pairs) measures what a later start in a long run does."""
    for method in methods:
        context = mp.get_context(method)
        for r in range(-warmup, runs):
            t0 = time.perf_counter_ns()
            with context.Pool(2) as pool:
                pool.apply(trivial, (1,))
                elapsed = time.perf_counter_ns() - t0
            if r >= 0:
                print(f"value py.pool2_{method}_start_to_first_result {elapsed / 1e6:.2f} ms", flush=True)


def lock_uncontended(count, runs, warmup):
    lock = mp.Lock()
    for _ in range(warmup):
        lock.acquire()
        lock.release()
    for _ in range(runs):
        start = time.perf_counter_ns()
        for _ in range(count):
            lock.acquire()
            lock.release()
        print(f"value py.lock_uncontended_ns {(time.perf_counter_ns() - start) / count:.1f} ns", flush=True)


def event_pong(ping, pong, total):
    for _ in range(total):
        ping.wait()
        ping.clear()
        pong.set()


def event_rtt(count, runs, warmup):
    ping, pong = mp.Event(), mp.Event()
    peer = mp.Process(target=event_pong, args=(ping, pong, warmup + count * runs))
    peer.start()
    for r in range(-1, runs):
        n = warmup if r < 0 else count
        ns = []
        for _ in range(n):
            start = time.perf_counter_ns()
            ping.set()
            pong.wait()
            pong.clear()
            ns.append(time.perf_counter_ns() - start)
        if r >= 0:
            print_latency("py.event_pingpong_rtt", ns)
    peer.join()


def numpy_sum(name, n, go, done):
    import numpy as np
    from multiprocessing import shared_memory
    shm = shared_memory.SharedMemory(name=name)
    arr = np.ndarray((n,), dtype=np.float64, buffer=shm.buf)
    go.wait()
    done.send((time.perf_counter_ns(), float(arr.sum())))
    del arr
    shm.close()


def numpy_array(count, runs, warmup):
    """One process writes a SharedMemory of `count` float64 through numpy, another sums it with numpy: from the first
    write to the end of the sum (the work of shmipc.array_2p24_write_sum_ms)."""
    import numpy as np
    from multiprocessing import shared_memory
    shm = shared_memory.SharedMemory(create=True, size=count * 8)
    try:
        arr = np.ndarray((count,), dtype=np.float64, buffer=shm.buf)
        values = np.arange(count, dtype=np.float64) * 0.5
        expected = 0.25 * count * (count - 1)
        for r in range(-1, runs):
            go = mp.Event()
            receive, send = mp.Pipe(duplex=False)
            peer = mp.Process(target=numpy_sum, args=(shm.name, count, go, send))
            peer.start()
            start = time.perf_counter_ns()
            arr[:] = values
            go.set()
            end, total = receive.recv()
            peer.join()
            if total != expected:
                raise SystemExit(f"numpy sum {total}, expected {expected}")
            if r >= 0:
                size = f"2p{count.bit_length() - 1}" if count & (count - 1) == 0 else str(count)
                print(f"value py.numpy_array_{size}_write_sum_ms {(end - start) / 1e6:.2f} ms", flush=True)
        del arr
    finally:
        shm.close()
        shm.unlink()


def two_x_plus_one(chunk):
    return chunk * 2 + 1


def pool_map_numpy_chunks(count, runs, warmup):
    """Pool(2).map of x -> 2x + 1 over `count` float32 split into 8 numpy chunks (about four per worker, as Pool.map's
    own rule and MapInPlace's default): the chunks are pickled to the workers and the results back, then joined into
    one array (the work of shmipc.pool2_map_in_place_ms)."""
    import numpy as np
    data = np.arange(count, dtype=np.float32) % 1000 - np.float32(500.5)
    size = f"2p{count.bit_length() - 1}" if count & (count - 1) == 0 else str(count)
    with mp.Pool(2) as pool:
        for r in range(-max(1, warmup), runs):
            start = time.perf_counter_ns()
            out = np.concatenate(pool.map(two_x_plus_one, np.array_split(data, 8)))
            end = time.perf_counter_ns()
            if out.shape != data.shape or out[-1] != data[-1] * 2 + 1:
                raise SystemExit("numpy chunks: wrong result")
            del out
            if r >= 0:
                print(f"value py.pool2_map_numpy_chunks_ms {(end - start) / 1e6:.2f} ms", flush=True)


def label(count):
    return f"{count // 1_000_000}M" if count % 1_000_000 == 0 else f"{count // 1000}k" if count % 1000 == 0 else str(count)


TESTS = {
    "pipe": pipe_rtt,
    "queue": queue_throughput,
    "pool_apply": pool_apply,
    "pool_map": pool_map,
    "pool8_map": lambda count, runs, warmup: pool_map(count, runs, warmup, processes=8),
    "pool_start": pool_start,
    "pool_start_spawn": lambda count, runs, warmup: pool_start(count, runs, warmup, methods=("spawn",)),
    "pool_start_fork": lambda count, runs, warmup: pool_start(count, runs, warmup, methods=("fork",)),
    "lock": lock_uncontended,
    "event": event_rtt,
    "numpy_array": numpy_array,
    "pool_map_numpy_chunks": pool_map_numpy_chunks,
}


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in TESTS:
        print(__doc__, file=sys.stderr)
        return 2
    count, runs, warmup = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    print(f"# python {sys.version.split()[0]}, start method {mp.get_start_method()}", flush=True)
    TESTS[sys.argv[1]](count, runs, warmup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
