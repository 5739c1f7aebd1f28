/*
tests/test_util.h — small helpers the standalone test suites share (libcheck's ck_assert inside).
  test_make_tmpdir(dir, n, name)   a fresh /tmp/NAME_XXXXXX folder into dir, once (dir[0] set: kept)
  test_write_file(path, data, n)   the bytes into path, or the test fails naming it
*/
#ifndef TESTS_TEST_UTIL_H
#define TESTS_TEST_UTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

static void test_make_tmpdir(char *dir, size_t n, const char *name) {
    if (dir[0]) return;
    snprintf(dir, n, "/tmp/%s_XXXXXX", name);
    if (!mkdtemp(dir)) { perror("mkdtemp"); exit(1); }
}

static void test_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    if (n) ck_assert(fwrite(data, 1, n, f) == n);
    fclose(f);
}

#endif // TESTS_TEST_UTIL_H
