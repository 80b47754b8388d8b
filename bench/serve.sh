#!/usr/bin/env bash
# Loads `tradewarden serve` over loopback with wrk (issue 11's benchmarks), on SQLite and on
# PostgreSQL, against a fresh database per database kind:
#   POST /api/v1/recommendations   batches of 100 new recommendations (each request's own
#                                  symbols and times, so every batch is stored, none a replay)
#   GET  /api/v1/transactions      the newest 100 of 1,000 open transactions (limit=100)
# Prints requests per second and the p50 / p99 latency wrk measured, per route and database.
#
# Usage: bench/serve.sh [SECONDS]   (default 10 per route and database)
# Env:   TRADEWARDEN_BIN=PATH     use this binary instead of building target/release/tradewarden
#        DBS="sqlite postgres"    which databases (default both)
#        CONNECTIONS=8 THREADS=2  wrk's connections and threads
#        PG_URL=postgres://postgres@127.0.0.1:5432   server for the PostgreSQL runs (a fresh
#                                 database is created and dropped)
# Needs wrk (Debian: apt-get install wrk).
set -euo pipefail
shopt -s inherit_errexit

root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-10}"
dbs="${DBS:-sqlite postgres}"
connections="${CONNECTIONS:-8}"
threads="${THREADS:-2}"
pg_url="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
command -v wrk > /dev/null || { echo "bench/serve.sh needs wrk (apt-get install wrk)" >&2; exit 2; }

# shellcheck source=bench/common.sh
source "$root/bench/common.sh"

token="bench-$(date +%s%N)"
export TRADEWARDEN_ADMIN_TOKEN="$token"
server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill -TERM "$server_pid" 2> /dev/null || true
        wait "$server_pid" 2> /dev/null || true
        server_pid=""
    fi
}
trap 'stop_server; cleanup' EXIT

# 1,000 BUYs of 1,000 symbols in the last hour: the open transactions the GET lists.
buys 1000 T 4 100 > "$work/recs.jsonl"

config() { # $1 = database url
    cat <<TOML
[database]
url = "$1"

[processing]
refresh_interval_seconds = 86400

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
enter_market_ruleset = "buy"

[[rulesets]]
name = "buy"

[[rulesets.rules]]
name = "buy"
triggers = [{ event = "bullish" }]
actions = [{ action = "buy" }]
TOML
}

# Each request a batch of 100 recommendations no other request sends: the thread's number,
# a request counter and the batch index make the symbol, the second the time.
cat > "$work/post.lua" <<'LUA'
local counter = 0
local threads = 0
-- `id` is a global of each thread's own Lua state, set here before the thread starts.
function setup(thread)
    threads = threads + 1
    thread:set("id", threads)
end
function request()
    counter = counter + 1
    local items = {}
    for i = 1, 100 do
        local n = (counter * 100 + i)
        local symbol = string.format("B%d%06d", id, n % 1000000)
        local t = os.time() - 600 - (n % 3000)
        items[i] = string.format(
            '{"expert_id":1,"symbol":"%s","action":"BUY","confidence":60,"expected_profit_percent":5,"price_at_date":"50","risk_level":"LOW","time_horizon":"SHORT_TERM","created_at":"%s"}',
            symbol, os.date("!%Y-%m-%dT%H:%M:%SZ", t))
    end
    return wrk.format("POST", "/api/v1/recommendations", nil, "[" .. table.concat(items, ",") .. "]")
end
LUA

# Prints "rps p50_ms p99_ms non2xx" from a wrk --latency report on stdin.
summarise() {
    python3 -c '
import re, sys
t = sys.stdin.read()
def ms(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[u]
rps = re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)
p50 = ms(re.search(r"\s50%\s+(\S+)", t).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", t).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(rps, f"{p50:.2f}", f"{p99:.2f}", bad.group(1) if bad else 0)
'
}

: > "$work/results.txt"
for db in $dbs; do
    case "$db" in
        sqlite) url="sqlite://$work/bench.db" ;;
        postgres)
            pg_db="tw_serve_bench_$$"
            psql -q "$pg_url/postgres" -c "CREATE DATABASE $pg_db" > /dev/null
            url="$pg_url/$pg_db" ;;
    esac
    config "$url" > "$work/bench.toml"
    "$bin" --config "$work/bench.toml" -q import "$work/recs.jsonl" > /dev/null
    "$bin" --config "$work/bench.toml" -q process --all > /dev/null
    "$bin" --config "$work/bench.toml" -q --log-level warn serve --bind 127.0.0.1:0 > "$work/serve.out" 2> "$work/serve.log" &
    server_pid=$!
    addr=""
    for _ in $(seq 1 100); do
        addr=$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$work/serve.out" | head -n 1)
        [[ -n "$addr" ]] && break
        sleep 0.1
    done
    [[ -n "$addr" ]] || { echo "serve did not start:" >&2; tail -n 5 "$work/serve.log" >&2; exit 1; }
    auth="Authorization: Bearer $token"
    post=$(wrk -t "$threads" -c "$connections" -d "${seconds}s" --latency -H "$auth" -H "Content-Type: application/json" \
        -s "$work/post.lua" "http://$addr" | summarise)
    get=$(wrk -t "$threads" -c "$connections" -d "${seconds}s" --latency -H "$auth" \
        "http://$addr/api/v1/transactions?limit=100" | summarise)
    echo "$db POST/recommendations(100) $post" >> "$work/results.txt"
    echo "$db GET/transactions?limit=100 $get" >> "$work/results.txt"
    stop_server
    if [[ "$db" == postgres ]]; then
        psql -q "$pg_url/postgres" -c "DROP DATABASE $pg_db" > /dev/null
        pg_db=""
    fi
done

echo
echo "tradewarden serve on loopback, wrk -t$threads -c$connections, ${seconds} s per line"
printf '%-10s %-30s %10s %10s %10s %8s\n' database route req/s p50_ms p99_ms non-2xx
while read -r db route rps p50 p99 bad; do
    printf '%-10s %-30s %10s %10s %10s %8s\n' "$db" "$route" "$rps" "$p50" "$p99" "$bad"
done < "$work/results.txt"
