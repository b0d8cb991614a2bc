# Puente — build, run and test. See README.md.
#   make deps   install missing Debian packages (needs root or sudo)
#   make        build everything into build/
#   make run    private PostgreSQL under var/ + demo keys + broker in the foreground
#   make test   unit + integration tests against a throwaway PostgreSQL
SHELL := /bin/bash
.DEFAULT_GOAL := all

SAN     ?=
# Sanitizer builds (make test SAN=address,undefined) go to their own tree so that
# their objects never mix with the plain ones.
ifneq ($(SAN),)
BUILD   ?= build/san
endif
BUILD   ?= build
CC      ?= cc
DEBIAN_PACKAGES := build-essential pkg-config libzmq3-dev libprotobuf-c-dev protobuf-c-compiler \
                   libpq-dev libssl-dev postgresql libcunit1-dev libjansson-dev

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
               -Wno-missing-field-initializers -fno-strict-aliasing -pthread
PG_INC  := $(shell pg_config --includedir 2>/dev/null)
CPPFLAGS := -I$(BUILD)/gen -Iproto -Ibroker -Iadapters/sdk -Itests/lib $(if $(PG_INC),-I$(PG_INC))
LDLIBS  := -lzmq -lprotobuf-c -lpq -lssl -lcrypto -ljansson -lcunit -pthread
ifneq ($(SAN),)
CFLAGS_BASE += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SAN)
endif
CFLAGS ?=
ALL_CFLAGS := $(CFLAGS_BASE) $(CFLAGS)

PROTOS     := $(wildcard proto/*.proto)
GEN_C      := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
GEN_H      := $(GEN_C:.c=.h)
PROTO_SRC  := $(wildcard proto/*.c)
BROKER_SRC := $(filter-out broker/main.c,$(wildcard broker/*.c))
SDK_SRC    := $(wildcard adapters/sdk/*.c)
CLI_SRC    := $(wildcard adapters/cli/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
ITEST_SRC  := $(wildcard tests/integration/itest_*.c)
TLIB_SRC   := $(wildcard tests/lib/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
PROTO_OBJ  := $(call obj,$(PROTO_SRC)) $(patsubst %.c,%.o,$(GEN_C))
BROKER_OBJ := $(call obj,$(BROKER_SRC))
SDK_OBJ    := $(call obj,$(SDK_SRC))
CLI_OBJ    := $(call obj,$(CLI_SRC))
TLIB_OBJ   := $(call obj,$(TLIB_SRC))
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
ITEST_BIN  := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(ITEST_SRC))

LIB_PROTO  := $(BUILD)/libptproto.a
LIB_BROKER := $(BUILD)/libptbroker.a
LIB_SDK    := $(BUILD)/libpuente.a

.PHONY: all deps run test unit-test integration-test clean format compile_commands \
        valgrind fuzz fuzz-long fuzz-build fuzz-seeds fuzz-lib
all: $(BUILD)/puente-broker $(BUILD)/puente $(UNIT_BIN) $(ITEST_BIN)

deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing missing Debian packages:" $$missing; \
	  SUDO=$$( [ $$(id -u) -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=proto --c_out=$(BUILD)/gen $<

# Generated code: built with its own flags (it is not ours to make -Wextra clean).
$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c $(GEN_H)
	$(CC) $(filter-out -Werror -Wshadow -Wstrict-prototypes,$(ALL_CFLAGS)) $(CPPFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.c $(GEN_H) $(wildcard proto/*.h broker/*.h adapters/sdk/*.h tests/lib/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CPPFLAGS) -MMD -c $< -o $@

$(LIB_PROTO): $(PROTO_OBJ)
	@rm -f $@; ar rcs $@ $^
$(LIB_BROKER): $(BROKER_OBJ)
	@rm -f $@; ar rcs $@ $^
$(LIB_SDK): $(SDK_OBJ)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/puente-broker: $(call obj,broker/main.c) $(LIB_BROKER) $(LIB_PROTO)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/puente: $(CLI_OBJ) $(LIB_SDK) $(LIB_PROTO)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
# Unit tests link only the libraries they test, so one module's work in progress
# does not break another's tests: test_broker_* and test_store* link the broker
# library, test_sdk_* the SDK, the rest only libptproto. The integration harness
# (tests/lib) goes into integration tests only.
unit_libs = $(if $(filter broker_% store%,$(1)),$(LIB_BROKER))$(if $(filter sdk_%,$(1)), $(LIB_SDK))
.SECONDEXPANSION:
$(BUILD)/tests/test_%: $(BUILD)/obj/tests/unit/test_%.o $$(call unit_libs,$$*) $(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/tests/itest_%: $(BUILD)/obj/tests/integration/itest_%.o $(TLIB_OBJ) $(LIB_SDK) $(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

run: deps all
	@deploy/run.sh

test: deps all
	@BUILD=$(BUILD) tests/run.sh $(UNIT_BIN) -- $(ITEST_BIN)

# ---- fuzzing, sanitizers, valgrind (see README "Fuzzing and sanitizers") ------------
# Unit tests under valgrind memcheck (plain build; valgrind and ASan do not mix).
valgrind: deps all
	@BUILD=$(BUILD) UNIT_ONLY=1 VALGRIND=1 tests/run.sh $(UNIT_BIN) --

# libFuzzer harnesses tests/fuzz/fuzz_*.c, built with clang into build/fuzz against a
# libptproto compiled there with -fsanitize=fuzzer-no-link,address,undefined (by this
# Makefile's own rules, BUILD=build/fuzz). Each runs FUZZ_SECONDS on a copy of its
# committed corpus tests/fuzz/corpus/<name>/; crashes land in build/fuzz/artifacts/.
FUZZ_SECONDS ?= 30
FUZZ_BUILD   := build/fuzz
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRC))
FUZZ_FLAGS   := -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
                -Wno-missing-field-initializers -fno-omit-frame-pointer -fno-sanitize-recover=all \
                -I$(FUZZ_BUILD)/gen -Iproto
FUZZ_LIBS    := -lzmq -lprotobuf-c -lssl -lcrypto -ljansson -pthread

fuzz-lib:
	@$(MAKE) -s --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang SAN=fuzzer-no-link,address,undefined \
	  $(FUZZ_BUILD)/libptproto.a $(patsubst $(BUILD)/gen/%,$(FUZZ_BUILD)/gen/%,$(GEN_H))
$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_keys.h fuzz-lib
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_BUILD)/libptproto.a $(FUZZ_LIBS)
fuzz-build: $(FUZZ_BIN)
fuzz: fuzz-build
	@tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BIN)
fuzz-long:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=600
# Regenerates the committed seed corpora (envelopes carry fresh ids and times).
fuzz-seeds: $(LIB_PROTO)
	$(CC) $(ALL_CFLAGS) $(CPPFLAGS) -o $(BUILD)/make_seeds tests/fuzz/make_seeds.c $(LIB_PROTO) $(LDLIBS)
	$(BUILD)/make_seeds tests/fuzz/corpus
# ---- end fuzzing, sanitizers, valgrind ------------------------------------------------

format:
	clang-format -i $(PROTO_SRC) $(wildcard proto/*.h broker/*.[ch] adapters/*/*.[ch] tests/*/*.[ch])

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# bench ---------------------------------------------------------------------------------
# `make bench` (BENCH_QUICK=1: a few seconds per mode), `make bench-compare` (RabbitMQ).
# See bench/run.sh and README "Performance". Figures go to bench/results/.
BENCH_QUICK ?=
$(BUILD)/bench/loadgen: $(call obj,bench/loadgen.c) $(TLIB_OBJ) $(LIB_BROKER) $(LIB_SDK) $(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lm
$(BUILD)/bench/rabbit: bench/rabbit.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< -lrabbitmq -lm
.PHONY: bench bench-compare
bench: $(BUILD)/puente-broker $(BUILD)/bench/loadgen
	@BENCH_QUICK=$(BENCH_QUICK) bench/run.sh
bench-compare:
	@BENCH_QUICK=$(BENCH_QUICK) bench/compare.sh
# ---- end bench ---------------------------------------------------------------------------
