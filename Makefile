# zcall: two commands for a fresh Debian / Raspberry Pi OS machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.zcall-installed

# Runtime system libraries: libopus0 for opuslib, libspeexdsp1 for echo cancellation, portaudio to build PyAudio.
RUNTIME_DEBS := libopus0 libspeexdsp1 portaudio19-dev libasound2-dev libasound2-plugins python3-venv python3-dev gcc
# The test bench: independent peers, captures, audio tools, namespaces, a terminal.
TEST_DEBS := device-tree-compiler linphone-cli baresip-core kamailio kamailio-tls-modules tshark sox libsox-fmt-all espeak-ng \
             iproute2 iputils-ping nftables openssl tmux procps psmisc dnsmasq-base coturn \
             debootstrap shellcheck debhelper dh-virtualenv dpkg-dev fakeroot qemu-user-static binfmt-support alsa-utils fdisk pulseaudio

# The desk-unit image (firmware/image/build.sh) and its boot test: heavy, opt-in, not part of `make test`.
IMAGE_DEBS := mmdebstrap dosfstools mtools e2fsprogs fdisk device-tree-compiler grub-pc-bin grub-common
IMAGE_DEBS_FOREIGN := qemu-user-static binfmt-support
# The boot tests: QEMU for the image's architecture, mtools, and the emulated LAN's switch (a bridge in a
# network namespace) with dnsmasq as its DHCP server.
BOOT_TEST_DEBS := mtools iproute2 dnsmasq-base
BOOT_TEST_DEBS_amd64 := qemu-system-x86
BOOT_TEST_DEBS_arm64 := qemu-system-arm
BOOT_TEST_amd64 := tests/boot/test_boot.py
BOOT_TEST_arm64 := tests/boot/test_boot_arm64.py
ARCH ?= amd64

.PHONY: setup setup-test run test bench lint clean deb test-echo test-loss fuzz durability soak image boot-test test-mitm

setup: $(STAMP)

$(STAMP): pyproject.toml
	@bash packaging/apt-ensure.sh $(RUNTIME_DEBS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

setup-test: setup
	@bash packaging/apt-ensure.sh $(TEST_DEBS)

run: setup
	$(BIN)/zcall $(ARGS)

lint: setup
	$(BIN)/ruff check zcall tests
	$(BIN)/mypy zcall

test: setup-test lint
	$(BIN)/pytest $(PYTEST_ARGS)

# RED at 10 % random loss over ten loss patterns: media sessions through the seeded relay, then two zcall
# units routed through a namespace where nftables drops at random (about 15 minutes).
test-loss: setup-test
	ZCALL_TEST_LOSS=1 $(BIN)/pytest tests/e2e/test_media_e2e.py tests/e2e/test_loss_e2e.py \
		-k "ten_loss_patterns or ten_random_loss_patterns" -s $(PYTEST_ARGS)

# Echo cancellation on PulseAudio devices alone (make test runs these too).
test-echo: setup-test
	$(BIN)/pytest tests/e2e/test_echo_e2e.py -s $(PYTEST_ARGS)

bench: setup-test
	$(BIN)/pytest tests/bench -p no:cacheprovider -o addopts="" -s -q $(PYTEST_ARGS)

# The active man in the middle 100 times: in memory (ZRTP cores) and in namespaces (real zcall processes).
test-mitm: setup-test
	ZCALL_MITM_RUNS=100 $(BIN)/pytest tests/unit/zrtp/test_mitm.py tests/e2e/test_mitm.py -p no:cacheprovider -q

# Coverage-guided fuzzing (atheris): FUZZ_RUNS executions of every target, growing the kept corpus in
# tests/fuzz/corpus. A crash or hang stops with the input saved as crash-*/timeout-* in fuzz-artifacts/.
FUZZ_RUNS ?= 1000000
FUZZ_TARGETS ?= sip_message sdp sip_text zrtp_packet rtp discovery_txt dtls_text config sip_core zrtp_core dtls_core
fuzz: setup
	@mkdir -p fuzz-artifacts
	@for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $$t ($(FUZZ_RUNS) runs)"; \
		$(BIN)/python -m tests.fuzz.atheris.run $$t -runs=$(FUZZ_RUNS) -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=1 -artifact_prefix=fuzz-artifacts/$$t- tests/fuzz/corpus/$$t || exit 1; \
	done

# SIGKILL during trust-cache writes, 1000 times per case (one writer, two writers on one file).
durability: setup
	ZCALL_DURABILITY_ROUNDS=1000 $(BIN)/pytest tests/e2e/test_cache_durability.py -p no:cacheprovider -q

# 1000 sequential calls between two units; fd/RSS/task samples as JSON lines in soak.jsonl, checked flat.
soak: setup-test
	ZCALL_SOAK_CALLS=1000 ZCALL_SOAK_REPORT=soak.jsonl $(BIN)/pytest tests/e2e/test_soak.py -p no:cacheprovider -q -s

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# The Debian package (private venv under /opt/zcall) for this machine's architecture, into dist/.
deb:
	@bash packaging/apt-ensure.sh dpkg-dev debhelper dh-virtualenv fakeroot python3-venv python3-dev \
		portaudio19-dev libasound2-dev
	bash packaging/build-deb.sh

# A desk-unit disk image from Debian packages (mmdebstrap): dist/zcall-desk-$(ARCH).img. ARCH=amd64 is a
# PC/QEMU disk; ARCH=arm64 a Raspberry Pi 3B+/4 card (on an amd64 host: emulated, slow). See firmware/README.md.
image: setup
	@bash packaging/apt-ensure.sh $(IMAGE_DEBS) $(if $(filter-out $(shell dpkg --print-architecture),$(ARCH)),$(IMAGE_DEBS_FOREIGN))
	bash firmware/image/make-image.sh $(ARCH)

# ARCH=amd64: boots two units in QEMU (TCG) and checks first boot, the phone, power cuts, the watchdog, a call
# and pairing (words match, words differ) between them; report in build/boot-test/. ARCH=arm64: boots the
# Raspberry Pi image's userland on QEMU's virt board; report in build/boot-test-arm64/. Opt-in (see
# firmware/README.md for why, how long, and what the arm64 run does not prove).
boot-test: setup
	@$(MAKE) --no-print-directory image ARCH=$(ARCH)
	@bash packaging/apt-ensure.sh $(BOOT_TEST_DEBS) $(BOOT_TEST_DEBS_$(ARCH))
	ZCALL_BOOT_TEST=1 $(BIN)/pytest $(BOOT_TEST_$(ARCH)) -p no:cacheprovider -o addopts="" -s -q $(PYTEST_ARGS)
