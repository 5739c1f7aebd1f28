# GPT-2 + LoRA / LoRI / PeriodicLoRA trainer, in the spirit of llm.c.
#   make train_lori && ./train_lori     the main job (see README.md)
#   make test                           the test suite (installs libcheck if it can)
# The trainers are one translation unit each (train_gpt2.c and the headers of llmc/, lora/, data/,
# kernels/); ./compare links train_gpt2.c's CPU run_training as an object (build/train_gpt2_lib.o).

CC      ?= gcc
CFLAGS  ?= -O3
CFLAGS  += -std=gnu11 -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-unused-function -Wno-format-truncation
LDLIBS  += -lm
HEADERS := $(wildcard llmc/*.h lora/*.h data/*.h kernels/*.h)

# OpenMP: used when the compiler supports it; everything builds (single-threaded) without it.
OPENMP_OK := $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo yes)
ifeq ($(NO_OMP),1)
  OPENMP_OK :=
endif
ifeq ($(OPENMP_OK),yes)
  CFLAGS += -fopenmp -DOMP
else
  $(info OpenMP not found: building single-threaded)
endif

# MPI (data-parallel training, llmc/dist.h): the trainers are built with mpicc and -DUSE_MPI when
# it is found (Debian: libopenmpi-dev openmpi-bin); without it they build and run as one process.
# NO_MPI=1 builds without it. `mpirun -np N ./train_lora ...` trains on N ranks (README).
MPICC   ?= mpicc
MPI_OK  := $(shell command -v $(MPICC) >/dev/null 2>&1 && echo 'int main(void){return 0;}' | $(MPICC) -x c - -o /dev/null 2>/dev/null && echo yes)
ifeq ($(NO_MPI),1)
  MPI_OK :=
endif
ifeq ($(MPI_OK),yes)
  TRAIN_CC := $(MPICC)
  TRAIN_CFLAGS := $(CFLAGS) -DUSE_MPI
else
  TRAIN_CC := $(CC)
  TRAIN_CFLAGS := $(CFLAGS)
endif
# the trainers are rebuilt when MPI comes or goes (the stamp's name holds the choice)
MPI_STAMP := build/mpi-$(if $(MPI_OK),yes,no).stamp

# libcheck (Debian package `check`), only for the tests.
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   = $(shell pkg-config --libs check 2>/dev/null)

TRAINERS := train_gpt2 train_lora train_lori train_plora
TESTS    := test_gpt2 test_train test_readers test_kernels test_tasks test_adapter_io test_merge test_compare \
            test_bpe test_hf test_dist
TOOLS    := make_tasks merge_adapters compare prepare_data
# shell tests (tests/*.sh), run after the binaries by dev/run_tests.sh
SCRIPT_TESTS := tests/test_prepare_data.sh

.PHONY: all test deps clean npm-ref
all: $(TRAINERS) $(TOOLS)

$(MPI_STAMP):
	@mkdir -p build && rm -f build/mpi-*.stamp && touch $@

train_gpt2: train_gpt2.c $(HEADERS) $(MPI_STAMP)
	$(TRAIN_CC) $(TRAIN_CFLAGS) -o $@ $< $(LDLIBS)
train_lora: train_gpt2.c $(HEADERS) $(MPI_STAMP)
	$(TRAIN_CC) $(TRAIN_CFLAGS) -DDEFAULT_ADAPTER=\"lora\" -o $@ $< $(LDLIBS)
train_lori: train_gpt2.c $(HEADERS) $(MPI_STAMP)
	$(TRAIN_CC) $(TRAIN_CFLAGS) -DDEFAULT_ADAPTER=\"lori\" -o $@ $< $(LDLIBS)
train_plora: train_gpt2.c $(HEADERS) $(MPI_STAMP)
	$(TRAIN_CC) $(TRAIN_CFLAGS) -DDEFAULT_ADAPTER=\"plora\" -o $@ $< $(LDLIBS)

merge_adapters: lora/merge_adapters.c $(HEADERS)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)

# the comparison report: every variant on every task, merging, continual learning (dev/COMPARE.md),
# its trainings on the CPU trainer's run_training (train_gpt2.c without main)
build/train_gpt2_lib.o: train_gpt2.c $(HEADERS)
	@mkdir -p build
	$(CC) $(CFLAGS) -DNO_MAIN -c -o $@ $<
compare: lora/compare.c build/train_gpt2_lib.o $(HEADERS)
	$(CC) $(CFLAGS) -o $@ $< build/train_gpt2_lib.o $(LDLIBS)

make_tasks: data/make_tasks.c $(HEADERS)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)

# text, TinyShakespeare or prompt/answer JSONL -> llm.c shards, with GPT-2's BPE (data/bpe.h) or bytes
prepare_data: data/prepare_data.c $(HEADERS)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)

# ---- tests ----
deps:
	@sh dev/install_deps.sh

# test_gpt2.c at the root (llm.c's pair with train_gpt2.c); the other suites in tests/
test_gpt2: test_gpt2.c train_gpt2.c $(HEADERS) | deps
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -I. -o $@ $< $(CHECK_LIBS) $(LDLIBS)
test_%: tests/test_%.c train_gpt2.c $(HEADERS) tests/test_util.h | deps
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -I. -o $@ $< $(CHECK_LIBS) $(LDLIBS)

test_merge: merge_adapters
test_hf: train_gpt2 train_lora merge_adapters prepare_data
test_compare: lora/compare.c
# data parallel: the trainer under mpirun, 2 ranks against 1 process (needs MPI: dev/install_deps.sh)
test_dist: train_lora tests/dist_compare.h
# the same comparison as a tool, for tests/test_dist_gpu.sh on a GPU machine
dist_compare: tests/dist_compare.c tests/dist_compare.h train_gpt2.c $(HEADERS)
	$(CC) $(CFLAGS) -I. -o $@ $< $(LDLIBS)
test_train: merge_adapters

# the reference GPT-2 encoder of test_bpe (npm's gpt-3-encoder) in build/npm; never fails
npm-ref:
	@sh dev/install_npm_ref.sh

test: deps
	@$(MAKE) --no-print-directory $(TESTS) $(TOOLS) npm-ref
	@sh dev/run_tests.sh $(TESTS) $(SCRIPT_TESTS)
	@echo "== sanitizers: test_gpt2, test_train, test_readers with ASan + UBSan (build/asan/)"
	@$(MAKE) --no-print-directory test-sanitize
	@echo "== fuzzing: every file reader, $(TEST_FUZZ_SECONDS) s each (make fuzz for longer)"
	@if command -v $(FUZZ_CC) >/dev/null 2>&1; then $(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS); \
	  else echo "note: clang not found: fuzzing skipped (apt-get install clang libclang-rt-dev)"; fi
	@echo "== CUDA targets: compile only (they run on a GPU machine: ./test_gpt2cu)"
	@$(MAKE) --no-print-directory cuda

# fuzzing and the sanitizer build of the tests (dev/fuzz/fuzz.mk)
TEST_FUZZ_SECONDS ?= 10
-include dev/fuzz/fuzz.mk

# the GPU trainers (train_gpt2cu, train_loracu, train_loricu, train_ploracu, test_gpt2cu)
-include cuda/cuda.mk

clean:
	rm -f $(TRAINERS) $(TESTS) $(TOOLS) $(CUDA_BINS) dist_compare test_nccl
	rm -rf build
