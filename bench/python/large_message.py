"""The Python column of the 64 MiB message (issue 17): one 64 MiB bytes through multiprocessing.Queue, producer
process -> consumer (this process). Usage: large_message.py <runs>. Prints "value py.queue_64MiB_message_ms X ms" per
run: from the producer's put to the consumer having the bytes (time.monotonic_ns is CLOCK_MONOTONIC in both)."""
import multiprocessing as mp
import sys
import time

SIZE = 64 << 20


def produce(q, go, runs):
    payload = bytearray(b"\x07" * SIZE)
    for _ in range(runs + 1):
        go.get()
        payload[:8] = time.monotonic_ns().to_bytes(8, "little")
        q.put(bytes(payload))


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    q, go = mp.Queue(), mp.Queue()
    p = mp.Process(target=produce, args=(q, go, runs))
    p.start()
    print("# py.queue_64MiB_message_ms: multiprocessing.Queue, one 64 MiB bytes from a producer process; the clock starts before the producer copies it for put")
    for r in range(runs + 1):
        go.put(1)
        data = q.get()
        elapsed = (time.monotonic_ns() - int.from_bytes(data[:8], "little")) / 1e6
        if len(data) != SIZE:
            sys.exit(2)
        if r > 0:
            print(f"value py.queue_64MiB_message_ms {elapsed:.3f} ms", flush=True)
    p.join()


if __name__ == "__main__":
    main()
