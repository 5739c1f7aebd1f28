# cuda/cuda.mk — the GPU trainers. Included by the Makefile (`-include cuda/cuda.mk`) or alone:
#   make -f cuda/cuda.mk cuda             every CUDA target (skipped, with a message, without nvcc)
#   make train_loracu GPU_ARCH=sm_80      one of them, for another GPU (default sm_90: H100/H200)
#   ./test_gpt2cu                         the GPU tests (needs a GPU); dev/bench/gpu.sh the benchmark
#   make -f cuda/cuda.mk gpu_kernels_bench  each hand-written kernel's variants, checked and timed
#   make cuda USE_CUDNN=1                 attention on cuDNN's fused flash attention (bf16), as llm.c's
#       USE_CUDNN=1. Needs cudnn-frontend's headers (~/cudnn-frontend/include, ./cudnn-frontend/include,
#       or CUDNN_FRONTEND_PATH=) and cuDNN 9 (CUDNN_PATH=, a folder with include/ and lib/; by
#       default PyTorch's wheel's, nvidia.cudnn). Objects of the two builds live apart (build/cuda/plain,
#       build/cuda/cudnn); switching relinks the binaries.
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

# Data parallel (cuda/nccl.h: one process per GPU under mpirun, NCCL's all-reduce): built when NCCL
# and mpicc are found. NCCL from NCCL_HOME (include/nccl.h, lib/libnccl.so or .so.2), else from
# PyTorch's wheel (nvidia-nccl-*, which has only libnccl.so.2); NO_NCCL=1 builds without it.
CUDA_HOST_CC := $(CC)
ifneq ($(NVCC),)
ifneq ($(NO_NCCL),1)
NCCL_HOME ?= $(shell python3 -c "import nvidia.nccl as m; print(m.__path__[0])" 2>/dev/null)
NCCL_LIB := $(firstword $(wildcard $(NCCL_HOME)/lib/libnccl.so $(NCCL_HOME)/lib/libnccl.so.2))
CUDA_MPICC := $(shell command -v mpicc 2>/dev/null)
ifneq ($(and $(wildcard $(NCCL_HOME)/include/nccl.h),$(NCCL_LIB),$(CUDA_MPICC)),)
  CUDA_HOST_CC := $(CUDA_MPICC)
  CUDA_HOST_CFLAGS += -DUSE_MPI -DUSE_NCCL -I$(NCCL_HOME)/include -I$(CUDA_HOME)/include
  # -lnccl through build/nccl/libnccl.so, a link to the versioned file; found at run time by the rpath
  CUDA_LDLIBS += -Lbuild/nccl -lnccl -Xlinker -rpath,$(patsubst %/,%,$(dir $(NCCL_LIB))) \
                 $(filter -L% -l%,$(shell $(CUDA_MPICC) --showme:link 2>/dev/null))
  CUDA_NCCL_LINK := build/nccl/libnccl.so
endif
endif
endif

CUDA_BINS := train_gpt2cu train_loracu train_loricu train_ploracu test_gpt2cu gpu_kernels_bench comparecu
CUDA_DEPS := $(wildcard cuda/*.cuh cuda/*.h)
CUDA_HOST_DEPS := cuda/host.c cuda/gpt2_gpu.h cuda/host_api.h cuda/nccl.h $(wildcard llmc/*.h lora/*.h data/*.h kernels/*.h)

# cuDNN attention (USE_CUDNN=1)
ifeq ($(USE_CUDNN),1)
  CUDA_FLAVOUR := cudnn
  CUDNN_FRONTEND_PATH ?= $(firstword $(wildcard $(HOME)/cudnn-frontend/include cudnn-frontend/include))
  CUDNN_PATH ?= $(shell python3 -c "import nvidia.cudnn as m; print(m.__path__[0])" 2>/dev/null)
  ifeq ($(wildcard $(CUDNN_FRONTEND_PATH)/cudnn_frontend.h),)
    $(error USE_CUDNN=1: cudnn-frontend not found (git clone https://github.com/NVIDIA/cudnn-frontend ~/cudnn-frontend, or CUDNN_FRONTEND_PATH=.../include))
  endif
  ifeq ($(wildcard $(CUDNN_PATH)/include/cudnn.h),)
    $(error USE_CUDNN=1: cuDNN not found (CUDNN_PATH=a folder with include/cudnn.h and lib/libcudnn.so.9))
  endif
  CUDNN_LIB := $(firstword $(wildcard $(CUDNN_PATH)/lib/libcudnn.so $(CUDNN_PATH)/lib/libcudnn.so.9 $(CUDNN_PATH)/lib64/libcudnn.so))
  CUDA_NVCCFLAGS += -DUSE_CUDNN -isystem $(CUDNN_FRONTEND_PATH) -isystem $(CUDNN_PATH)/include
  CUDA_LDLIBS += -L$(dir $(CUDNN_LIB)) -l:$(notdir $(CUDNN_LIB)) -Xlinker -rpath,$(abspath $(dir $(CUDNN_LIB))) -lnvrtc -lcuda
  CUDA_EXTRA_OBJS := build/cuda/cudnn/cudnn_att.o
else
  CUDA_FLAVOUR := plain
  CUDA_EXTRA_OBJS :=
endif
CUDA_OBJ := build/cuda/$(CUDA_FLAVOUR)
# which build the binaries were linked from: a switch makes this file new, so they relink
CUDA_STAMP := build/cuda/linked_$(CUDA_FLAVOUR)

.PHONY: cuda cuda-clean

ifeq ($(NVCC),)
cuda:
	@echo "nvcc not found (not on PATH, no /usr/local/cuda/bin/nvcc): skipping the CUDA trainers"
$(CUDA_BINS):
	@echo "error: nvcc not found (not on PATH, no /usr/local/cuda/bin/nvcc): cannot build $@" >&2; exit 1
else
cuda: $(CUDA_BINS)

$(CUDA_STAMP):
	@mkdir -p build/cuda
	@rm -f build/cuda/linked_*
	@touch $@

$(CUDA_OBJ)/train_gpt2.o: train_gpt2.cu $(CUDA_DEPS)
	@mkdir -p $(CUDA_OBJ)
	$(NVCC) $(CUDA_NVCCFLAGS) -c -o $@ $<

build/cuda/cudnn/cudnn_att.o: cuda/cudnn_att.cu cuda/cudnn_att.h cuda/common.cuh
	@mkdir -p build/cuda/cudnn
	$(NVCC) $(CUDA_NVCCFLAGS) -c -o $@ $<

# the CPU trainer's run_training (train_gpt2.c without main): test_gpt2.cu's reference, via cuda/host.c
build/cuda/train_gpt2_cpu.o: train_gpt2.c $(wildcard llmc/*.h lora/*.h data/*.h kernels/*.h)
	@mkdir -p build/cuda
	$(CUDA_HOST_CC) $(CUDA_HOST_CFLAGS) -DNO_MAIN -c -o $@ train_gpt2.c

build/nccl/libnccl.so:
	@mkdir -p build/nccl && ln -sf $(NCCL_LIB) $@

build/cuda/host_%.o: $(CUDA_HOST_DEPS) | $(CUDA_NCCL_LINK)
	@mkdir -p build/cuda
	$(CUDA_HOST_CC) $(CUDA_HOST_CFLAGS) -DDEFAULT_ADAPTER=\"$*\" -c -o $@ cuda/host.c

CUDA_LINK = $(NVCC) -arch=$(GPU_ARCH) -o $@ $(filter %.o,$^) $(CUDA_LDLIBS)
train_gpt2cu: $(CUDA_OBJ)/train_gpt2.o $(CUDA_EXTRA_OBJS) build/cuda/host_none.o build/cuda/train_gpt2_cpu.o $(CUDA_STAMP)
	$(CUDA_LINK)
train_loracu: $(CUDA_OBJ)/train_gpt2.o $(CUDA_EXTRA_OBJS) build/cuda/host_lora.o build/cuda/train_gpt2_cpu.o $(CUDA_STAMP)
	$(CUDA_LINK)
train_loricu: $(CUDA_OBJ)/train_gpt2.o $(CUDA_EXTRA_OBJS) build/cuda/host_lori.o build/cuda/train_gpt2_cpu.o $(CUDA_STAMP)
	$(CUDA_LINK)
train_ploracu: $(CUDA_OBJ)/train_gpt2.o $(CUDA_EXTRA_OBJS) build/cuda/host_plora.o build/cuda/train_gpt2_cpu.o $(CUDA_STAMP)
	$(CUDA_LINK)

# the NCCL path alone, exactly (tests/test_nccl.c; mpirun -np N ./test_nccl): only where NCCL was found
test_nccl: tests/test_nccl.c cuda/nccl.h llmc/dist.h | $(CUDA_NCCL_LINK)
	@test -n "$(CUDA_NCCL_LINK)" || { echo "error: test_nccl needs NCCL and mpicc (NCCL_HOME)" >&2; exit 1; }
	$(CUDA_HOST_CC) $(CUDA_HOST_CFLAGS) -o $@ $< $(if $(wildcard $(CUDA_HOME)/lib64),-L$(CUDA_HOME)/lib64) -lcudart \
	    -Lbuild/nccl -lnccl -Wl,-rpath,$(patsubst %/,%,$(dir $(NCCL_LIB)))
# the comparison through the GPU trainer: lora/compare.c with cuda/host.c's backend (-DCOMPARE_GPU),
# linked with the GPU model (train_gpt2.cu without its main, -DTESTING)
$(CUDA_OBJ)/train_gpt2_nomain.o: train_gpt2.cu $(CUDA_DEPS)
	@mkdir -p $(CUDA_OBJ)
	$(NVCC) $(CUDA_NVCCFLAGS) -DTESTING -c -o $@ $<
build/cuda/compare_host.o: lora/compare.c $(wildcard llmc/*.h lora/*.h data/*.h kernels/*.h)
	@mkdir -p build/cuda
	$(CUDA_HOST_CC) $(CUDA_HOST_CFLAGS) -DCOMPARE_GPU -c -o $@ lora/compare.c
comparecu: $(CUDA_OBJ)/train_gpt2_nomain.o $(CUDA_EXTRA_OBJS) build/cuda/compare_host.o build/cuda/host_none.o build/cuda/train_gpt2_cpu.o $(CUDA_STAMP)
	$(CUDA_LINK)

gpu_kernels_bench: dev/bench/gpu_kernels.cu $(CUDA_DEPS)
	$(NVCC) $(CUDA_NVCCFLAGS) -o $@ $< $(CUDA_LDLIBS)

$(CUDA_OBJ)/test_gpt2.o: test_gpt2.cu train_gpt2.cu $(CUDA_DEPS)
	@mkdir -p $(CUDA_OBJ)
	$(NVCC) $(CUDA_NVCCFLAGS) -c -o $@ $<
test_gpt2cu: $(CUDA_OBJ)/test_gpt2.o $(CUDA_EXTRA_OBJS) build/cuda/host_none.o build/cuda/train_gpt2_cpu.o $(CUDA_STAMP)
	$(CUDA_LINK)
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
