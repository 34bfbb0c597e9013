namespace ShmIpc.Bench.Harness;

/// <summary>How a goal compares its ratio with its target.</summary>
internal enum GoalTest
{
    /// <summary>ratio ≤ target.</summary>
    AtMost,

    /// <summary>ratio ≥ target.</summary>
    AtLeast,

    /// <summary>ratio &lt; target.</summary>
    Below,

    /// <summary>ratio &gt; target.</summary>
    Above,
}

/// <summary>A declared figure: its unit and what it means.</summary>
internal sealed record FigureSpec(string Name, string Unit, string Meaning);

/// <summary>
/// A goal from an issue: ratio = <see cref="Numerator"/> / <see cref="Denominator"/> (or the figure
/// itself when there is no denominator), compared with <see cref="Target"/>. For "N x faster" of a
/// latency, the baseline is the numerator. With <see cref="Paired"/>, the two figures were measured back to
/// back (baseline run, library run, per repetition; see <see cref="Pairing"/>) and the ratio is the median
/// of the per-repetition ratios recorded as that figure; without it (or when it is missing), the ratio of
/// the two medians.
/// </summary>
internal sealed record Goal(string Issue, string Text, string Numerator, string? Denominator, GoalTest Test, double Target, string? Paired = null);

/// <summary>
/// The one table of headline figures and goals. A new scenario declares its figures here and the
/// goals that use them; evaluation, printing and the results file pick them up from here.
/// </summary>
internal static class Catalog
{
    /// <summary>The headline figures (fixed names from issue 4) and the baselines they are compared with.</summary>
    public static readonly FigureSpec[] Headline =
    [
        // ShmIpc.
        new("shmipc.pipe_8B_rtt_median", "ns", "Pipe 8 B round trip, both sides spinning (pinned to different CPUs)"),
        new("shmipc.pipe_8B_sleep_rtt_median", "ns", "Pipe 8 B round trip, ShmWaitStrategy.NoSpin on both ends (each receiver should sleep on its semaphore)"),
        new("shmipc.pipe_8B_sleep_rtt_unslept_pct", "%", "Share of those round trips under 2 us: a receiver did not sleep"),
        new("shmipc.pipe_1KiB_rtt_median", "ns", "Pipe 1 KiB round trip, both sides spinning (pinned)"),
        new("shmipc.pipe_64KiB_rtt_median", "ns", "Pipe 64 KiB round trip, both sides spinning (pinned)"),
        new("shmipc.pipe_64B_stream_throughput", "msg/s", "Pipe one-way stream of 64 B messages, one Send per message"),
        new("shmipc.pipe_64B_deferred_stream_throughput", "msg/s", "Pipe one-way stream of 64 B messages, SendDeferred per message and Flush every 1024 (64 KiB, as the UDS buffered stream), received with ReceiveMany"),
        new("shmipc.pipe_64KiB_stream_throughput", "msg/s", "Pipe one-way stream of 64 KiB messages"),
        new("shmipc.pipe_64KiB_stream_bandwidth", "MB/s", "Pipe one-way stream of 64 KiB messages"),
        new("shmipc.queue_64B_1p1c_throughput", "msg/s", "Queue of 64 B messages, 1 producer process, 1 consumer process"),
        new("shmipc.queuering_queue_64B_1p1c_throughput", "msg/s", "Queue of 64 B messages, 1 -> 1 processes (pinned), in the queuering scenario: what the ring alone is compared with"),
        new("shmipc.queue_ring_only_64B_1p1c_throughput", "msg/s", "Diagnostic: the queue's ring alone (no call guard, notify, metrics; consumer spins), 64 B, 1 -> 1 processes (pinned)"),
        new("shmipc.queue_64B_2p2c_throughput", "msg/s", "Queue of 64 B messages, 2 producer processes, 2 consumer processes"),
        new("shmipc.queue_64B_1p1c_threads_throughput", "msg/s", "Queue of 64 B messages between a producer thread and a consumer thread of one process, one queue object (not pinned)"),
        new("shmipc.queue_64B_burst_1t_throughput", "msg/s", "Queue of 64 B messages in bursts of 8192 in one process: one thread writes a burst into the empty queue, then drains it"),
        new("shmipc.queue_64B_burst_2t_throughput", "msg/s", "The same bursts with two threads: two producers, then two consumers, running at once on free cores (contention without oversubscription)"),
        new("shmipc.queue_1KiB_1p1c_throughput", "msg/s", "Queue of 1 KiB messages, 1 producer process, 1 consumer process"),
        new("shmipc.queue_1KiB_2p2c_throughput", "msg/s", "Queue of 1 KiB messages, 2 producer processes, 2 consumer processes"),
        new("shmipc.queue_64KiB_1p1c_throughput", "msg/s", "Queue of 64 KiB messages, 1 producer process, 1 consumer process"),
        new("shmipc.queue_64KiB_2p2c_throughput", "msg/s", "Queue of 64 KiB messages, 2 producer processes, 2 consumer processes"),
        new("shmipc.pool2_apply_rtt_median", "ns", "Pool(2) Apply round trip of a trivial function"),
        new("shmipc.pipe_8B_rtt_beside_pool_median", "ns", "Pipe 8 B round trip, each run just before a run of the Pool(2) Apply round trip"),
        new("pair.pool2_apply_per_pipe_rtt", "ratio", "Pool(2) Apply round trip / pipe 8 B round trip, run back to back"),
        new("shmipc.pool2_map_1M_throughput", "items/s", "Pool(2) Map of a trivial function over 1M ints"),
        new("shmipc.pool_cpu_bound_scaling", "ratio", "Pool(2) over Pool(1) speed-up on CPU-bound work (~1 ms items, chunk size 1)"),
        new("shmipc.pool1_cpu_bound_ms", "ms", "The CPU-bound Map on Pool(1)"),
        new("shmipc.pool2_cpu_bound_ms", "ms", "The CPU-bound Map on Pool(2)"),
        new("shmipc.pool2_start_to_first_result", "ms", "Pool(2) start to the first result"),
        new("pair.pool2_start_per_console_start", "ratio", "Pool(2) start to first result / a bare .NET console start, each run just after its console start"),
        new("pair.pool2_start_per_py_spawn_start", "ratio", "Pool(2) start to first result / Python spawn Pool(2) start, each Python run just after its Pool(2) run"),

        // Many workers (issue 16, scenario start).
        new("shmipc.worker_start_ms", "ms", "A single worker's start: new ShmPool(1) to WaitForWorkers"),
        new("shmipc.pool16_start_to_first_result", "ms", "Pool(16) start to the first Apply result"),
        new("shmipc.pool64_start_to_all_ready", "ms", "Pool(64) start to every worker ready (WaitForWorkers)"),
        new("shmipc.pool64_start_per_linear", "ratio", "Pool(64) start to all ready / (64 x a single worker's start / cores), same run"),
        new("shmipc.worker_rss_mb", "MB", "Resident memory (VmRSS) of an idle pool worker that has run tasks"),
        new("dotnet.console_rss_mb", "MB", "Resident memory (VmRSS) of a bare .NET console process (this program, role 'hello-wait'), measured the same way"),
        new("shmipc.pool200_map_1000_ms", "ms", "Pool(200): new ShmPool to a Map of 1,000 items (chunk size 1) done, in a child process"),
        new("shmipc.pool200_stderr_bytes", "bytes", "What that child and its 200 workers wrote to standard error"),
        new("shmipc.idle_consumer_cpu_pct", "%", "CPU of a consumer process blocked in ShmQueue.Dequeue on an empty queue (% of one core, from schedstat: the goal's figure)"),
        new("shmipc.idle_consumer_cpu_pct_procstat", "%", "The same from /proc/pid/stat (10 ms ticks: 0.1% of a core over 10 s)"),

        new("shmipc.interop_py_pipe_8B_rtt_median", "ns", "Interop: Pipe 8 B round trip, this process (CPU 0) to the Python peer (native-notes/python, CPU 1), both spinning first"),

        new("shmipc.lock_uncontended_ns", "ns", "ShmLock Acquire + Release, uncontended, one process (per pair)"),
        new("shmipc.lock_contended_2x1M_ms", "ms", "Two processes each taking a ShmLock 1M times around a plain increment of a ShmValue<long> (total time; the counter is checked)"),
        new("shmipc.event_pingpong_rtt_median", "ns", "Two auto-reset ShmEvents ping-ponged between two processes (CPUs 0 and 1), ShmWaitStrategy.NoSpin: every wait sleeps, as in c.sem_8B_rtt"),
        new("shmipc.array_2p24_write_sum_ms", "ms", "ShmArray<double> of 2^24 elements: written by this process, summed by another (first write to end of sum)"),
        new("shmipc.event_pingpong_spin_rtt_median", "ns", "The same with the default wait strategy (spin 50 us, then sleep)"),

        // One 64 MiB message (issue 17, scenario large).
        new("shmipc.queue_64MiB_message_ms", "ms", "One 64 MiB message through a Queue (side segment, reused), producer process -> consumer, read in place"),
        new("py.queue_64MiB_message_ms", "ms", "Python multiprocessing.Queue, one 64 MiB bytes, producer process -> consumer"),
        new("c.memcpy_64MiB_ms", "ms", "C: one memcpy of 64 MiB into memory written before"),

        // More processes than cores (issue 16, scenario oversubscribed).
        new("shmipc.ack_queue_64B_1p1c_throughput", "msg/s", "Acknowledged queue of 64 B messages, 1 -> 1 processes (pinned), Take + Ack per message"),
        new("shmipc.ack_joinable_queue_64B_1p1c_throughput", "msg/s", "Joinable queue of 64 B messages, 1 -> 1 (pinned), in the acknowledged scenario's run: Dequeue + TaskDone per message (the put counts too)"),
        new("shmipc.ack_plain_queue_64B_1p1c_throughput", "msg/s", "Plain queue of 64 B messages, 1 -> 1 (pinned), in the acknowledged scenario's run: what the acknowledged one is compared with"),
        new("shmipc.ack_redelivery_median", "ns", "Acknowledged queue: from a taker's SIGKILL to the message's retake by a consumer waiting in Take (default wait strategy)"),
        new("shmipc.oversubscribed_queue_64B_1p1c_throughput", "msg/s", "Queue of 64 B messages, 1 -> 1 processes (pinned), in the oversubscribed scenario: what 4 -> 4 and 8 -> 8 are compared with"),
        new("shmipc.queue_64B_4p4c_throughput", "msg/s", "Queue of 64 B messages, 4 producer processes, 4 consumer processes (not pinned)"),
        new("shmipc.queue_64B_8p8c_throughput", "msg/s", "Queue of 64 B messages, 8 producer processes, 8 consumer processes (not pinned)"),
        new("shmipc.queue_64B_4p4c_nospin_throughput", "msg/s", "Experiment: 4 -> 4 with ShmWaitStrategy.SpinDuration = 0 in every process"),
        new("shmipc.queue_64B_8p8c_nospin_throughput", "msg/s", "Experiment: 8 -> 8 with SpinDuration = 0"),
        new("shmipc.queue_64B_4p4c_spin5us_throughput", "msg/s", "Experiment: 4 -> 4 with SpinDuration = 5 us"),
        new("shmipc.queue_64B_8p8c_spin5us_throughput", "msg/s", "Experiment: 8 -> 8 with SpinDuration = 5 us"),
        new("shmipc.pool8_map_1M_throughput", "items/s", "Pool(8) Map of a trivial function over 1M ints (warm; 10 Maps per repetition)"),
        new("shmipc.pool2_map_1M_beside_pool8_throughput", "items/s", "Pool(2) Map over 1M ints, each run just before a run of Pool(8)"),
        new("shmipc.pool8_per_pool2_map_1M", "ratio", "Pool(8) Map 1M / Pool(2) Map 1M, per repetition (10 Maps of each, alternated, after 3 s of warm-up)"),
        new("shmipc.pool2_map_1M_first_throughput", "items/s", "The first Map over 1M ints of the oversubscribed scenario's Pool(2) (its workers' Map code cold)"),
        new("shmipc.pool8_map_1M_first_throughput", "items/s", "The first Map over 1M ints of Pool(8), just after Pool(2)'s first (cold)"),
        new("shmipc.pool8_cpu_bound_ms", "ms", "CPU-bound Map (~1 ms items, chunk size 1) on Pool(8)"),
        new("shmipc.pool2_cpu_bound_beside_pool8_ms", "ms", "The same on Pool(2), each run just before a run of Pool(8)"),
        new("shmipc.pool8_per_pool2_cpu_bound", "ratio", "Pool(2) time / Pool(8) time of the CPU-bound Map, per repetition (Pool(8)'s speed relative to Pool(2))"),
        new("shmipc.pool8_apply_rtt_median", "ns", "Pool(8) Apply round trip of a trivial function"),
        new("shmipc.pool8_apply_rtt_p99", "ns", "Pool(8) Apply round trip, 99th percentile"),
        new("shmipc.pool2_apply_rtt_beside_pool8_median", "ns", "Pool(2) Apply round trip, each run just before a run of Pool(8)"),
        new("shmipc.pool2_apply_rtt_beside_pool8_p99", "ns", "Pool(2) Apply round trip beside Pool(8), 99th percentile"),
        new("pair.pool8_apply_per_pool2", "ratio", "shmipc.pool8_apply_rtt_median / shmipc.pool2_apply_rtt_beside_pool8_median, back to back"),
        new("py.pool8_map_1M_throughput", "items/s", "Python Pool(8).map over 1M ints"),

        // The cost of one message (issue 16): bench/instructions.sh, valgrind --tool=callgrind, not a scenario.
        new("shmipc.queue_64B_instructions_per_message", "instructions", "Queue Enqueue + Dequeue of one 64 B message, one process (callgrind: difference of two message counts)"),
        new("shmipc.pipe_64B_instructions_per_message", "instructions", "Pipe Send + ReceiveInto of one 64 B message, one process (callgrind: difference of two message counts)"),
        new("shmipc.async_pipe_8B_rtt_median", "ns", "Pipe 8 B round trip with await SendAsync / await ReceiveAsync(Memory) in both processes (adaptive caller spin, then waiter threads + thread-pool continuations)"),
        new("shmipc.async_pipe_8B_rtt_nospin_median", "ns", "The same awaited round trip with ShmWaitStrategy.NoSpin on both ends: every leg pending (waiter thread wake + thread-pool hop)"),
        new("shmipc.async_sync_pipe_8B_rtt_median", "ns", "The synchronous pipe 8 B round trip (default wait strategy) in the same run"),
        new("dotnet.channel_8B_rtt_median", "ns", "System.Threading.Channels: ping-pong of a long between two tasks over two unbounded channels, one process"),
        new("shmipc.async_1000_pending_receives_threads", "threads", "Threads of this process while 1,000 pipe ends each await one ReceiveAsync"),
        new("shmipc.async_threads_before", "threads", "Threads of this process before any async call"),
        new("shmipc.async_1000_pending_receives_added_threads", "threads", "Threads added by the 1,000 pending receives (goal: <= 2 + cores)"),
        new("shmipc.async_pipe_rtt_allocated_bytes", "B", "Bytes allocated per steady-state awaited pipe round trip in this process (GC.GetTotalAllocatedBytes, all threads), net of an equally long window with one receive pending (time-driven peer checks)"),

        // Loans (issue 17): 64 KiB written in place by the producer, read in place by the consumer (scenario "loans").
        new("shmipc.pipe_64KiB_loan_throughput", "msg/s", "Pipe one-way stream of 64 KiB messages written through loans (Loan, fill, Commit), read in place (ReceiveMany, every byte checked), 1 MiB ring (16 messages, as the 64 KiB pipe stream)"),
        new("shmipc.pipe_64KiB_loan_bandwidth", "MB/s", "The same stream in bytes per second"),
        new("shmipc.queue_64KiB_loan_throughput", "msg/s", "Queue one-way stream of 64 KiB messages written through loans, read in place (TryDequeue with a reader, every byte checked), 1 MiB ring (16 messages)"),
        new("shmipc.queue_64KiB_loan_bandwidth", "MB/s", "The same stream in bytes per second"),
        new("shmipc.pipe_64KiB_loan_8MiB_bandwidth", "MB/s", "The pipe loan stream with the C ring's 8 MiB ring (L3, not L2)"),
        new("shmipc.queue_64KiB_loan_8MiB_bandwidth", "MB/s", "The queue loan stream with the C ring's 8 MiB ring (L3, not L2)"),
        new("pair.pipe_64KiB_loan_per_c_best_spsc", "ratio", "shmipc.pipe_64KiB_loan_bandwidth / c.best_spsc_64KiB_bandwidth, each repetition measured back to back"),
        new("pair.pipe_64KiB_loan_per_c_memcpy_cold", "ratio", "shmipc.pipe_64KiB_loan_bandwidth / c.memcpy_64KiB_cold_bandwidth, each repetition measured back to back"),
        new("pair.queue_64KiB_loan_per_c_best_spsc", "ratio", "shmipc.queue_64KiB_loan_bandwidth / c.best_spsc_64KiB_bandwidth, each repetition measured back to back"),
        new("pair.queue_64KiB_loan_per_c_memcpy_cold", "ratio", "shmipc.queue_64KiB_loan_bandwidth / c.memcpy_64KiB_cold_bandwidth, each repetition measured back to back"),
        new("c.memcpy_64KiB_cold_bandwidth", "MB/s", "C, one process: memcpy of 64 KiB blocks that miss every cache (256 MiB regions walked in order, pages faulted in first)"),

        // Foundation figures, kept beside the structures: what a sleeping Pipe or Queue waits on.
        new("shmipc.semaphore_8B_rtt_median", "ns", "Foundation: ping-pong on two ShmIpc named semaphores (what a sleeping Pipe waits on)"),
        new("shmipc.idle_semaphore_waiter_cpu_pct", "%", "Foundation: CPU of a process blocked in NamedSemaphore.Wait slices (% of one core, from schedstat)"),
        new("shmipc.idle_semaphore_waiter_cpu_pct_procstat", "%", "Foundation: the same from /proc/pid/stat (10 ms ticks)"),

        // Back-to-back ratios (per repetition: the baseline's run, then the library's run; median of the ratios).
        new("pair.pipe_8B_rtt_per_c_best_spin", "ratio", "shmipc.pipe_8B_rtt_median / c.best_spin_8B_rtt_median (the best C ring's ping-pong), each repetition measured back to back"),
        new("pair.event_pingpong_per_c_sem", "ratio", "shmipc.event_pingpong_rtt_median / c.sem_8B_rtt_median, each repetition measured back to back"),
        new("pair.pipe_8B_sleep_rtt_per_c_sem", "ratio", "shmipc.pipe_8B_sleep_rtt_median / c.sem_8B_rtt_median, each repetition measured back to back"),
        new("pair.queuering_queue_64B_1p1c_per_c_best_spsc", "ratio", "shmipc.queuering_queue_64B_1p1c_throughput / c.best_spsc_64B_throughput, each repetition measured back to back (scenario queuering)"),
        new("pair.c_peer_queue_64B_1p1c_per_c_best_spsc", "ratio", "c.peer_queue_64B_1p1c_throughput / c.best_spsc_64B_throughput, each repetition measured back to back (scenario queuering): the queue protocol in C against the best ring"),
        new("pair.queue_ring_only_64B_1p1c_per_c_best_spsc", "ratio", "shmipc.queue_ring_only_64B_1p1c_throughput / c.best_spsc_64B_throughput, each repetition measured back to back"),
        new("pair.queue_64B_1p1c_per_c_best_spsc", "ratio", "shmipc.queue_64B_1p1c_throughput / c.best_spsc_64B_throughput (the best C ring, header commit), each repetition measured back to back"),

        // Baselines. The C floor of issue 16 (bench/native/best_spsc.c, cc -O2 -march=native): the field's best-practice
        // SPSC ring (Agrona OneToOneRingBuffer / rigtorp SPSCQueue), two processes over a /dev/shm mapping.
        new("c.peer_queue_64B_1p1c_throughput", "msg/s", "The queue protocol itself in C: the C peer's (native-notes/c) blocking put / get, 64 B, 1 MiB queue, 1 -> 1 processes pinned as the best ring's (cc -O2 -march=native; per run: fresh producer, median of 5 slices)"),
        new("c.best_spsc_64B_throughput", "msg/s", "C best-practice SPSC ring (8 B headers, cached indices, 128 B-apart counters), 64 B, header commit, one publication per message (per run: fresh producer, median of 5 slices)"),
        new("c.best_spsc_64B_tail_throughput", "msg/s", "C best-practice ring, 64 B, tail commit, tail published per message"),
        new("c.best_spsc_64B_batched_throughput", "msg/s", "C best-practice ring, 64 B, tail commit, tail published every 64 messages"),
        new("c.best_spsc_64KiB_bandwidth", "MB/s", "C best-practice ring, 64 KiB records copied in and out of an 8 MiB ring (tail commit)"),
        new("c.best_spsc_64KiB_header_bandwidth", "MB/s", "C best-practice ring, the same with header commit (the consumer zeroes what it read)"),
        new("c.best_spin_8B_rtt_median", "ns", "C best-practice ring: 8 B ping-pong over two rings, header commit, pinned to CPUs 0 and 1"),
        new("c.best_spin_8B_tail_rtt_median", "ns", "C best-practice ring: the same ping-pong, tail commit"),

        // The first issues' C floor (bench/native/shm_baselines.c, cc -O2), kept for history: the goals now compare with the ring above.
        new("c.spin_8B_rtt_median", "ns", "C, two processes on one MAP_SHARED region, both spinning, pinned to CPUs 0 and 1"),
        new("c.sem_8B_rtt_median", "ns", "C, ping-pong on process-shared POSIX semaphores, CPUs 0 and 1"),
        new("c.sem_8B_rtt_unslept_pct", "%", "Share of those C round trips under 2 us (a side found the other's post before it slept): compare with shmipc.pipe_8B_sleep_rtt_unslept_pct"),
        new("c.sem_same_cpu_8B_rtt_median", "ns", "C, the same semaphore ping-pong with both processes on CPU 0"),
        new("c.sem_same_cpu_8B_rtt_unslept_pct", "%", "Share of those round trips under 2 us (0 expected: one CPU cannot run both sides at once)"),
        new("c.spsc_64B_throughput", "msg/s", "C, SPSC ring of 64 B slots, one release store per message (per run: fresh producer, median of 5 slices)"),
        new("c.spsc_64B_best_throughput", "msg/s", "C, the same ring: the best of the 5 slices of a run"),
        new("c.spsc_64B_worst_throughput", "msg/s", "C, the same ring: the worst of the 5 slices of a run"),
        new("c.spsc_64B_batched_throughput", "msg/s", "C, the same ring publishing head/tail once per 32 messages"),
        new("c.memcpy_64KiB_bandwidth", "MB/s", "C, memcpy of 64 KiB messages into a 1 MiB shared region (one process)"),
        new("c.robust_mutex_uncontended_ns", "ns", "C, pthread mutex PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST in a MAP_SHARED region: lock + unlock, uncontended"),
        new("c.robust_mutex_contended_2x1000k_ms", "ms", "C, that mutex taken 1M times by each of two processes around a shared counter (total time)"),
        new("c.array_2p24_write_sum_ms", "ms", "C, the same: 2^24 doubles in a MAP_SHARED region written by one process, summed by a forked one"),
        new("dotnet.named_mutex_uncontended_ns", "ns", ".NET named Mutex (new Mutex(false, name)) WaitOne + ReleaseMutex, uncontended"),
        new("py.lock_uncontended_ns", "ns", "Python multiprocessing.Lock acquire + release, uncontended"),
        new("py.event_pingpong_rtt_median", "ns", "Python, two multiprocessing.Event objects ping-ponged between two processes (wait, clear, set)"),
        new("py.numpy_array_2p24_write_sum_ms", "ms", "Python, numpy over multiprocessing.shared_memory: 2^24 float64 written by one process, summed by another"),
        new("dotnet.uds_8B_rtt_median", "ns", ".NET Unix domain socket 8 B ping-pong"),
        new("dotnet.anon_pipe_8B_rtt_median", "ns", ".NET anonymous pipes (AnonymousPipeServerStream) 8 B ping-pong"),
        new("dotnet.uds_64B_stream_throughput", "msg/s", ".NET Unix domain socket, 64 B messages, one Send per message"),
        new("dotnet.uds_64B_batched_stream_throughput", "msg/s", ".NET Unix domain socket, 64 B messages through a 64 KiB buffer"),
        new("dotnet.console_start_to_first_message", "ms", "A .NET console process (this program, role 'hello'): start to its first line"),
        new("py.pipe_8B_rtt_median", "ns", "Python multiprocessing.Pipe 8 B round trip"),
        new("py.queue_64B_throughput", "msg/s", "Python multiprocessing.Queue, 64 B bytes, 1 producer process"),
        new("shmipc.nats_apply_rtt_median", "ns", "NatsPool (2 local workers, local nats-server) Apply round trip of a trivial function"),
        new("nats.request_reply_rtt_median", "ns", "Bare NATS.Net request-reply of the same bytes to an echo process, each run just before a NatsPool Apply run"),
        new("pair.nats_apply_per_request_reply", "ratio", "NatsPool Apply round trip / bare NATS request-reply, run back to back"),
        new("shmipc.nats_direct_apply_rtt_median", "ns", "NatsPool with Durable = false (core requests to a worker queue group; 2 local workers) Apply round trip of a trivial function"),
        new("nats.request_reply_beside_direct_rtt_median", "ns", "Bare NATS.Net request-reply of the same bytes to an echo process, each run just before a direct NatsPool Apply run"),
        new("pair.nats_direct_apply_per_request_reply", "ratio", "NatsPool direct Apply round trip / bare NATS request-reply, run back to back"),
        new("nats.js_work_queue_rtt_median", "ns", "Bare JetStream work-queue round trip of the same bytes (publish, an echo process pulls, replies on core, acks): the floor of a durable task"),
        new("shmipc.nats_map_1M_throughput", "items/s", "NatsPool (2 local workers) Map of a trivial function over 1M ints"),
        new("shmipc.pool2_map_1M_beside_nats_throughput", "items/s", "ShmPool(2) Map over 1M ints, each run just before a NatsPool run"),
        new("pair.nats_map_per_pool2_map", "ratio", "NatsPool Map 1M / ShmPool(2) Map 1M, run back to back"),
        new("shmipc.nats_cpu_bound_scaling", "ratio", "NatsPool 2 workers over 1 worker speed-up on CPU-bound work (~1 ms items, chunk size 1)"),
        new("py.pool2_apply_rtt_median", "ns", "Python Pool(2).apply round trip"),
        new("py.pool2_map_1M_throughput", "items/s", "Python Pool(2).map over 1M ints"),
        new("py.pool2_spawn_start_to_first_result", "ms", "Python Pool(2), spawn: start to first result"),
        new("py.pool2_fork_start_to_first_result", "ms", "Python Pool(2), fork: start to first result"),

        // Shared arrays through the Pool (issue 17, scenario inplace).
        new("shmipc.pool2_map_in_place_ms", "ms", "Pool(2).MapInPlace of x => 2x + 1 over 2^26 floats in ShmArrays (already mapped in the workers)"),
        new("c.loop_2p26_ms", "ms", "C, one thread: out[i] = 2 * in[i] + 1 over 2^26 floats in MAP_SHARED memory (-O2 -march=native)"),
        new("py.pool2_map_numpy_chunks_ms", "ms", "Python Pool(2).map of 2x + 1 over 2^26 float32 split into 8 numpy chunks, results joined"),
    ];

    /// <summary>The goals of the Queue, Pipe, Pool and interop issues, as ratios measured in the same run.</summary>
    public static readonly Goal[] Goals =
    [
        new("pipe", "pipe 8 B rtt (spinning) <= 2x the best C ring's ping-pong (c.best_spin, header commit)", "shmipc.pipe_8B_rtt_median", "c.best_spin_8B_rtt_median", GoalTest.AtMost, 2, Paired: "pair.pipe_8B_rtt_per_c_best_spin"),
        new("pipe", "history: pipe 8 B rtt / the old C floor's word ping-pong (c.spin; was <= 2x; reported)", "shmipc.pipe_8B_rtt_median", "c.spin_8B_rtt_median", GoalTest.AtLeast, 0),
        new("async", "1,000 pending pipe receives add <= 2 + cores threads", "shmipc.async_1000_pending_receives_added_threads", null, GoalTest.AtMost, 2 + Environment.ProcessorCount),
        new("async", "a steady-state awaited round trip allocates 0 bytes", "shmipc.async_pipe_rtt_allocated_bytes", null, GoalTest.AtMost, 0),
        new("pipe", "pipe 8 B rtt (spinning) >= 20x faster than .NET UDS", "dotnet.uds_8B_rtt_median", "shmipc.pipe_8B_rtt_median", GoalTest.AtLeast, 20),
        new("pipe", "pipe 8 B rtt (receiver sleeping) <= 1.2x C semaphore ping-pong", "shmipc.pipe_8B_sleep_rtt_median", "c.sem_8B_rtt_median", GoalTest.AtMost, 1.2, Paired: "pair.pipe_8B_sleep_rtt_per_c_sem"),
        new("pipe", "pipe 64 B stream >= .NET UDS batched stream", "shmipc.pipe_64B_stream_throughput", "dotnet.uds_64B_batched_stream_throughput", GoalTest.AtLeast, 1),
        new("pipe", "pipe 64 B stream, SendDeferred + ReceiveMany >= .NET UDS batched stream", "shmipc.pipe_64B_deferred_stream_throughput", "dotnet.uds_64B_batched_stream_throughput", GoalTest.AtLeast, 1),
        new("pipe", "pipe 64 KiB stream bandwidth >= 50% of the best C ring's 64 KiB copy in + copy out (c.best_spsc_64KiB)", "shmipc.pipe_64KiB_stream_bandwidth", "c.best_spsc_64KiB_bandwidth", GoalTest.AtLeast, 0.5),
        new("pipe", "history: pipe 64 KiB stream bandwidth / the old floor's one-process memcpy (was >= 50%; reported)", "shmipc.pipe_64KiB_stream_bandwidth", "c.memcpy_64KiB_bandwidth", GoalTest.AtLeast, 0),
        new("queue", "queue 64 B 1p1c >= 50% of the best C SPSC ring (c.best_spsc, header commit, one publication per message)", "shmipc.queue_64B_1p1c_throughput", "c.best_spsc_64B_throughput", GoalTest.AtLeast, 0.5, Paired: "pair.queue_64B_1p1c_per_c_best_spsc"),
        new("queue", "history: queue 64 B 1p1c / the old naive C ring (c.spsc; was >= 50%; reported)", "shmipc.queue_64B_1p1c_throughput", "c.spsc_64B_throughput", GoalTest.AtLeast, 0),
        new("queue", "queue 64 B 1p1c >= 10x .NET UDS one-write-per-message stream", "shmipc.queue_64B_1p1c_throughput", "dotnet.uds_64B_stream_throughput", GoalTest.AtLeast, 10),
        new("queue", "idle blocked consumer < 0.2% of a core over 10 s (schedstat)", "shmipc.idle_consumer_cpu_pct", null, GoalTest.Below, 0.2),
        new("pool", "pool2 apply rtt <= 3x pipe 8 B rtt", "shmipc.pool2_apply_rtt_median", "shmipc.pipe_8B_rtt_beside_pool_median", GoalTest.AtMost, 3, Paired: "pair.pool2_apply_per_pipe_rtt"),
        new("pool", "pool2 apply rtt >= 20x faster than Python Pool.apply", "py.pool2_apply_rtt_median", "shmipc.pool2_apply_rtt_median", GoalTest.AtLeast, 20),
        new("pool", "pool2 map 1M >= 10x Python Pool(2).map", "shmipc.pool2_map_1M_throughput", "py.pool2_map_1M_throughput", GoalTest.AtLeast, 10),
        new("pool", "cpu-bound scaling Pool(2)/Pool(1) >= 1.8", "shmipc.pool_cpu_bound_scaling", null, GoalTest.AtLeast, 1.8),
        new("pool", "pool2 start to first result <= 2x bare dotnet start", "shmipc.pool2_start_to_first_result", "dotnet.console_start_to_first_message", GoalTest.AtMost, 2, Paired: "pair.pool2_start_per_console_start"),
        new("pool", "pool2 start to first result faster than Python spawn Pool", "shmipc.pool2_start_to_first_result", "py.pool2_spawn_start_to_first_result", GoalTest.Below, 1, Paired: "pair.pool2_start_per_py_spawn_start"),
        new("start", "Pool(64) start to all ready <= 1.5 x 64 x a single worker's start / cores", "shmipc.pool64_start_per_linear", null, GoalTest.AtMost, 1.5),
        new("start", "Pool(200) maps 1,000 items with nothing on standard error", "shmipc.pool200_stderr_bytes", null, GoalTest.AtMost, 0),
        new("start", "idle worker resident memory / a bare .NET console process's (reported)", "shmipc.worker_rss_mb", "dotnet.console_rss_mb", GoalTest.AtLeast, 0),

        new("large", "64 MiB queue message >= 10x faster than Python multiprocessing.Queue", "py.queue_64MiB_message_ms", "shmipc.queue_64MiB_message_ms", GoalTest.AtLeast, 10),
        new("large", "64 MiB queue message <= 1.5x one C memcpy of 64 MiB", "shmipc.queue_64MiB_message_ms", "c.memcpy_64MiB_ms", GoalTest.AtMost, 1.5),

        new("interop", "python peer pipe rtt beats multiprocessing.Pipe", "py.pipe_8B_rtt_median", "shmipc.interop_py_pipe_8B_rtt_median", GoalTest.Above, 1),

        new("sync", "lock uncontended <= 1.5x C robust pthread mutex", "shmipc.lock_uncontended_ns", "c.robust_mutex_uncontended_ns", GoalTest.AtMost, 1.5),
        new("sync", "lock uncontended >= 10x faster than .NET named Mutex", "dotnet.named_mutex_uncontended_ns", "shmipc.lock_uncontended_ns", GoalTest.AtLeast, 10),
        new("sync", "lock uncontended >= 50x faster than Python multiprocessing.Lock", "py.lock_uncontended_ns", "shmipc.lock_uncontended_ns", GoalTest.AtLeast, 50),
        new("sync", "lock contended 2 x 1M <= 1.5x C robust mutex", "shmipc.lock_contended_2x1M_ms", "c.robust_mutex_contended_2x1000k_ms", GoalTest.AtMost, 1.5),
        new("sync", "event set -> sleeping waiter <= 1.1x C semaphore ping-pong", "shmipc.event_pingpong_rtt_median", "c.sem_8B_rtt_median", GoalTest.AtMost, 1.1, Paired: "pair.event_pingpong_per_c_sem"),
        new("sync", "array 2^24 write + sum >= 0.8x the same in C (time: C / ShmIpc)", "c.array_2p24_write_sum_ms", "shmipc.array_2p24_write_sum_ms", GoalTest.AtLeast, 0.8),
        new("sync", "array 2^24 write + sum vs Python numpy over SharedMemory (time: Python / ShmIpc, reported)", "py.numpy_array_2p24_write_sum_ms", "shmipc.array_2p24_write_sum_ms", GoalTest.AtLeast, 0),
        new("sync", "event ping-pong >= 20x faster than Python Event", "py.event_pingpong_rtt_median", "shmipc.event_pingpong_rtt_median", GoalTest.AtLeast, 20),

        new("acknowledged", "acknowledged queue 64 B 1 -> 1, Take + Ack per message >= 0.5x the plain queue of the same run", "shmipc.ack_queue_64B_1p1c_throughput", "shmipc.ack_plain_queue_64B_1p1c_throughput", GoalTest.AtLeast, 0.5),
        new("acknowledged", "redelivery after a taker's SIGKILL: median <= one sleep slice (100 ms)", "shmipc.ack_redelivery_median", null, GoalTest.AtMost, 100e6),
        new("oversubscribed", "queue 64 B 4 -> 4 on 2 cores >= 0.5x the 1 -> 1 of the same run", "shmipc.queue_64B_4p4c_throughput", "shmipc.oversubscribed_queue_64B_1p1c_throughput", GoalTest.AtLeast, 0.5),
        new("oversubscribed", "queue 64 B 8 -> 8 on 2 cores >= 0.5x the 1 -> 1 of the same run", "shmipc.queue_64B_8p8c_throughput", "shmipc.oversubscribed_queue_64B_1p1c_throughput", GoalTest.AtLeast, 0.5),
        new("oversubscribed", "Pool(8) Map 1M >= 0.8x Pool(2)'s (same run, per repetition)", "shmipc.pool8_per_pool2_map_1M", null, GoalTest.AtLeast, 0.8),
        new("oversubscribed", "Pool(8) CPU-bound Map >= 0.95x Pool(2)'s speed (same run, per repetition)", "shmipc.pool8_per_pool2_cpu_bound", null, GoalTest.AtLeast, 0.95),
        new("oversubscribed", "Pool(8) Apply rtt p50 / Pool(2)'s (reported)", "shmipc.pool8_apply_rtt_median", "shmipc.pool2_apply_rtt_beside_pool8_median", GoalTest.AtLeast, 0, Paired: "pair.pool8_apply_per_pool2"),
        new("oversubscribed", "Pool(8) Apply rtt p99 / Pool(2)'s (reported)", "shmipc.pool8_apply_rtt_p99", "shmipc.pool2_apply_rtt_beside_pool8_p99", GoalTest.AtLeast, 0),
        new("oversubscribed", "Pool(8) Map 1M vs Python Pool(8).map (reported)", "shmipc.pool8_map_1M_throughput", "py.pool8_map_1M_throughput", GoalTest.AtLeast, 0),

        new("inplace", "MapInPlace 2^26 floats on Pool(2) >= 20x faster than Python Pool(2).map over numpy chunks", "py.pool2_map_numpy_chunks_ms", "shmipc.pool2_map_in_place_ms", GoalTest.AtLeast, 20),
        new("inplace", "MapInPlace 2^26 floats on Pool(2) >= 0.7x a single-threaded C loop (time: C / ShmIpc)", "c.loop_2p26_ms", "shmipc.pool2_map_in_place_ms", GoalTest.AtLeast, 0.7),
        new("loans", "pipe 64 KiB loans, read in place >= 1.0x the best C ring's 64 KiB copy in + copy out", "shmipc.pipe_64KiB_loan_bandwidth", "c.best_spsc_64KiB_bandwidth", GoalTest.AtLeast, 1.0, Paired: "pair.pipe_64KiB_loan_per_c_best_spsc"),
        new("loans", "pipe 64 KiB loans, read in place >= 0.5x a one-process memcpy of cache-missing 64 KiB blocks", "shmipc.pipe_64KiB_loan_bandwidth", "c.memcpy_64KiB_cold_bandwidth", GoalTest.AtLeast, 0.5, Paired: "pair.pipe_64KiB_loan_per_c_memcpy_cold"),
        new("loans", "queue 64 KiB loans, read in place >= 1.0x the best C ring's 64 KiB copy in + copy out", "shmipc.queue_64KiB_loan_bandwidth", "c.best_spsc_64KiB_bandwidth", GoalTest.AtLeast, 1.0, Paired: "pair.queue_64KiB_loan_per_c_best_spsc"),
        new("loans", "queue 64 KiB loans, read in place >= 0.5x a one-process memcpy of cache-missing 64 KiB blocks", "shmipc.queue_64KiB_loan_bandwidth", "c.memcpy_64KiB_cold_bandwidth", GoalTest.AtLeast, 0.5, Paired: "pair.queue_64KiB_loan_per_c_memcpy_cold"),

        new("nats", "NatsPool Apply rtt <= 1.5x a bare NATS request-reply of the same bytes", "shmipc.nats_apply_rtt_median", "nats.request_reply_rtt_median", GoalTest.AtMost, 1.5, Paired: "pair.nats_apply_per_request_reply"),
        new("nats", "NatsPool direct Apply rtt <= 1.5x a bare NATS request-reply", "shmipc.nats_direct_apply_rtt_median", "nats.request_reply_beside_direct_rtt_median", GoalTest.AtMost, 1.5, Paired: "pair.nats_direct_apply_per_request_reply"),
        new("nats", "NatsPool Apply rtt / a bare JetStream work-queue round trip (reported: our overhead on JetStream's floor)", "shmipc.nats_apply_rtt_median", "nats.js_work_queue_rtt_median", GoalTest.AtLeast, 0),
        new("nats", "NatsPool(2) Map 1M >= 1x Python Pool(2).map", "shmipc.nats_map_1M_throughput", "py.pool2_map_1M_throughput", GoalTest.AtLeast, 1),
        new("nats", "NatsPool(2) Map 1M / ShmPool(2) Map 1M (reported)", "shmipc.nats_map_1M_throughput", "shmipc.pool2_map_1M_beside_nats_throughput", GoalTest.AtLeast, 0, Paired: "pair.nats_map_per_pool2_map"),
        new("nats", "NatsPool CPU-bound scaling 2 workers / 1 worker >= 1.8", "shmipc.nats_cpu_bound_scaling", null, GoalTest.AtLeast, 1.8),

        // Foundation (informational; the real goal is the queue's idle consumer above).
        new("idle", "foundation: semaphore waiter < 0.2% of a core (schedstat)", "shmipc.idle_semaphore_waiter_cpu_pct", null, GoalTest.Below, 0.2),
    ];

    public static FigureSpec? Spec(string name) => Headline.FirstOrDefault(f => f.Name == name);
}
