/*
dev/fuzz/fuzz_peft.c — libFuzzer harness for the readers that take outside files: the JSON parser,
the safetensors reader, the adapter / mask file readers, and peft_import (config + safetensors in a
  directory: 2 bytes of config length, the config, then the safetensors file). The first byte picks.

    clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -o fuzz_peft dev/fuzz/fuzz_peft.c -lm
    mkdir -p /tmp/fz && ./fuzz_peft -max_total_time=60 /tmp/fz dev/fuzz/seeds
*/
#include "data/dataloader.h"
#include "kernels/gemm.h"
#include "lora/adapter.h"
#include "lora/adapter_file.h"
#include "lora/peft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char err[512];
    int which = data[0] % 5;
    data++; size--;
    if (which == 0) {                       // JSON
        Json j;
        if (json_parse((const char *)data, size, &j, err, sizeof(err)) == 0) {
            // walk it: every child index in range, counts consistent
            for (int i = 0; i < j.n; i++) {
                int c = 0;
                for (int k = j.v[i].first; k >= 0; k = j.v[k].next) { if (k >= j.n) __builtin_trap(); c++; }
                if (c != j.v[i].nkids) __builtin_trap();
                if (j.v[i].type == J_OBJ) json_check_unique(&j, &j.v[i]);
            }
            json_free(&j);
        }
    } else if (which == 1) {                // safetensors (from memory)
        uint8_t *buf = malloc(size ? size : 1);
        memcpy(buf, data, size);
        StFile f;
        if (st_parse(buf, size, "fuzz", &f, err, sizeof(err)) == 0) {
            float tmp[64];
            for (int i = 0; i < f.n; i++) {
                uint64_t bytes = f.t[i].end - f.t[i].begin, cnt = bytes / (uint64_t)st_dtype_size[f.t[i].dtype];
                if (f.t[i].end > f.size) __builtin_trap();
                if (cnt <= 64) st_to_float(&f, &f.t[i], tmp, (size_t)cnt);
                int l, t, isB; peft_parse_key(f.t[i].name, &l, &t, &isB);
            }
            st_free(&f);
        }
    } else if (which == 4) {                // peft_import on a directory
        if (size < 2) return 0;
        size_t cl = (size_t)data[0] | ((size_t)data[1] << 8);
        data += 2; size -= 2;
        if (cl > size) cl = size;
        char dir[64], p[128];
        snprintf(dir, sizeof(dir), "/tmp/fuzz_peft_%d", (int)getpid());
        mkdir(dir, 0755);
        snprintf(p, sizeof(p), "%s/adapter_config.json", dir);
        FILE *fp = fopen(p, "wb"); if (!fp) return 0; fwrite(data, 1, cl, fp); fclose(fp);
        snprintf(p, sizeof(p), "%s/adapter_model.safetensors", dir);
        fp = fopen(p, "wb"); if (!fp) return 0; fwrite(data + cl, 1, size - cl, fp); fclose(fp);
        Adapter ad;
        if (peft_import(&ad, dir, 2, 2, err, sizeof(err)) == 0) adapter_free(&ad);
        remove(p);                          // no directory per process left in /tmp
        snprintf(p, sizeof(p), "%s/adapter_config.json", dir);
        remove(p);
        rmdir(dir);
    } else {                                // adapter file / mask file (through a file)
        char path[64];
        snprintf(path, sizeof(path), "/tmp/fuzz_adapter_%d.bin", (int)getpid());
        FILE *fp = fopen(path, "wb");
        if (!fp) return 0;
        fwrite(data, 1, size, fp);
        fclose(fp);
        Adapter ad;
        if (which == 2) {
            char *cfg = NULL;
            if (adapter_load_ex(&ad, path, 0, 0, &cfg, err, sizeof(err)) == 0) { free(cfg); adapter_free(&ad); }
        } else {
            AdapterConfig c = {.kind = ADAPTER_LORI, .rank = 2, .alpha = 1, .targets = 15};
            if (adapter_create(&ad, &c, 2, 4, err, sizeof(err)) == 0) {
                uint8_t *m = NULL;
                if (mask_load(&ad, path, &m, err, sizeof(err)) == 0) free(m);
                adapter_free(&ad);
            }
        }
        remove(path);
    }
    return 0;
}
