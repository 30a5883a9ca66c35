# icdup build. `make` builds release binaries into build/bin; `make check` installs what is
# missing, builds everything with ASan+UBSan into build/check, runs every test, the fuzzer for a
# bounded time, and the Cortex-M cross-compile of the card core. Sources are picked up by
# wildcard, so a new module needs no edit here.

VARIANT ?= release
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
CC      ?= cc
ifeq ($(origin CC),default)
CC := cc
endif

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
CSTD    := -std=c11
# libpq (the PostgreSQL back end of the issuance file): its headers from pkg-config, else where
# Debian's libpq-dev puts them (make reads this before `make deps` may install pkg-config).
PQ_INC  := $(or $(shell pkg-config --cflags-only-I libpq 2>/dev/null),-I/usr/include/postgresql)
INC     := -Icommon -Icard/core -Icard/hal -Icard/sim -Ihost -Ihost/issuance -Ihost/central \
           -Ihost/cli -Itests/support -I/usr/include/PCSC $(PQ_INC)
HOSTDEF := -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE

ifeq ($(VARIANT),check)
OUT     := build/check
OPT     := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
OUT     := build
OPT     := -O2 -g
endif
OBJ := $(OUT)/obj
BIN := $(OUT)/bin
CFLAGS_ALL := $(CSTD) $(WARN) $(OPT) $(INC) $(HOSTDEF) -pthread $(CFLAGS)
LDFLAGS_ALL := $(OPT) $(LDFLAGS)
LDLIBS_ALL  := -lsqlite3 -lpq -ljansson -lcsv -lcairo -lpcsclite -lnfc \
               -lmbedtls -lmbedx509 -lmbedcrypto -pthread $(LDLIBS)

COMMON_SRC := $(wildcard common/*.c)
CORE_SRC   := $(wildcard card/core/*.c)
SIM_SRC    := $(filter-out card/sim/icsim.c,$(wildcard card/sim/*.c))
HOST_SRC   := $(wildcard host/*.c host/issuance/*.c host/central/*.c)
CLI_SRC    := $(wildcard host/cli/*.c)
ICDUP_SRC  := $(wildcard host/cli/icdup/*.c)
ICISSUE_SRC:= $(wildcard host/cli/icissue/*.c)
SUPPORT_SRC:= $(wildcard tests/support/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
BENCH_SRC  := $(wildcard bench/bench_*.c)

objs = $(patsubst %.c,$(OBJ)/%.o,$(1))
LIBCORE := $(OUT)/lib/libcore.a
LIBSIM  := $(OUT)/lib/libsim.a
LIBHOST := $(OUT)/lib/libhost.a
LIBSUP  := $(OUT)/lib/libtestsupport.a
LIBS    := $(LIBHOST) $(LIBSIM) $(LIBCORE)

UNIT_BINS  := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRC))
BENCH_BINS := $(patsubst bench/%.c,$(BIN)/%,$(BENCH_SRC))
PROGS      := $(BIN)/icsim $(BIN)/icdup $(BIN)/icissue

.PHONY: all deps demo check tests bench fuzz cross clean
.DEFAULT_GOAL := all

all: $(PROGS)

deps:
	@bash scripts/install-deps.sh

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(LIBCORE): $(call objs,$(COMMON_SRC) $(CORE_SRC))
$(LIBSIM):  $(call objs,$(SIM_SRC))
$(LIBHOST): $(call objs,$(HOST_SRC))
$(LIBSUP):  $(call objs,$(SUPPORT_SRC))
$(OUT)/lib/%.a:
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/icsim: $(call objs,card/sim/icsim.c) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(BIN)/icdup: $(call objs,$(ICDUP_SRC) $(CLI_SRC)) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(BIN)/icissue: $(call objs,$(ICISSUE_SRC) $(CLI_SRC)) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(OUT)/tests/%: $(call objs,tests/unit/%.c) $(LIBSUP) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ -lcmocka $(LDLIBS_ALL)

$(BIN)/bench_%: $(call objs,bench/bench_%.c) $(LIBSUP) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

# The PN532 emulator of the nfc: end-to-end test (tests/e2e/nfc.sh): a simulated card behind
# a PN532 on a pseudo-terminal, for libnfc's pn532_uart driver.
$(BIN)/pn532emu: $(call objs,$(wildcard tests/pn532emu/*.c)) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

# The load client of the central server's kill test (tests/e2e/central_load.sh): many branches
# reissuing at once, riding over the server's restart.
$(BIN)/central_load: $(call objs,$(wildcard tests/load/*.c)) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

tests: $(PROGS) $(UNIT_BINS) $(BIN)/pn532emu $(BIN)/central_load
tests: build/firmware/icdup-card.elf build/firmware/icdup-card-bench.elf $(BIN)/bench_fw
# (tests/e2e/qemu.sh: the firmware, and its budget measured by bench_fw on the bench image)

# ---- top-level flows ---------------------------------------------------------------------
check: deps
	$(MAKE) --no-print-directory -j$(JOBS) VARIANT=check tests
	$(MAKE) --no-print-directory cross
	$(MAKE) --no-print-directory fuzz
	bash tests/run-unit.sh build/check

demo: deps
	$(MAKE) --no-print-directory -j$(JOBS) all
	bash scripts/demo.sh build/bin

bench: deps
	$(MAKE) --no-print-directory -j$(JOBS) VARIANT=release all firmware firmware-bench $(BENCH_BINS)
	bash bench/run.sh build/bin

# ---- fuzzing: libFuzzer on the raw-APDU entry point ----------------------------------------
FUZZ_SECONDS ?= 30
FUZZ_BIN := build/fuzz/fuzz_apdu
# (the card fixture only: the other support files are for the host-side tests)
$(FUZZ_BIN): tests/fuzz/fuzz_apdu.c $(COMMON_SRC) $(CORE_SRC) $(SIM_SRC) tests/support/card_fixture.c \
            host/hex.c
	@mkdir -p $(dir $@)
	clang $(CSTD) $(WARN) $(INC) $(HOSTDEF) -g -O1 -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=all -o $@ $^ -lmbedcrypto
fuzz: $(FUZZ_BIN)
	bash tests/fuzz/run.sh $(FUZZ_BIN) $(FUZZ_SECONDS)

# ---- Cortex-M cross-compile of the portable part (common/ and card/core/) --------------------
ARM_CC  := arm-none-eabi-gcc
ARM_OPT := -mcpu=cortex-m4 -mthumb -Os -ffunction-sections -fdata-sections -ffreestanding
ARM_OBJ := build/arm/obj
ARM_OBJS := $(patsubst %.c,$(ARM_OBJ)/%.o,$(COMMON_SRC) $(CORE_SRC))
# Only the mbedtls headers are exposed to the cross compiler (not the host's other headers);
# the firmware image (issue 7) links an mbedtls built for the target.
ARM_INC := build/arm/include
$(ARM_INC)/mbedtls:
	@mkdir -p $(ARM_INC)
	ln -sfn /usr/include/mbedtls $@
$(ARM_OBJ)/%.o: %.c | $(ARM_INC)/mbedtls
	@mkdir -p $(dir $@)
	$(ARM_CC) $(CSTD) $(WARN) $(ARM_OPT) -Icommon -Icard/core -Icard/hal -Icard/port -I$(ARM_INC) \
	  -DMBEDTLS_CONFIG_FILE=\"mbedtls_card_config.h\" -c $< -o $@
cross: $(ARM_OBJS)
	bash scripts/check-firmware-objs.sh $(ARM_OBJS)

include card/fw/firmware.mk

clean:
	rm -rf build

-include $(shell find build -name '*.d' -type f -not -path '*/mbedtls-src/*' 2>/dev/null)
