/*
make_tasks: writes the embedded task suite (data/tasks.h, described in data/TASKS.md):
tokenizer.bin, the pretraining corpus and the train/val/test shards and loss masks of the
four instruction tasks. Deterministic: the same seed gives the same bytes on every machine.
*/
#include <time.h>
#include "tasks.h"

static void error_usage(void) {
    fprintf(stderr, "Usage:   ./make_tasks [options]\n");
    fprintf(stderr, "Options:\n");
    fprintf(stderr, "  -o <dir>      output directory (default data/tasks)\n");
    fprintf(stderr, "  --seed <int>  generator seed (default %d)\n", TASKS_DEFAULT_SEED);
    fprintf(stderr, "  -q            quiet: print nothing on success\n");
    exit(EXIT_FAILURE);
}

int main(int argc, char **argv) {
    const char *dir = "data/tasks";
    uint64_t seed = TASKS_DEFAULT_SEED;
    int verbose = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            seed = strtoull(argv[++i], &end, 10);
            if (errno || *end || end == argv[i]) { fprintf(stderr, "bad --seed %s\n", argv[i]); error_usage(); }
        } else if (strcmp(argv[i], "-q") == 0) verbose = 0;
        else error_usage();
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (tasks_generate(dir, seed, verbose) != 0) return EXIT_FAILURE;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (verbose) printf("tasks: %s written (seed %llu) in %.2f s\n", dir, (unsigned long long)seed,
                        (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    return 0;
}
