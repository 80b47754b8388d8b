#!/usr/bin/env bash
# Times `tradewarden import` + `tradewarden process --all` on the issue's workload
# (`tradewarden demo gen --experts 20 --symbols 100`: 2,000 recommendations) against a fresh
# SQLite file, and prints recommendations considered per second (target: > 20,000).
#
# Usage: bench/run.sh [RUNS]      (default 3; each run uses a fresh temp dir and database)
# Env:   TRADEWARDEN_BIN=PATH     use this binary instead of building target/release/tradewarden
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-3}"

if [[ -n "${TRADEWARDEN_BIN:-}" ]]; then
    bin="$TRADEWARDEN_BIN"
else
    echo "building the release binary (a few minutes from clean) ..." >&2
    (cd "$root" && cargo build --release -q -p tradewarden)
    bin="$root/target/release/tradewarden"
fi

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

for run in $(seq 1 "$runs"); do
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    # The generator spaces recommendations one second apart (2,000 s in all) and the default
    # lookback is one day: start an hour ago so every created_at is in the past.
    start="$(date -u -d '-60 minutes' +%Y-%m-%dT%H:%M:%SZ)"
    "$bin" demo gen --experts 20 --symbols 100 --start "$start" > "$work/recs.jsonl"

    {
        cat <<TOML
[database]
url = "sqlite://$work/bench.db"

[processing]
lock_timeout_ms = 500
lookback_days = 1

[[accounts]]
name = "paper"
broker = "paper"
cash = 1000000
minimum_equity_threshold_percent = 5

[[rulesets]]
name = "confident-buy"

[[rulesets.rules]]
name = "bullish-and-confident"
continue_processing = false
triggers = [{ event = "bullish" }, { event = "confidence", op = ">=", value = 60 }]
actions = [{ action = "buy" }]
TOML
        for id in $(seq 1 20); do
            cat <<TOML

[[experts]]
id = $id
name = "bench-$id"
account = "paper"
virtual_equity_percent = 5
max_virtual_equity_per_instrument_percent = 10
allow_automated_trade_opening = true
enter_market_ruleset = "confident-buy"
TOML
        done
    } > "$work/bench.toml"

    cd "$work"
    t0=$(date +%s%N)
    "$bin" --config bench.toml import recs.jsonl > import.json 2> import.log
    import_ms=$(ms_since "$t0")
    t1=$(date +%s%N)
    "$bin" --config bench.toml process --all > process.json 2> process.log
    process_ms=$(ms_since "$t1")
    cd - > /dev/null

    python3 - "$work" "$import_ms" "$process_ms" "$run" <<'PY'
import json, sys
work, import_ms, process_ms, run = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
imp = json.load(open(f"{work}/import.json"))
reports = json.load(open(f"{work}/process.json"))
considered = sum(r["counts"]["considered"] for r in reports)
orders = sum(len(r["orders"]) for r in reports)
statuses = sorted({r["status"] for r in reports})
total_ms = import_ms + process_ms
rate = considered / (total_ms / 1000) if total_ms else float("inf")
print(f"run {run}:")
print(f"  recommendations imported: {imp['imported']} (already present {imp['already_present']})")
print(f"  considered: {considered} over {len(reports)} experts (status {', '.join(statuses)})")
print(f"  orders created: {orders}")
print(f"  import ms: {import_ms}")
print(f"  process ms: {process_ms}")
print(f"  total ms: {total_ms}")
print(f"  considered per second: {rate:,.0f} (target > 20,000)")
PY
    rm -rf "$work"
    trap - EXIT
done
