# Thin wrapper around meson; see README.md.
#   make         install missing packages, build build/airlock
#   make check   install, build (release, and the test build with sanitizers and
#                -Werror), run every test (valgrind runs the release build)
#   make demo    install, build, run the demo (the standby gateway)
#   make demo-relay  the relay pair alone, with redis in an "enclave"
#   make demo-crypt  field encryption: the HTTP proxy in an "enclave" (docs/field-encryption.md)
#   make fuzz    run each libFuzzer harness for FUZZ_TIME seconds (clang)
MESON_OPTS ?=
FUZZ_TIME ?= 60

.PHONY: all deps check demo demo-relay demo-crypt fuzz format clean

all: deps
	@[ -f build/build.ninja ] || meson setup build --buildtype=release $(MESON_OPTS)
	ninja -C build

deps:
	@scripts/deps.sh

check: all
	@[ -f build-test/build.ninja ] || meson setup build-test -Dwerror=true \
		-Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS)
	ninja -C build-test
	tests/check.sh build-test

demo: all
	scripts/demo.sh

demo-relay: all
	scripts/demo-relay.sh

demo-crypt: all
	scripts/demo-crypt.sh

fuzz: deps
	tests/fuzz/run.sh $(FUZZ_TIME)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-test build-static build-fuzz
