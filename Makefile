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
BOOT_TEST_DEBS := qemu-system-x86 mtools
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

# Echo cancellation on real-time PulseAudio devices (needs a machine that is not overloaded).
test-echo: setup-test
	ZCALL_TEST_REALTIME=1 $(BIN)/pytest tests/e2e/test_echo_e2e.py -s $(PYTEST_ARGS)

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
image:
	@bash packaging/apt-ensure.sh $(IMAGE_DEBS) $(if $(filter-out $(shell dpkg --print-architecture),$(ARCH)),$(IMAGE_DEBS_FOREIGN))
	bash firmware/image/make-image.sh $(ARCH)

# Boots two amd64 units in QEMU (TCG) and checks first boot, the phone, power cuts, the watchdog and a call
# between them; report in build/boot-test/. Opt-in (see firmware/README.md for why and how long).
boot-test: setup
	@$(MAKE) --no-print-directory image ARCH=amd64
	@bash packaging/apt-ensure.sh $(BOOT_TEST_DEBS)
	ZCALL_BOOT_TEST=1 $(BIN)/pytest tests/boot -p no:cacheprovider -o addopts="" -s -q $(PYTEST_ARGS)
