#!/usr/bin/env bash
# Times `tradewarden process --use-case open_positions` over 10,000 open positions of one
# expert (issue 9's benchmark; target, for the record, under 1 s on SQLite), as a user runs
# it (process start and database open included), against a fresh database per run:
#   setup    import 10,000 BUY recommendations (distinct symbols, two hours ago) and open
#            them with `process --use-case enter_market` (not timed)
#   quiet    open_positions when no rule matches: every position loaded, decided and given
#            its `no_action` outcome (the common case of a run)
#   again    the same once more (outcomes accumulate)
# and prints every run, then median, min and max per database.
#
# Usage: bench/open_positions.sh [RUNS]      (default 3)
# Env:   TRADEWARDEN_BIN, DBS, PG_URL as for bench/run.sh; POSITIONS (default 10000)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-3}"
dbs="${DBS:-sqlite postgres}"
pg_url="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
positions="${POSITIONS:-10000}"

# shellcheck source=bench/common.sh
source "$root/bench/common.sh"

buys "$positions" S 5 10 > "$work/recs.jsonl"

config() { # $1 = database url
    cat <<TOML
[database]
url = "$1"

[processing]
lock_timeout_ms = 500
lookback_days = 1

[[accounts]]
name = "paper"
broker = "paper"
cash = 100000000

[[experts]]
id = 1
name = "bench"
account = "paper"
virtual_equity_percent = 100
max_virtual_equity_per_instrument_percent = 0.005
allow_automated_trade_opening = true
allow_automated_trade_modification = true
enter_market_ruleset = "buy"
open_positions_ruleset = "close-on-downgrade"

[[rulesets]]
name = "buy"

[[rulesets.rules]]
name = "bullish"
triggers = [{ event = "bullish" }]
actions = [{ action = "buy" }]

[[rulesets]]
name = "close-on-downgrade"

[[rulesets.rules]]
name = "downgraded"
triggers = [{ event = "rating_downgraded" }]
actions = [{ action = "close" }]
TOML
}

timed() { # runs the binary with the arguments, prints milliseconds
    local t0
    t0=$(date +%s%N)
    "$bin" --config "$work/bench.toml" -q "$@" > "$work/out.json" 2> "$work/err.log"
    echo $(( ($(date +%s%N) - t0) / 1000000 ))
}

one_run() { # $1 = db kind, $2 = run number; prints "quiet again opened"
    local url
    case "$1" in
        sqlite) rm -f "$work"/bench.db*; url="sqlite://$work/bench.db" ;;
        postgres)
            pg_db="tw_bench_op_$$_$2"
            psql -q "$pg_url/postgres" -c "CREATE DATABASE $pg_db" > /dev/null
            url="$pg_url/$pg_db" ;;
    esac
    config "$url" > "$work/bench.toml"
    "$bin" --config "$work/bench.toml" -q init > /dev/null 2>&1
    "$bin" --config "$work/bench.toml" -q import "$work/recs.jsonl" > /dev/null
    "$bin" --config "$work/bench.toml" -q process --all --use-case enter_market > "$work/open.json"
    local opened quiet again
    opened=$(python3 -c "import json,sys; print(sum(r['counts']['ordered'] for r in json.load(open(sys.argv[1]))))" "$work/open.json")
    quiet=$(timed process --all --use-case open_positions)
    cp "$work/out.json" "${KEEP_REPORT:-/dev/null}" 2>/dev/null || true
    again=$(timed process --all --use-case open_positions)
    if [[ "$1" == postgres ]]; then
        psql -q "$pg_url/postgres" -c "DROP DATABASE $pg_db" > /dev/null
        pg_db=""
    fi
    echo "$quiet $again $opened"
}

for db in $dbs; do
    : > "$work/$db.txt"
    for run in $(seq 1 "$runs"); do
        line=$(one_run "$db" "$run")
        echo "$line" >> "$work/$db.txt"
        read -r quiet again opened <<< "$line"
        echo "$db run $run: open_positions ${quiet} ms, again ${again} ms (${opened} positions)"
    done
done

python3 - "$work" $dbs <<'PY'
import statistics, sys
work, dbs = sys.argv[1], sys.argv[2:]
print()
print(f"{'database':<10} {'what':<8} {'median':>8} {'min':>8} {'max':>8}   (ms, fresh database per run)")
for db in dbs:
    rows = [list(map(int, l.split())) for l in open(f"{work}/{db}.txt") if l.strip()]
    for i, what in enumerate(["quiet", "again"]):
        xs = [r[i] for r in rows]
        print(f"{db:<10} {what:<8} {statistics.median(xs):>8.0f} {min(xs):>8} {max(xs):>8}")
PY
