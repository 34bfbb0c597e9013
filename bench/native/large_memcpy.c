/*
 * large_memcpy.c: the C floor of the 64 MiB message (issue 17): one memcpy of 64 MiB, in one process.
 *   reused: into a destination that was written before (its pages are mapped: what a reused side segment costs)
 *   fresh:  malloc + memcpy into new memory (every 4 KiB page faulted in and zeroed: what a new segment costs)
 * Usage: large_memcpy <runs>. Prints "value c.memcpy_64MiB_ms X ms" and "value c.memcpy_64MiB_fresh_ms X ms" per run.
 */
#include "bench_common.h"

#define SIZE ((size_t)64 << 20)

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    unsigned char *src = malloc(SIZE);
    unsigned char *dst = malloc(SIZE);
    if (!src || !dst) {
        return 1;
    }

    memset(src, 7, SIZE);
    memset(dst, 1, SIZE);
    printf("# c.memcpy_64MiB_ms: one memcpy of 64 MiB into a destination written before (pages mapped); c.memcpy_64MiB_fresh_ms: malloc + memcpy into new memory\n");
    for (int r = -1; r < runs; r++) {
        uint64_t t0 = now_ns();
        memcpy(dst, src, SIZE);
        uint64_t t1 = now_ns();
        unsigned char *fresh = malloc(SIZE);
        uint64_t t2 = now_ns();
        memcpy(fresh, src, SIZE);
        uint64_t t3 = now_ns();
        if (r >= 0) {
            printf("value c.memcpy_64MiB_ms %.3f ms\n", (double)(t1 - t0) / 1e6);
            printf("value c.memcpy_64MiB_fresh_ms %.3f ms\n", (double)(t3 - t2) / 1e6);
        }
        fflush(stdout);
        if (fresh[SIZE - 1] != 7 || dst[12345] != 7) {
            return 2;
        }
        free(fresh);
    }

    return 0;
}
