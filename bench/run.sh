#!/usr/bin/env bash
# Times tradewarden on the standard workload (`tradewarden demo gen --experts 20 --symbols 100`:
# 2,000 recommendations, 1,710 considered after HOLD is dropped) against a fresh database per
# run, on SQLite and on PostgreSQL, as a user runs it (process start and database open
# included):
#   import   `tradewarden import recs.jsonl`
#   pass 1   `tradewarden process --all` (one paper account per expert, 10,000,000 cash,
#            max_virtual_equity_per_instrument_percent = 0.25; BUY or OVERWEIGHT with
#            confidence >= 60 buys: 725 orders)
#   pass 2   `tradewarden process --all` again (every candidate is now a duplicate)
# and prints every run, then median, min and max per database.
#
# Usage: bench/run.sh [RUNS]      (default 5)
# Env:   TRADEWARDEN_BIN=PATH     use this binary instead of building target/release/tradewarden
#        DBS="sqlite postgres"    which databases (default both)
#        PG_URL=postgres://postgres@127.0.0.1:5432   server for the PostgreSQL runs (a fresh
#                                 database is created and dropped per run)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-5}"
dbs="${DBS:-sqlite postgres}"
pg_url="${PG_URL:-postgres://postgres@127.0.0.1:5432}"

# shellcheck source=bench/common.sh
source "$root/bench/common.sh"

# The generator spaces recommendations one second apart (2,000 s in all) and the default
# lookback is one day: start an hour ago so every created_at is in the past.
start="$(date -u -d '-60 minutes' +%Y-%m-%dT%H:%M:%SZ)"
"$bin" demo gen --experts 20 --symbols 100 --start "$start" > "$work/recs.jsonl"

config() { # $1 = database url
    cat <<TOML
[database]
url = "$1"

[processing]
lock_timeout_ms = 500
lookback_days = 1

[[rulesets]]
name = "confident-buy"

[[rulesets.rules]]
name = "bullish-and-confident"
continue_processing = false
triggers = [{ event = "bullish" }, { event = "confidence", op = ">=", value = 60 }]
actions = [{ action = "buy" }]

[[rulesets.rules]]
name = "overweight-and-confident"
continue_processing = false
triggers = [{ event = "current_rating_overweight" }, { event = "confidence", op = ">=", value = 60 }]
actions = [{ action = "buy" }]
TOML
    for id in $(seq 1 20); do
        cat <<TOML

[[accounts]]
name = "paper-$id"
broker = "paper"
cash = 10000000

[[experts]]
id = $id
name = "bench-$id"
account = "paper-$id"
virtual_equity_percent = 100
max_virtual_equity_per_instrument_percent = 0.25
allow_automated_trade_opening = true
enter_market_ruleset = "confident-buy"
TOML
    done
}

one_run() { # $1 = db kind, $2 = run number; prints "import pass1 pass2 orders"
    local url cfg="$work/bench.toml"
    case "$1" in
        sqlite) rm -f "$work"/bench.db*; url="sqlite://$work/bench.db" ;;
        postgres)
            pg_db="tw_bench_$$_$2"
            psql -q "$pg_url/postgres" -c "CREATE DATABASE $pg_db" > /dev/null
            url="$pg_url/$pg_db" ;;
    esac
    config "$url" > "$cfg"
    "$bin" --config "$cfg" -q init > /dev/null 2>&1
    local imp p1 p2
    imp=$( { t0=$(date +%s%N); "$bin" --config "$cfg" -q import "$work/recs.jsonl" > "$work/import.json" 2> "$work/import.log"; echo $(( ($(date +%s%N) - t0) / 1000000 )); } )
    p1=$( { t0=$(date +%s%N); "$bin" --config "$cfg" -q process --all > "$work/pass1.json" 2> "$work/pass1.log"; echo $(( ($(date +%s%N) - t0) / 1000000 )); } )
    p2=$( { t0=$(date +%s%N); "$bin" --config "$cfg" -q process --all > "$work/pass2.json" 2> "$work/pass2.log"; echo $(( ($(date +%s%N) - t0) / 1000000 )); } )
    local orders
    orders=$(python3 -c "import json,sys; print(sum(len(r['orders']) for r in json.load(open(sys.argv[1]))))" "$work/pass1.json")
    if [[ "$1" == postgres ]]; then
        psql -q "$pg_url/postgres" -c "DROP DATABASE $pg_db" > /dev/null
        pg_db=""
    fi
    echo "$imp $p1 $p2 $orders"
}

for db in $dbs; do
    : > "$work/$db.txt"
    for run in $(seq 1 "$runs"); do
        line=$(one_run "$db" "$run")
        echo "$line" >> "$work/$db.txt"
        read -r imp p1 p2 orders <<< "$line"
        echo "$db run $run: import ${imp} ms, pass 1 ${p1} ms, pass 2 ${p2} ms, orders ${orders}"
    done
done

python3 - "$work" $dbs <<'PY'
import statistics, sys
work, dbs = sys.argv[1], sys.argv[2:]
print()
print(f"{'database':<10} {'what':<8} {'median':>8} {'min':>8} {'max':>8}   (ms, fresh database per run)")
for db in dbs:
    rows = [list(map(int, l.split())) for l in open(f"{work}/{db}.txt") if l.strip()]
    for i, what in enumerate(["import", "pass 1", "pass 2"]):
        xs = [r[i] for r in rows]
        print(f"{db:<10} {what:<8} {statistics.median(xs):>8.0f} {min(xs):>8} {max(xs):>8}")
    orders = sorted({r[3] for r in rows})
    print(f"{db:<10} orders   {', '.join(map(str, orders))}")
PY
