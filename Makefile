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
                   libpq-dev libssl-dev postgresql libcunit1-dev libjansson-dev \
                   libmicrohttpd-dev libcurl4-openssl-dev libsqlite3-dev libinih-dev

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
               -Wno-missing-field-initializers -fno-strict-aliasing -fPIC -pthread
PG_INC  := $(shell pg_config --includedir 2>/dev/null)
CPPFLAGS := -I$(BUILD)/gen -Iproto -Ibroker -Iadapters/sdk -Itests/lib $(if $(PG_INC),-I$(PG_INC))
LDLIBS  := -lzmq -lprotobuf-c -lpq -lssl -lcrypto -ljansson -lcunit -lsqlite3 -linih -pthread
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
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lmicrohttpd
# broker/metrics.c serves /metrics over libmicrohttpd; its test scrapes with libcurl.
$(BUILD)/tests/test_broker_metrics: LDLIBS += -lmicrohttpd -lcurl
$(BUILD)/puente: $(CLI_OBJ) $(LIB_SDK) $(LIB_PROTO)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
# Unit tests link only the libraries they test, so one module's work in progress
# does not break another's tests: test_broker_* and test_store* link the broker
# library, test_sdk_* the SDK, the rest only libptproto. The integration harness
# (tests/lib) goes into integration tests only.
unit_libs = $(if $(filter broker_% store%,$(1)),$(LIB_BROKER))$(if $(filter sdk_%,$(1)), $(LIB_SDK))$(if $(filter bridge_%,$(1)), $(LIB_BRIDGE) $(LIB_SDK))$(if $(filter primero_%,$(1)), $(LIB_PRIMERO))
.SECONDEXPANSION:
$(BUILD)/tests/test_%: $(BUILD)/obj/tests/unit/test_%.o $$(call unit_libs,$$*) $(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/tests/itest_%: $(BUILD)/obj/tests/integration/itest_%.o $(TLIB_OBJ) $(LIB_SDK) $(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
# The harness scrapes /metrics and /readyz with libcurl (pt_harness_http_get).
$(BUILD)/tests/itest_%: LDLIBS += -lcurl
# adapters/cli/cli_progress.c (progress line of long operations) is shared by the CLI,
# the bench programs and its unit test; it needs only libc.
CPPFLAGS += -Iadapters/cli
$(BUILD)/tests/test_cli_progress: $(call obj,adapters/cli/cli_progress.c)

run: deps all
	@deploy/run.sh

# After the unit and integration tests, the plain `make test` runs every libFuzzer
# harness for TEST_FUZZ_SECONDS (default 30; 0 skips them) — issue 7 wants the short
# fuzz runs inside make test. The sanitizer build (SAN=...) does not repeat them.
TEST_FUZZ_SECONDS ?= 30
test: deps all
	@BUILD=$(BUILD) tests/run.sh $(UNIT_BIN) -- $(ITEST_BIN)
ifeq ($(SAN),)
	@if [ "$(TEST_FUZZ_SECONDS)" != 0 ]; then \
	  $(MAKE) --no-print-directory deps-fuzz && $(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS); fi
endif
deps-fuzz:
	@$(MAKE) --no-print-directory deps DEBIAN_PACKAGES="clang"

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

# fuzz_bridge also links the bridge and the SDK; fuzz_broker the broker's objects with
# tests/fuzz/fake_store.c in place of broker/store.c (no database; see fake_store.h).
FUZZ_BRIDGE_LIBS := $(FUZZ_BUILD)/libptbridge.a $(FUZZ_BUILD)/libpuente.a
FUZZ_BROKER_OBJ  := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(filter-out broker/store.c,$(BROKER_SRC)))

fuzz-lib:
	@$(MAKE) -s --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang SAN=fuzzer-no-link,address,undefined \
	  $(FUZZ_BUILD)/libptproto.a $(patsubst $(BUILD)/gen/%,$(FUZZ_BUILD)/gen/%,$(GEN_H)) \
	  $(FUZZ_BRIDGE_LIBS) $(FUZZ_BROKER_OBJ)
$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_keys.h fuzz-lib
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_BUILD)/libptproto.a $(FUZZ_LIBS)
$(FUZZ_BUILD)/fuzz_bridge: tests/fuzz/fuzz_bridge.c tests/fuzz/fuzz_keys.h fuzz-lib
	clang $(FUZZ_FLAGS) -Iadapters/sdk -Iadapters/bridge -fsanitize=fuzzer,address,undefined -o $@ $< \
	  $(FUZZ_BRIDGE_LIBS) $(FUZZ_BUILD)/libptproto.a $(FUZZ_LIBS) -lmicrohttpd -lcurl -lsqlite3
$(FUZZ_BUILD)/fuzz_broker: tests/fuzz/fuzz_broker.c tests/fuzz/fake_store.c tests/fuzz/fake_store.h \
                           tests/fuzz/fuzz_keys.h fuzz-lib
	clang $(FUZZ_FLAGS) -Ibroker -fsanitize=fuzzer,address,undefined -o $@ $< tests/fuzz/fake_store.c \
	  $(FUZZ_BROKER_OBJ) $(FUZZ_BUILD)/libptproto.a $(FUZZ_LIBS) -lmicrohttpd
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
# `make bench` (BENCH_QUICK=1: a few seconds per mode), `make bench-compare` (RabbitMQ),
# `make bench-long` (BENCH_LONG_ROWS stored messages, default 10 000 000, seeded by bulk
# SQL; ingest at that size against the empty database; broker memory over
# BENCH_LONG_MINUTES, default 10, at BENCH_LONG_RATE msg/s, default 1000).
# See bench/run.sh, bench/long.sh and README "Performance". Figures go to bench/results/.
BENCH_QUICK ?=
$(BUILD)/bench/loadgen: $(call obj,bench/loadgen.c) $(call obj,adapters/cli/cli_progress.c) $(TLIB_OBJ) $(LIB_BROKER) $(LIB_SDK) $(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lm -lcurl
$(BUILD)/bench/rabbit: bench/rabbit.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< -lrabbitmq -lm
.PHONY: bench bench-compare bench-long deps-bench
# The comparison and the plot need three more Debian packages; same install step as `deps`.
deps-bench:
	@$(MAKE) --no-print-directory deps DEBIAN_PACKAGES="rabbitmq-server librabbitmq-dev gnuplot-nox"
# bench/audit_verify.sh (run at the end) also needs the CLI and both libraries.
bench: deps $(BUILD)/puente-broker $(BUILD)/puente $(BUILD)/bench/loadgen $(LIB_BROKER) $(LIB_PROTO)
	@BUILD=$(BUILD) BENCH_QUICK=$(BENCH_QUICK) bench/run.sh
bench-compare: deps deps-bench
	@BENCH_QUICK=$(BENCH_QUICK) bench/compare.sh
bench-long: deps $(BUILD)/puente-broker $(BUILD)/bench/loadgen
	@BUILD=$(BUILD) BENCH_QUICK=$(BENCH_QUICK) bench/long.sh
# ---- end bench ---------------------------------------------------------------------------

# install -------------------------------------------------------------------------------
# `make install PREFIX=/usr/local DESTDIR=...` and `make uninstall` (README "Installing").
# libpuente ships as build/libpuente.so.0 (soname libpuente.so.0) and build/dist/libpuente.a,
# both holding the SDK and the proto objects, so a program links with -lpuente alone.
# (build/libpuente.a stays the SDK-only archive the tests link.) Their objects are compiled
# again into $(BUILD)/pic: objects in $(BUILD)/obj may predate -fPIC, and make does not
# rebuild on a change of flags, so reusing them could fail the shared link.
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
PUENTE_VERSION := 0.1.0
PUENTE_SONAME  := libpuente.so.0
LIB_SO     := $(BUILD)/$(PUENTE_SONAME)
LIB_DIST_A := $(BUILD)/dist/libpuente.a
PIC_OBJ    := $(patsubst %.c,$(BUILD)/pic/%.o,$(filter-out proto/pt_config.c,$(PROTO_SRC)) $(SDK_SRC)) \
              $(patsubst $(BUILD)/gen/%.c,$(BUILD)/pic/gen/%.o,$(GEN_C))
LIB_DEPS   := -lzmq -lprotobuf-c -lssl -lcrypto -ljansson -lsqlite3 -pthread
INSTALL_HEADERS := adapters/sdk/puente.h proto/pt_crypto.h proto/pt_keys.h proto/pt_types.h \
                   proto/pt_json.h
MAN_PAGES  := docs/man/puente.1 docs/man/puente-broker.8 docs/man/puente-bridge.8 \
              docs/man/puente-primero.8
UNITS      := deploy/systemd/puente-broker.service deploy/systemd/puente-bridge@.service \
              deploy/systemd/puente-primero@.service
.PHONY: lib install uninstall

$(BUILD)/pic/gen/%.o: $(BUILD)/gen/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Werror -Wshadow -Wstrict-prototypes,$(ALL_CFLAGS)) -fPIC $(CPPFLAGS) -c $< -o $@
$(BUILD)/pic/%.o: %.c $(GEN_H) $(wildcard proto/*.h adapters/sdk/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC $(CPPFLAGS) -MMD -c $< -o $@
$(LIB_SO): $(PIC_OBJ)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,$(PUENTE_SONAME) -Wl,--no-undefined -o $@ $^ $(LIB_DEPS)
	ln -sf $(PUENTE_SONAME) $(BUILD)/libpuente.so
$(LIB_DIST_A): $(PIC_OBJ)
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
lib: $(LIB_SO) $(LIB_DIST_A)
all: lib

# The bridge and the Primero adapter (with its code lists) are built and installed when
# their source is in the tree.
install: $(BUILD)/puente-broker $(BUILD)/puente $(LIB_SO) $(LIB_DIST_A) $(GEN_H) \
         $(if $(wildcard adapters/bridge/main.c),$(BUILD)/puente-bridge) \
         $(if $(wildcard adapters/primero/main.c),$(BUILD)/puente-primero)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
	  $(DESTDIR)$(INCLUDEDIR)/puente $(DESTDIR)$(DATADIR)/puente/sql $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	install -m 0755 $(BUILD)/puente $(DESTDIR)$(BINDIR)/puente
	install -m 0755 $(BUILD)/puente-broker $(DESTDIR)$(SBINDIR)/puente-broker
	if [ -x $(BUILD)/puente-bridge ]; then \
	  install -m 0755 $(BUILD)/puente-bridge $(DESTDIR)$(SBINDIR)/puente-bridge; fi
	if [ -x $(BUILD)/puente-primero ]; then \
	  install -m 0755 $(BUILD)/puente-primero $(DESTDIR)$(SBINDIR)/puente-primero; \
	  for dir in adapters/primero/codelists/*/; do \
	    install -d $(DESTDIR)$(DATADIR)/puente/primero/codelists/$$(basename $$dir) || exit 1; \
	    install -m 0644 $$dir*.csv \
	      $(DESTDIR)$(DATADIR)/puente/primero/codelists/$$(basename $$dir)/ || exit 1; done; fi
	install -m 0755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/$(PUENTE_SONAME)
	ln -sf $(PUENTE_SONAME) $(DESTDIR)$(LIBDIR)/libpuente.so
	install -m 0644 $(LIB_DIST_A) $(DESTDIR)$(LIBDIR)/libpuente.a
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@VERSION@|$(PUENTE_VERSION)|' \
	    -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|' \
	    -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|' \
	    deploy/libpuente.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libpuente.pc
	install -m 0644 $(INSTALL_HEADERS) $(GEN_H) $(DESTDIR)$(INCLUDEDIR)/puente/
	install -m 0644 broker/sql/*.sql $(DESTDIR)$(DATADIR)/puente/sql/
	install -m 0644 docs/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 docs/man/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 deploy/puente.conf.example deploy/broker.env.example \
	  deploy/bridge.env.example deploy/primero.env.example $(DESTDIR)$(DATADIR)/puente/
	for unit in $(UNITS); do \
	  sed 's|/usr/local|$(PREFIX)|g' $$unit > $(DESTDIR)$(UNITDIR)/$$(basename $$unit) || exit 1; \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$unit); done
	install -m 0644 deploy/systemd/puente.sysusers $(DESTDIR)$(SYSUSERSDIR)/puente.conf

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/puente $(DESTDIR)$(SBINDIR)/puente-broker \
	  $(DESTDIR)$(SBINDIR)/puente-bridge $(DESTDIR)$(SBINDIR)/puente-primero \
	  $(DESTDIR)$(LIBDIR)/$(PUENTE_SONAME) \
	  $(DESTDIR)$(LIBDIR)/libpuente.so $(DESTDIR)$(LIBDIR)/libpuente.a \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/libpuente.pc $(DESTDIR)$(SYSUSERSDIR)/puente.conf \
	  $(foreach m,$(MAN_PAGES),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m))) \
	  $(foreach u,$(UNITS),$(DESTDIR)$(UNITDIR)/$(notdir $(u)))
	rm -rf $(DESTDIR)$(INCLUDEDIR)/puente $(DESTDIR)$(DATADIR)/puente

-include $(shell find $(BUILD)/pic -name '*.d' 2>/dev/null)
# ---- end install -----------------------------------------------------------------------

# ---- puente-bridge (HTTP/JSON bridge, issue 5; see docs/bridge.md) ----------------------
# adapters/bridge/*.c -> build/puente-bridge; everything but main.c also goes into
# libptbridge.a for tests/unit/test_bridge_*.c. openapi.json is embedded as a C string.
BRIDGE_SRC   := $(filter-out adapters/bridge/main.c,$(wildcard adapters/bridge/*.c))
BRIDGE_OBJ   := $(call obj,$(BRIDGE_SRC)) $(BUILD)/obj/bridge_openapi.o
LIB_BRIDGE   := $(BUILD)/libptbridge.a
BRIDGE_LIBS  := -lmicrohttpd -lcurl -lsqlite3
CPPFLAGS     += -Iadapters/bridge
all: $(BUILD)/puente-bridge
$(BUILD)/gen/bridge_openapi.c: adapters/bridge/openapi.json
	@mkdir -p $(dir $@)
	@{ echo '/* generated from adapters/bridge/openapi.json by the Makefile; do not edit */'; \
	   echo 'const char pt_bridge_openapi[] ='; \
	   sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; echo ';'; } > $@
$(BUILD)/obj/bridge_openapi.o: $(BUILD)/gen/bridge_openapi.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@
$(call obj,$(wildcard adapters/bridge/*.c)): $(wildcard adapters/bridge/*.h)
$(LIB_BRIDGE): $(BRIDGE_OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/puente-bridge: $(call obj,adapters/bridge/main.c) $(LIB_BRIDGE) $(LIB_SDK) $(LIB_PROTO)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(BRIDGE_LIBS)
$(BUILD)/tests/test_bridge_%: LDLIBS += $(BRIDGE_LIBS)
# The integration test uses bridge_http (signature check, route table): the archives
# again after the test's own, in link order.
$(BUILD)/tests/itest_bridge: $(LIB_BRIDGE) | $(BUILD)/puente-bridge
$(BUILD)/tests/itest_bridge: LDLIBS := $(LIB_BRIDGE) $(LIB_SDK) $(LIB_PROTO) $(LDLIBS) $(BRIDGE_LIBS)
# ---- end puente-bridge -------------------------------------------------------------------

# primero ---------------------------------------------------------------------------------
# puente-primero (Primero v2 adapter, issue 5; README "Primero adapter"):
# adapters/primero/*.c -> build/puente-primero; mapping.c (pure Primero <-> Puente mapping)
# also goes into libptprimero.a for tests/unit/test_primero_*.c (via unit_libs above).
PRIMERO_SRC  := $(filter-out adapters/primero/main.c,$(wildcard adapters/primero/*.c))
LIB_PRIMERO  := $(BUILD)/libptprimero.a
PRIMERO_LIBS := -lcurl -lsqlite3 -ljansson -lmicrohttpd
CPPFLAGS     += -Iadapters/primero
all: $(BUILD)/puente-primero
$(call obj,$(wildcard adapters/primero/*.c) $(wildcard tests/unit/test_primero_*.c) \
  tests/integration/itest_primero.c): $(wildcard adapters/primero/*.h)
$(LIB_PRIMERO): $(call obj,$(PRIMERO_SRC))
	@rm -f $@; ar rcs $@ $^
$(BUILD)/puente-primero: $(call obj,adapters/primero/main.c) $(LIB_PRIMERO) $(LIB_SDK) $(LIB_PROTO)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(PRIMERO_LIBS)
# The integration test runs fake Primero servers (libmicrohttpd) and the mapping library.
$(BUILD)/tests/itest_primero: $(LIB_PRIMERO) | $(BUILD)/puente-primero $(BUILD)/puente
$(BUILD)/tests/itest_primero: LDLIBS := $(LIB_PRIMERO) $(LIB_SDK) $(LIB_PROTO) $(LDLIBS) -lmicrohttpd -lcurl
# ---- end primero -------------------------------------------------------------------------

# chaos ---------------------------------------------------------------------------------
# `make chaos`: the long crash test (README "Crash and hostile-input tests"); the short
# one runs inside `make test`. Sizes: messages per sender, broker SIGKILLs per run.
# Then the long database outage under load (itest_outage; 1 x 30 s inside `make test`).
PUENTE_CHAOS_MESSAGES ?= 2000
PUENTE_CHAOS_KILLS    ?= 20
PUENTE_OUTAGE_SECONDS ?= 60
PUENTE_OUTAGE_CYCLES  ?= 2
.PHONY: chaos
chaos: all
	@BUILD=$(BUILD) PUENTE_CHAOS_MESSAGES=$(PUENTE_CHAOS_MESSAGES) \
	  PUENTE_CHAOS_KILLS=$(PUENTE_CHAOS_KILLS) PUENTE_OUTAGE_SECONDS=$(PUENTE_OUTAGE_SECONDS) \
	  PUENTE_OUTAGE_CYCLES=$(PUENTE_OUTAGE_CYCLES) \
	  tests/run.sh -- $(BUILD)/tests/itest_chaos $(BUILD)/tests/itest_outage
# ---- end chaos -------------------------------------------------------------------------

# ha ------------------------------------------------------------------------------------
# `make deps-ha`: the packages of deploy/ha/ha-stack.sh (etcd, Patroni; Patroni's etcd3
# client needs python3-etcd). `make ha-test`: tests/ha/ha_test.sh (about 50 s, not in
# `make test`): Patroni failover under a writer and a broker (docs/ha.md).
HA_PACKAGES := etcd-server etcd-client patroni python3-etcd python3-psycopg2 curl postgresql-15
.PHONY: deps-ha ha-test deps-fuzz
deps-ha:
	@$(MAKE) --no-print-directory deps DEBIAN_PACKAGES="$(HA_PACKAGES)"
$(BUILD)/ha/ha_writer: tests/ha/ha_writer.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CPPFLAGS) -o $@ $< -lpq
# ha_load: three SDK senders and two recipients with endpoint lists (tests/ha/ha_load.c).
$(BUILD)/ha/ha_load: $(call obj,tests/ha/ha_load.c) $(LIB_SDK) $(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
ha-test: deps-ha $(BUILD)/ha/ha_writer $(BUILD)/ha/ha_load $(BUILD)/puente-broker $(BUILD)/puente
	@BUILD=$(BUILD) tests/ha/ha_test.sh
# ---- end ha ----------------------------------------------------------------------------
