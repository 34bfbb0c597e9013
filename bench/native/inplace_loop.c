/*
 * inplace_loop.c: the C floor of shmipc.pool2_map_in_place_ms (issue 17): one thread computing out[i] = 2 * in[i] + 1
 * over <count> floats, in and out in MAP_SHARED memory (as ShmArray's), both touched before the first run so no run
 * pays page faults. The loop is what a careful C programmer writes; -O2 -march=native vectorizes it, so it runs at
 * what one core draws from memory (read in, write out: 8 bytes per element plus the write-allocate read of out).
 * Prints "value c.loop_<label>_ms <ms> ms" per measured run after <warmup> unmeasured ones.
 */
#define _GNU_SOURCE
#include "bench_common.h"

static void loop(long count, int runs, long warmup)
{
    size_t n = (size_t)count;
    float *in = shared_region(n * sizeof(float));
    float *out = shared_region(n * sizeof(float));
    for (size_t i = 0; i < n; i++) in[i] = (float)(i % 1000) - 500.5f;
    char label[32];
    if ((n & (n - 1)) == 0) {
        snprintf(label, sizeof label, "2p%d", __builtin_ctzl(n));
    } else {
        snprintf(label, sizeof label, "%zu", n);
    }
    for (long r = -warmup; r < runs; r++) {
        uint64_t start = now_ns();
        for (size_t i = 0; i < n; i++) out[i] = 2 * in[i] + 1;
        uint64_t end = now_ns();
        if (out[n - 1] != 2 * in[n - 1] + 1 || out[n / 2] != 2 * in[n / 2] + 1) {
            fprintf(stderr, "wrong result\n");
            exit(1);
        }
        if (r >= 0) {
            printf("value c.loop_%s_ms %.2f ms\n", label, (double)(end - start) / 1e6);
            fflush(stdout);
        }
    }
}

int main(int argc, char **argv)
{
    long count, warmup;
    int runs;
    parse_args(argc, argv, "loop", &count, &runs, &warmup);
    if (strcmp(argv[1], "loop") != 0) {
        fprintf(stderr, "unknown test %s\n", argv[1]);
        return 2;
    }
    loop(count, runs, warmup);
    return 0;
}
