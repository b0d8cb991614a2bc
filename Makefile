# Puente — build, run and test. See README.md.
#   make deps   install missing Debian packages (needs root or sudo)
#   make        build everything into build/
#   make run    private PostgreSQL under var/ + demo keys + broker in the foreground
#   make test   unit + integration tests against a throwaway PostgreSQL
SHELL := /bin/bash
.DEFAULT_GOAL := all

BUILD   ?= build
CC      ?= cc
SAN     ?=
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

.PHONY: all deps run test unit-test integration-test clean format compile_commands
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
	@tests/run.sh $(UNIT_BIN) -- $(ITEST_BIN)

format:
	clang-format -i $(PROTO_SRC) $(wildcard proto/*.h broker/*.[ch] adapters/*/*.[ch] tests/*/*.[ch])

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
