#!/usr/bin/env bash
# Runs Go fuzz targets one after another for a fixed time each.
#
#   scripts/fuzz.sh 15s ./crypto:FuzzOpen ./browser:FuzzRawCookies ...
#
# A target fails when go test fails for any reason but one: Go 1.26's fuzz
# coordinator can report "context deadline exceeded" when -fuzztime runs out
# while a worker is still busy (go.dev/issue/75804, fixed in Go 1.27). That
# report writes no failing input. When it is the only complaint and no new
# input appeared under testdata/fuzz/<target>, the target's corpus is replayed
# as a plain test and the target passes only if the replay does.
set -uo pipefail

fuzztime=${1:?usage: fuzz.sh FUZZTIME pkg:Target...}
shift
go=${GO:-go}

for t in "$@"; do
	pkg=${t%%:*}
	fn=${t##*:}
	corpus="$pkg/testdata/fuzz/$fn"
	before=$(ls "$corpus" 2>/dev/null | sort)
	echo "== $fn in $pkg for $fuzztime"
	log=$(mktemp)
	"$go" test -run '^$' -fuzz "^$fn\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$log"
	status=${PIPESTATUS[0]}
	if [ "$status" -ne 0 ]; then
		after=$(ls "$corpus" 2>/dev/null | sort)
		fails=$(grep -c -- '--- FAIL' "$log")
		if [ "$before" = "$after" ] && [ "$fails" -eq 1 ] &&
			grep -A1 -- "--- FAIL: $fn " "$log" | grep -q '^    context deadline exceeded$'; then
			echo "== $fn: the fuzz coordinator's deadline race (go.dev/issue/75804), no input written; replaying the corpus"
			if ! "$go" test -count=1 -run "^$fn\$" "$pkg"; then
				rm -f "$log"
				exit 1
			fi
		else
			rm -f "$log"
			exit "$status"
		fi
	fi
	rm -f "$log"
done
