/*
dev/fuzz/fuzz_common.h — what the libFuzzer harnesses of dev/fuzz/ share: temporary files for the
readers that take a path, a cursor that cuts one fuzz input into fields, and the readers' contract.

The contract every harness checks (a violation is a crash: __builtin_trap):
    a reader returns 0, or -1 with a message in err that names the file (its path);
    what a reader accepts satisfies what its format promises (checked per harness).
Memory errors, undefined behaviour and leaks are found by ASan/UBSan/LSan, not here.

Each harness is one function `static int fuzz_NAME_one(const uint8_t *data, size_t size)` (0: the
reader accepted the input, -1: rejected) and, unless FUZZ_REPLAY is defined, the libFuzzer entry
point. test_readers.c defines FUZZ_REPLAY, includes train_gpt2.c and every harness, and replays
the seed corpora and dev/fuzz/regressions/ through all of them.
*/
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

// Every temporary file of a process lives in /tmp/fuzz_<pid>/, removed when the process exits
// (libFuzzer's fork-mode jobs and Check's per-test children are processes of their own).
static char fz_dir[64];
static pid_t fz_dir_pid = -1;

static void fz_rm_tree(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char sub[512];
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            fz_rm_tree(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        remove(path);
    }
}

static void fz_cleanup(void) {
    if (fz_dir_pid == getpid()) fz_rm_tree(fz_dir);
}

// "/tmp/fuzz_<pid>/<name>": a file or a directory of this process
static void fz_tmp_path(char *buf, size_t n, const char *name) {
    if (fz_dir_pid != getpid()) {
        if (fz_dir_pid == -1) atexit(fz_cleanup);
        fz_dir_pid = getpid();
        snprintf(fz_dir, sizeof(fz_dir), "/tmp/fuzz_%d", (int)fz_dir_pid);
        mkdir(fz_dir, 0700);
    }
    snprintf(buf, n, "%s/%s", fz_dir, name);
}

static void fz_write_file(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) { fprintf(stderr, "fuzz: cannot write %s\n", path); abort(); }
    if (size && fwrite(data, 1, size, f) != size) { fprintf(stderr, "fuzz: short write %s\n", path); abort(); }
    fclose(f);
}

// The reader's contract on failure: a message, and the message names the file.
static void fz_check_fail(int rc, const char *err, const char *path) {
    if (rc == 0) return;
    if (rc != -1 || err[0] == 0) __builtin_trap();
    if (path && !strstr(err, path)) __builtin_trap();
}

// A cursor over the fuzz input: fixed-size fields, then length-prefixed chunks (4-byte little-
// endian length, clamped to what is left), then the rest. Reading past the end yields zeros.
typedef struct { const uint8_t *p; size_t n; } FzCursor;

static uint64_t fz_u(FzCursor *c, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        uint64_t b = 0;
        if (c->n) { b = *c->p++; c->n--; }
        v |= b << (8 * i);
    }
    return v;
}

static void fz_chunk(FzCursor *c, const uint8_t **p, size_t *n) {
    size_t len = (size_t)fz_u(c, 4);
    if (len > c->n) len = c->n;
    *p = c->p; *n = len;
    c->p += len; c->n -= len;
}

#endif // FUZZ_COMMON_H
