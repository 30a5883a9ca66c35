# ---- the card firmware image for QEMU's mps2-an386 (Cortex-M4): `make firmware` ----------------
# Included by the top-level Makefile. Builds build/firmware/icdup-card.elf and .bin from
# common/, card/core/, card/fw/ and an mbedtls compiled from Debian's source package (fetched
# by scripts/fetch-mbedtls-src.sh into build/firmware/mbedtls-src, never committed) with the
# card's configuration card/port/mbedtls_card_config.h. newlib-nano; no heap: the link fails
# when the image holds malloc or stdio (scripts/check-firmware-elf.sh). See docs/firmware.md.
FW        := build/firmware
FW_OBJ    := $(FW)/obj
FW_ELF    := $(FW)/icdup-card.elf
FW_BIN    := $(FW)/icdup-card.bin
FW_MBED   := $(FW)/mbedtls-src
FW_FETCHED:= $(FW_MBED)/.fetched
FW_LD     := card/fw/icdup-card.ld
FW_CPU    := -mcpu=cortex-m4 -mthumb -mfloat-abi=soft
# -fstack-usage / -fcallgraph-info=su: a .su and a .ci file next to every object, read by
# bench/footprint.sh (largest frame, deepest path through direct calls).
FW_CFLAGS := $(CSTD) $(FW_CPU) -Os -g -ffunction-sections -fdata-sections -ffreestanding \
             -fstack-usage -fcallgraph-info=su \
             -DMBEDTLS_CONFIG_FILE=\"mbedtls_card_config.h\" -DICDUP_FW_EMULATOR_RNG \
             -Icommon -Icard/core -Icard/hal -Icard/port -Icard/fw -I$(FW_MBED)/include
# The modules card/port/mbedtls_card_config.h enables (the others compile to nothing anyway).
FW_MBED_MODULES := aes cipher cipher_wrap gcm md sha256 hkdf ctr_drbg bignum ecp ecp_curves \
                   ecdh platform platform_util memory_buffer_alloc constant_time
FW_SRC    := $(COMMON_SRC) $(CORE_SRC) $(wildcard card/fw/*.c)
FW_OBJS   := $(patsubst %.c,$(FW_OBJ)/%.o,$(FW_SRC)) \
             $(patsubst %,$(FW_OBJ)/mbedtls/%.o,$(FW_MBED_MODULES))

# The bench image (bench/fw_icount.sh): the same objects, but main.c built with ICDUP_FW_BENCH
# (vendor controls that run bare mbedtls primitives) and bench/fw_bench_prim.c linked in.
FW_BENCH_ELF  := $(FW)/icdup-card-bench.elf
FW_BENCH_OBJS := $(filter-out $(FW_OBJ)/card/fw/main.o,$(FW_OBJS)) \
                 $(FW_OBJ)/bench/main-bench.o $(FW_OBJ)/bench/fw_bench_prim.o

.PHONY: firmware firmware-bench
firmware: $(FW_ELF) $(FW_BIN)
firmware-bench: $(FW_BENCH_ELF)

$(FW_FETCHED): scripts/fetch-mbedtls-src.sh
	bash scripts/fetch-mbedtls-src.sh $(FW_MBED)
	@touch $@

$(FW_OBJ)/%.o: %.c | $(FW_FETCHED)
	@mkdir -p $(dir $@)
	$(ARM_CC) $(WARN) $(FW_CFLAGS) -MMD -MP -c $< -o $@

$(FW_OBJ)/bench/main-bench.o: card/fw/main.c | $(FW_FETCHED)
	@mkdir -p $(dir $@)
	$(ARM_CC) $(WARN) $(FW_CFLAGS) -DICDUP_FW_BENCH -MMD -MP -c $< -o $@

$(FW_OBJ)/mbedtls/%.o: $(FW_FETCHED)
	@mkdir -p $(dir $@)
	$(ARM_CC) -Wall -Wextra -Werror $(FW_CFLAGS) -c $(FW_MBED)/library/$*.c -o $@

# Linked to a temporary name first: an image exists only once the heap check passed.
FW_LINK = $(ARM_CC) $(FW_CPU) -Os -Werror -T $(FW_LD) --specs=nano.specs --specs=nosys.specs \
	  -nostartfiles -Wl,--gc-sections -Wl,--fatal-warnings -Wl,-Map=$(basename $@).map \
	  -o $@.tmp $(1) && bash scripts/check-firmware-elf.sh $@.tmp && mv $@.tmp $@

$(FW_ELF): $(FW_OBJS) $(FW_LD) scripts/check-firmware-elf.sh
	@mkdir -p $(dir $@)
	$(call FW_LINK,$(FW_OBJS))

$(FW_BENCH_ELF): $(FW_BENCH_OBJS) $(FW_LD) scripts/check-firmware-elf.sh
	$(call FW_LINK,$(FW_BENCH_OBJS))

$(FW_BIN): $(FW_ELF)
	arm-none-eabi-objcopy -O binary --only-section=.text --only-section=.ARM.exidx \
	  --only-section=.data $< $@
