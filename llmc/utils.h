/*
llmc/utils.h — the small things every part of the project uses, in one place.

  errors       die() for programs (main and the tools): "error: ..." on stderr, exit 1. Library code
               never calls it: it returns -1 and writes its message into a caller's buffer
               (`char *err, size_t errlen`), and the program decides.
  allocation   xcalloc(): zeroed memory or, when the machine is out of memory, a message naming what
               was being allocated and exit 1 (llm.c's mallocCheck; the one exit outside main).
  randomness   splitmix64, the project's seeded generator: rng_uniform in [0,1), rng_normal (Box-Muller).
               Everything that must be reproducible (init, data order, dropout, masks) draws from it.
  files        read_whole_file (regular files only; a NUL after the bytes) and write_chunks_atomic (path.tmp, fsync, rename:
               a failure leaves any previous file intact).
  numbers      bf16 <-> float (round to nearest even, NaN kept), a monotonic clock.
*/
#ifndef LLMC_UTILS_H
#define LLMC_UTILS_H

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// ----------------------------------------------------------------------------
// errors and allocation

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xcalloc(size_t n, size_t size, const char *what) {
    void *p = calloc(n ? n : 1, size);
    if (!p) die("out of memory allocating %s (%zu bytes)", what, n * size);
#ifdef MADV_HUGEPAGE
    // Large buffers (parameters, activations, their gradients) in 2 MiB pages where the kernel
    // allows it (transparent_hugepage=madvise): fewer TLB misses and page faults. calloc's large
    // blocks are fresh mappings, not yet touched, so the advice applies from the first fault.
    size_t bytes = n * size, hp = (size_t)2 << 20;
    if (bytes >= 2 * hp) {
        uintptr_t lo = ((uintptr_t)p + hp - 1) & ~(uintptr_t)(hp - 1), hi = ((uintptr_t)p + bytes) & ~(uintptr_t)(hp - 1);
        if (hi > lo) madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
#endif
    return p;
}

// ----------------------------------------------------------------------------
// randomness

static inline uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline float rng_uniform(uint64_t *state) { // [0,1)
    return (float)(splitmix64(state) >> 40) * (1.0f / 16777216.0f);
}
static float rng_normal(uint64_t *state) { // N(0,1), Box-Muller
    float u1 = rng_uniform(state), u2 = rng_uniform(state);
    if (u1 < 1e-12f) u1 = 1e-12f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853071795864f * u2);
}

// ----------------------------------------------------------------------------
// files

// Reads the whole file into memory. Returns NULL (and sets *err) on failure.
static void *read_whole_file(const char *path, size_t *size, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "%s: cannot open for reading", path); return NULL; }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f); snprintf(err, errlen, "%s: not a regular file", path); return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); snprintf(err, errlen, "%s: cannot seek", path); return NULL; }
    long n = ftell(f);
    if (n < 0) { fclose(f); snprintf(err, errlen, "%s: cannot tell size", path); return NULL; }
    rewind(f);
    char *buf = malloc((size_t)n + 1); // one byte more, a NUL: text files can be parsed in place
    if (!buf) { fclose(f); snprintf(err, errlen, "%s: out of memory (%ld bytes)", path, n); return NULL; }
    if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf); fclose(f); snprintf(err, errlen, "%s: short read", path); return NULL;
    }
    fclose(f);
    buf[n] = 0;
    *size = (size_t)n;
    return buf;
}

// Writes `nchunks` buffers to path atomically: path.tmp, flush, fsync, rename. A failure (disk
// full, ...) removes the temporary file and leaves any previous `path` intact. 0 or -1 + err.
static int write_chunks_atomic(const char *path, const void *const *bufs, const size_t *sizes, int nchunks,
                               char *err, size_t errlen) {
    char tmp[4200];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "%.200s...: path too long", path); return -1;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) { snprintf(err, errlen, "%s: cannot open for writing: %s", tmp, strerror(errno)); return -1; }
    int ok = 1;
    for (int i = 0; i < nchunks && ok; i++)
        if (sizes[i] && fwrite(bufs[i], 1, sizes[i], f) != sizes[i]) ok = 0;
    if (ok && fflush(f) != 0) ok = 0;
    if (ok && fsync(fileno(f)) != 0) ok = 0;
    int e = errno;
    if (fclose(f) != 0) { ok = 0; e = errno; }
    if (!ok) {
        remove(tmp);
        snprintf(err, errlen, "%s: write failed (%s); the previous file, if any, is intact", path, strerror(e));
        return -1;
    }
    if (rename(tmp, path) != 0) {
        e = errno; remove(tmp);
        snprintf(err, errlen, "%s: rename from %s failed: %s", path, tmp, strerror(e));
        return -1;
    }
    return 0;
}

static void join_path(char *out, size_t n, const char *dir, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

// ----------------------------------------------------------------------------
// numbers

static uint16_t float_to_bf16(float f) { // round to nearest even
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40); // NaN stays NaN
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
static float bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#endif // LLMC_UTILS_H
