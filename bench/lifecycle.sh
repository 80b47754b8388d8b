#!/usr/bin/env bash
# Times the lifecycle commands over 10,000 open positions with their exit legs (issue 9's
# benchmarks), on SQLite and on PostgreSQL, as a user runs them (process start and database
# open included), against a fresh database per run:
#   setup    one expert, one paper account; 10,000 BUY recommendations of 10,000 symbols at
#            100 (`import`), a ruleset that buys each with a take profit +10 % and a stop
#            −5 %; `process` stores 10,000 entries and 20,000 waiting legs, the entries fill,
#            and the refresh that ends it fires every leg; one more `refresh` to be sure
#   refresh  `tradewarden refresh` with nothing changed (10,000 positions, 20,000 live legs)
#   open_positions  `tradewarden process --use-case open_positions` over those positions,
#            when this build has the use case (otherwise left out)
# Prints every run, then median, min and max per database. The setup's figures are printed
# too (process includes storing the legs and the firing refresh).
#
# Usage: bench/lifecycle.sh [RUNS]     (default 3; each run times every command 3 times)
# Env:   TRADEWARDEN_BIN=PATH     use this binary instead of building target/release/tradewarden
#        DBS="sqlite postgres"    which databases (default both)
#        POSITIONS=10000          open positions
#        PG_URL=postgres://postgres@127.0.0.1:5432   server for the PostgreSQL runs (a fresh
#                                 database is created and dropped per run)
set -euo pipefail
# A failure inside $(one_run …) stops the bench too.
shopt -s inherit_errexit

root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-3}"
dbs="${DBS:-sqlite postgres}"
positions="${POSITIONS:-10000}"
pg_url="${PG_URL:-postgres://postgres@127.0.0.1:5432}"

# shellcheck source=bench/common.sh
source "$root/bench/common.sh"

# One BUY per symbol, a millisecond apart, starting an hour ago (inside the default one-day
# lookback).
buys "$positions" S 5 100 > "$work/recs.jsonl"

# Open positions take the ruleset that closes nothing and moves no exit: what is timed is
# the pass over every position, not the closes.
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
cash = 1000000000

[[experts]]
id = 1
name = "bench"
account = "paper"
virtual_equity_percent = 100
max_virtual_equity_per_instrument_percent = 0.01
allow_automated_trade_opening = true
allow_automated_trade_modification = true
enter_market_ruleset = "buy-with-exits"
open_positions_ruleset = "hold"

[[rulesets]]
name = "buy-with-exits"

[[rulesets.rules]]
name = "buy"
triggers = [{ event = "bullish" }]
actions = [
    { action = "buy" },
    { action = "adjust_take_profit", reference = "order_open_price", value = 10 },
    { action = "adjust_stop_loss", reference = "order_open_price", value = -5 },
]

[[rulesets]]
name = "hold"

[[rulesets.rules]]
name = "hold-above-zero"
triggers = [{ event = "confidence", op = "<", value = 0 }]
actions = [{ action = "close" }]
TOML
}

# Milliseconds a command takes; its stdout goes to $work/out.json. A failure stops the
# bench with the command's last log lines.
timed() {
    local t0 status=0
    t0=$(date +%s%N)
    "$bin" --config "$work/bench.toml" -q "$@" > "$work/out.json" 2>> "$work/bench.log" || status=$?
    if (( status != 0 )); then
        echo "tradewarden $* failed (exit $status):" >&2
        tail -n 5 "$work/bench.log" >&2
        return 1
    fi
    echo $(( ($(date +%s%N) - t0) / 1000000 ))
}

# Whether this build has the open_positions use case.
has_open_positions=0
if "$bin" process --help 2>/dev/null | grep -q open_positions; then
    has_open_positions=1
fi

one_run() { # $1 = db kind, $2 = run number; prints "import process refresh open_positions legs"
    local url
    case "$1" in
        sqlite) rm -f "$work"/bench.db*; url="sqlite://$work/bench.db" ;;
        postgres)
            pg_db="tw_lifecycle_$$_$2"
            psql -q "$pg_url/postgres" -c "CREATE DATABASE $pg_db" > /dev/null
            url="$pg_url/$pg_db" ;;
    esac
    config "$url" > "$work/bench.toml"
    local imp proc first refresh=() open=() legs
    imp=$(timed import "$work/recs.jsonl")
    proc=$(timed process --all)
    first=$(timed refresh)
    # What is timed below: every position open with both its legs live at the broker.
    "$bin" --config "$work/bench.toml" -q orders --json --status accepted > "$work/live.json"
    legs=$(python3 -c "import json,sys; print(sum(o['role'] != 'entry' for o in json.load(open(sys.argv[1]))))" "$work/live.json")
    if (( legs != 2 * positions )); then
        echo "expected $(( 2 * positions )) live legs, found $legs" >&2
        return 1
    fi
    for _ in 1 2 3; do
        refresh+=("$(timed refresh)")
    done
    python3 - "$work/out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
changed = {k: r[k] for k in ("orders_updated", "transactions_opened", "transactions_closed", "legs_fired", "legs_canceled") if r.get(k)}
assert not changed, f"a refresh with nothing changed changed {changed}"
PY
    if [[ $has_open_positions == 1 ]]; then
        for _ in 1 2 3; do
            open+=("$(timed process --all --use-case open_positions)")
        done
    else
        open=(- - -)
    fi
    if [[ "$1" == postgres ]]; then
        psql -q "$pg_url/postgres" -c "DROP DATABASE $pg_db" > /dev/null
        pg_db=""
    fi
    local median_refresh median_open
    median_refresh=$(printf '%s\n' "${refresh[@]}" | sort -n | sed -n 2p)
    median_open=$(printf '%s\n' "${open[@]}" | sort -n | sed -n 2p)
    echo "$imp $proc $first $median_refresh $median_open $legs"
}

for db in $dbs; do
    : > "$work/$db.txt"
    for run in $(seq 1 "$runs"); do
        line=$(one_run "$db" "$run")
        echo "$line" >> "$work/$db.txt"
        read -r imp proc first refresh open _legs <<< "$line"
        echo "$db run $run: import ${imp} ms, process ${proc} ms (legs stored and fired), refresh ${first} ms, refresh (nothing changed) ${refresh} ms, open_positions ${open} ms"
    done
done

python3 - "$work" "$positions" $dbs <<'PY'
import statistics, sys
work, positions, dbs = sys.argv[1], sys.argv[2], sys.argv[3:]
print()
print(f"{positions} open positions, each with a take-profit and a stop leg live at the broker")
print(f"{'database':<10} {'what':<16} {'median':>8} {'min':>8} {'max':>8}   (ms, fresh database per run)")
for db in dbs:
    rows = [l.split() for l in open(f"{work}/{db}.txt") if l.strip()]
    for i, what in enumerate(["import", "process", "refresh (first)", "refresh", "open_positions"]):
        xs = [int(r[i]) for r in rows if r[i] != "-"]
        if xs:
            print(f"{db:<10} {what:<16} {statistics.median(xs):>8.0f} {min(xs):>8} {max(xs):>8}")
        else:
            print(f"{db:<10} {what:<16} {'(not in this build)':>26}")
PY
