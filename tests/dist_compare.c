/*
tests/dist_compare.c — `dist_compare DIR_A DIR_B model|adapter`: do two training runs' outputs
match by the data-parallel tests' criteria (tests/dist_compare.h)? train.csv's losses, then
model.bin or adapter.bin. Prints what it found; exit status 0 when they match, 1 when not.
Used by tests/test_dist_gpu.sh on a GPU machine.
*/
#define TESTING
#include "train_gpt2.c"
#include "dist_compare.h"

int main(int argc, char **argv) {
    if (argc != 4 || (strcmp(argv[3], "model") != 0 && strcmp(argv[3], "adapter") != 0)) {
        fprintf(stderr, "usage: %s DIR_A DIR_B model|adapter\n", argv[0]);
        return 2;
    }
    char msg[2048];
    int bad = 0;
    if (dist_compare_losses(argv[1], argv[2], msg, sizeof(msg)) != 0) bad = 1;
    printf("%s: %s\n", bad ? "DIFFER" : "match", msg);
    int rc = dist_compare_params(argv[1], argv[2], strcmp(argv[3], "model") == 0, msg, sizeof(msg));
    printf("%s: %s\n", rc ? "DIFFER" : "match", msg);
    return bad || rc ? 1 : 0;
}
