# dev/fuzz/fuzz.mk — fuzzing and the sanitizer build of the tests; included by the Makefile.
#   make fuzz            builds every libFuzzer harness (dev/fuzz/fuzz_*.c) into build/fuzz/ and runs each
#                        FUZZ_SECONDS (30) on a copy of its seed corpus; prints the inputs tried and the
#                        crashes per reader; fails on a crash (inputs kept in build/fuzz/crashes/NAME/)
#   make fuzz-seeds      regenerates dev/fuzz/corpus/ and dev/fuzz/args.dict from the project's writers
#   make test-sanitize   test_gpt2, test_train, test_readers built with ASan + UBSan in build/asan/, and run
#   make test_readers    the replay of the seed corpora and dev/fuzz/regressions/ through every reader
# Needs clang (FUZZ_CC) with its libFuzzer runtime for `make fuzz` (Debian: clang, libclang-rt-dev).

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_JOBS    ?= 2
FUZZ_NAMES   := checkpoint shard tokenizer state args peft bpe hf
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
                -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-unused-function \
                -Wno-unknown-warning-option -Wno-target-clones-mixed-specifiers
FUZZ_DEPS    := train_gpt2.c $(wildcard llmc/*.h lora/*.h data/*.h kernels/*.h) dev/fuzz/fuzz_common.h
FUZZ_HARNESS := $(wildcard dev/fuzz/fuzz_*.c)
SAN_FLAGS    := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1
SAN_TESTS    := test_gpt2 test_train test_readers
SAN_ENV      := UBSAN_OPTIONS=print_stacktrace=1 CK_TIMEOUT_MULTIPLIER=4
# Leaks are errors (each test's child process reports them at its exit), except in the binaries
# listed here, whose test code does not free what it allocates (the trainer's own code is leak-free).
SAN_NO_LEAK_CHECK ?= test_gpt2

.PHONY: fuzz fuzz-build fuzz-seeds test-sanitize

build/fuzz/fuzz_%: dev/fuzz/fuzz_%.c $(FUZZ_DEPS)
	@mkdir -p build/fuzz
	@command -v $(FUZZ_CC) >/dev/null || { echo "error: make fuzz needs clang with libFuzzer (FUZZ_CC=$(FUZZ_CC) not found)" >&2; exit 1; }
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< -lm

fuzz-build: $(addprefix build/fuzz/fuzz_,$(FUZZ_NAMES))

fuzz: fuzz-build
	@sh dev/fuzz/run_fuzz.sh $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_NAMES)

build/make_seeds: dev/fuzz/make_seeds.c $(FUZZ_HARNESS) $(FUZZ_DEPS)
	@mkdir -p build
	$(CC) $(CFLAGS) -I. -o $@ $< $(LDLIBS)

fuzz-seeds: build/make_seeds
	./build/make_seeds

test_readers: tests/test_readers.c $(FUZZ_HARNESS) $(FUZZ_DEPS) | deps
	$(CC) $(CFLAGS) -I. $(CHECK_CFLAGS) -o $@ $< $(CHECK_LIBS) $(LDLIBS)

build/asan/test_gpt2: test_gpt2.c $(FUZZ_HARNESS) $(FUZZ_DEPS) | deps
	@mkdir -p build/asan
	$(CC) $(CFLAGS) $(SAN_FLAGS) -I. $(CHECK_CFLAGS) -o $@ $< $(CHECK_LIBS) $(LDLIBS)
build/asan/%: tests/%.c $(FUZZ_HARNESS) $(FUZZ_DEPS) | deps
	@mkdir -p build/asan
	$(CC) $(CFLAGS) $(SAN_FLAGS) -I. $(CHECK_CFLAGS) -o $@ $< $(CHECK_LIBS) $(LDLIBS)

test-sanitize: $(addprefix build/asan/,$(SAN_TESTS))
	@status=0; for t in $(SAN_TESTS); do \
	  leaks=1; case " $(SAN_NO_LEAK_CHECK) " in *" $$t "*) leaks=0;; esac; \
	  echo "== build/asan/$$t (ASan + UBSan, leak check $$leaks)"; \
	  $(SAN_ENV) ASAN_OPTIONS=detect_leaks=$$leaks:strict_string_checks=1 ./build/asan/$$t || status=1; \
	done; exit $$status
