#!/bin/bash
# The whole test suite, as CI runs it: a normal build and an ASan+UBSan
# build, unit + integration + end-to-end tests in both where they apply,
# each fuzzer for a bounded time. Prints "N passed, N failed, N skipped".
# Usage: bash tests/run.sh [--quick]   (--quick: normal build only, no fuzzing)
set -uo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1
passed=0 failed=0 skipped=0

count() { # meson's testlog.json -> totals
	local log=$1
	read -r p f s < <(python3 - "$log" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(p, f, s)
PY
)
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

build() { # dir, meson options...
	local dir=$1; shift
	if [ ! -d "$dir" ]; then
		meson setup "$dir" "$@" >/dev/null || return 1
	fi
	ninja -C "$dir" >/dev/null || ninja -C "$dir"
}

echo "== build (debugoptimized, -Werror)"
if build build; then
	meson test -C build --print-errorlogs --no-rebuild --num-processes 1
	count build/meson-logs/testlog.json
else
	echo "build failed"; failed=$((failed + 1))
fi

if [ $quick = 0 ]; then
	echo "== build with AddressSanitizer + UndefinedBehaviorSanitizer"
	if build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug; then
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
			meson test -C build-asan --print-errorlogs --no-rebuild --num-processes 1 \
			--suite unit --suite integration --suite integration-workers
		count build-asan/meson-logs/testlog.json
	else
		echo "sanitizer build failed"; failed=$((failed + 1))
	fi
	echo "== fuzzers (libFuzzer, bounded)"
	if CC=clang build build-fuzz -Dfuzz=true -Dtests=disabled -Dbuildtype=debug; then
		for f in build-fuzz/tests/fuzz/fuzz_*; do
			[ -f "$f" ] && [ -x "$f" ] || continue
			name=$(basename "$f")
			corpus=tests/fuzz/corpus/${name#fuzz_}
			work=$(mktemp -d)
			if "$f" -max_total_time="${FUZZ_SECONDS:-20}" -rss_limit_mb=1024 -print_final_stats=1 \
				-artifact_prefix="$work/" "$work" "$corpus" >"$work/log" 2>&1; then
				echo "ok   $name ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/log" | cut -d' ' -f2) runs)"
				passed=$((passed + 1))
			else
				echo "FAIL $name"; tail -40 "$work/log"; failed=$((failed + 1))
			fi
			rm -rf "$work"
		done
	else
		echo "fuzz build failed"; failed=$((failed + 1))
	fi
fi
echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
