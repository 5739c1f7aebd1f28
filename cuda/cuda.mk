# cuda/cuda.mk — the GPU trainers. Included by the Makefile (`-include cuda/cuda.mk`) or alone:
#   make -f cuda/cuda.mk cuda             every CUDA target (skipped, with a message, without nvcc)
#   make train_loracu GPU_ARCH=sm_80      one of them, for another GPU (default sm_90: H100/H200)
#   ./test_gpt2cu                         the GPU tests (needs a GPU); dev/bench/gpu.sh the benchmark
#   make -f cuda/cuda.mk gpu_kernels_bench  each hand-written kernel's variants, checked and timed
# Targets: train_gpt2cu train_loracu train_loricu train_ploracu (the four default adapters, as the
# CPU trainers), test_gpt2cu. The GPU model (train_gpt2.cu) is compiled once by nvcc; the host side
# (cuda/host.c, which compiles train_gpt2.c's host code) once per default adapter by the C compiler.
# Run from the repository root.

CUDA_PREV_GOAL := $(.DEFAULT_GOAL)

NVCC ?= $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
GPU_ARCH ?= sm_90
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
NVCCFLAGS ?= -O3
CUDA_NVCCFLAGS = $(NVCCFLAGS) -std=c++17 -arch=$(GPU_ARCH) -I. -Xcompiler -Wall,-Wextra,-Wno-unused-parameter
CUDA_LDLIBS = $(if $(wildcard $(CUDA_HOME)/lib64),-L$(CUDA_HOME)/lib64) -lcublasLt -lm
CUDA_HOST_CFLAGS = -O3 -std=gnu11 -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-unused-function -Wno-format-truncation
CUDA_OMP := $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo yes)
ifeq ($(CUDA_OMP),yes)
  CUDA_HOST_CFLAGS += -fopenmp -DOMP
  CUDA_LDLIBS += -lgomp
endif

CUDA_BINS := train_gpt2cu train_loracu train_loricu train_ploracu test_gpt2cu gpu_kernels_bench
CUDA_DEPS := $(wildcard cuda/*.cuh cuda/*.h)
CUDA_HOST_DEPS := cuda/host.c cuda/gpt2_gpu.h cuda/host_api.h $(wildcard llmc/*.h lora/*.h data/*.h kernels/*.h)

.PHONY: cuda cuda-clean

ifeq ($(NVCC),)
cuda:
	@echo "nvcc not found (not on PATH, no /usr/local/cuda/bin/nvcc): skipping the CUDA trainers"
$(CUDA_BINS):
	@echo "error: nvcc not found (not on PATH, no /usr/local/cuda/bin/nvcc): cannot build $@" >&2; exit 1
else
cuda: $(CUDA_BINS)

build/cuda/train_gpt2.o: train_gpt2.cu $(CUDA_DEPS)
	@mkdir -p build/cuda
	$(NVCC) $(CUDA_NVCCFLAGS) -c -o $@ $<

# the CPU trainer's run_training (train_gpt2.c without main): test_gpt2.cu's reference, via cuda/host.c
build/cuda/train_gpt2_cpu.o: train_gpt2.c $(wildcard llmc/*.h lora/*.h data/*.h kernels/*.h)
	@mkdir -p build/cuda
	$(CC) $(CUDA_HOST_CFLAGS) -DNO_MAIN -c -o $@ train_gpt2.c

build/cuda/host_%.o: $(CUDA_HOST_DEPS)
	@mkdir -p build/cuda
	$(CC) $(CUDA_HOST_CFLAGS) -DDEFAULT_ADAPTER=\"$*\" -c -o $@ cuda/host.c

train_gpt2cu: build/cuda/train_gpt2.o build/cuda/host_none.o build/cuda/train_gpt2_cpu.o
	$(NVCC) -arch=$(GPU_ARCH) -o $@ $^ $(CUDA_LDLIBS)
train_loracu: build/cuda/train_gpt2.o build/cuda/host_lora.o build/cuda/train_gpt2_cpu.o
	$(NVCC) -arch=$(GPU_ARCH) -o $@ $^ $(CUDA_LDLIBS)
train_loricu: build/cuda/train_gpt2.o build/cuda/host_lori.o build/cuda/train_gpt2_cpu.o
	$(NVCC) -arch=$(GPU_ARCH) -o $@ $^ $(CUDA_LDLIBS)
train_ploracu: build/cuda/train_gpt2.o build/cuda/host_plora.o build/cuda/train_gpt2_cpu.o
	$(NVCC) -arch=$(GPU_ARCH) -o $@ $^ $(CUDA_LDLIBS)

gpu_kernels_bench: dev/bench/gpu_kernels.cu $(CUDA_DEPS)
	$(NVCC) $(CUDA_NVCCFLAGS) -o $@ $< $(CUDA_LDLIBS)

test_gpt2cu: test_gpt2.cu train_gpt2.cu $(CUDA_DEPS) build/cuda/host_none.o build/cuda/train_gpt2_cpu.o
	$(NVCC) $(CUDA_NVCCFLAGS) -o $@ test_gpt2.cu build/cuda/host_none.o build/cuda/train_gpt2_cpu.o $(CUDA_LDLIBS)
endif

cuda-clean:
	rm -f $(CUDA_BINS)
	rm -rf build/cuda

# do not take over the default goal of the Makefile that includes this one
ifeq ($(firstword $(MAKEFILE_LIST)),cuda/cuda.mk)
.DEFAULT_GOAL := cuda
else
.DEFAULT_GOAL := $(CUDA_PREV_GOAL)
endif
