#!/usr/bin/env bash
# Times `tradewarden import` of large inputs and prints its peak memory, on SQLite and on
# PostgreSQL, as a user runs it (process start and database open included), against a fresh
# database per run:
#   200,000 lines  `tradewarden demo gen --experts 20 --symbols 1000 --per-symbol 10`
#   1,000,000 lines `tradewarden demo gen --experts 20 --symbols 5000 --per-symbol 10`
# (20 experts, one paper account each, as bench/run.sh configures them). Prints every run
# (seconds, lines/s, peak RSS), then median, min and max per database and size.
#
# Usage: bench/import.sh [RUNS]      (default 3)
# Env:   TRADEWARDEN_BIN=PATH     use this binary instead of building target/release/tradewarden
#        DBS="sqlite postgres"    which databases (default both)
#        SIZES="200000 1000000"   input sizes in lines (multiples of 200; default both)
#        PG_URL=postgres://postgres@127.0.0.1:5432   server for the PostgreSQL runs (a fresh
#                                 database is created and dropped per run)
#
# Peak RSS is `/usr/bin/time -f %M` when GNU time is installed, else the highest VmHWM read
# from /proc/PID/status while the import runs (sampled every 10 ms, so it may read low).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-3}"
dbs="${DBS:-sqlite postgres}"
sizes="${SIZES:-200000 1000000}"
pg_url="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
experts=20
per_symbol=10

# shellcheck source=bench/common.sh
source "$root/bench/common.sh"

config() { # $1 = database url
    printf '[database]\nurl = "%s"\n' "$1"
    for id in $(seq 1 "$experts"); do
        printf '\n[[accounts]]\nname = "paper-%s"\nbroker = "paper"\ncash = 10000000\n' "$id"
        printf '\n[[experts]]\nid = %s\nname = "bench-%s"\naccount = "paper-%s"\n' "$id" "$id" "$id"
    done
}

# The generator spaces recommendations one second apart: start far enough back that every
# created_at of the largest input is in the past.
for size in $sizes; do
    symbols=$(( size / experts / per_symbol ))
    start="$(date -u -d "-$(( size + 3600 )) seconds" +%Y-%m-%dT%H:%M:%SZ)"
    "$bin" demo gen --experts "$experts" --symbols "$symbols" --per-symbol "$per_symbol" \
        --start "$start" > "$work/recs-$size.jsonl"
done

# Runs the import of $1 with config $2; prints "milliseconds peak_rss_kib".
timed_import() {
    local t0 ms rss
    if [[ -x /usr/bin/time ]]; then
        t0=$(date +%s%N)
        /usr/bin/time -f %M -o "$work/rss" "$bin" --config "$2" -q import "$1" \
            > "$work/import.json" 2> "$work/import.log"
        ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        rss=$(tail -n 1 "$work/rss")
    else
        t0=$(date +%s%N)
        "$bin" --config "$2" -q import "$1" > "$work/import.json" 2> "$work/import.log" &
        local pid=$! hwm
        rss=0
        while kill -0 "$pid" 2> /dev/null; do
            hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2> /dev/null || true)
            [[ -n "$hwm" && "$hwm" -gt "$rss" ]] && rss=$hwm
            sleep 0.01
        done
        wait "$pid"
        ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    fi
    echo "$ms $rss"
}

one_run() { # $1 = db kind, $2 = size, $3 = run number; prints "ms rss_kib"
    local url cfg="$work/bench.toml"
    case "$1" in
        sqlite) rm -f "$work"/bench.db*; url="sqlite://$work/bench.db" ;;
        postgres)
            pg_db="tw_bench_import_$$_$3"
            psql -q "$pg_url/postgres" -c "CREATE DATABASE $pg_db" > /dev/null
            url="$pg_url/$pg_db" ;;
    esac
    config "$url" > "$cfg"
    local result
    result=$(timed_import "$work/recs-$2.jsonl" "$cfg")
    if ! grep -q "\"imported\": $2" "$work/import.json"; then
        echo "import of $2 lines on $1 did not import them all:" >&2
        cat "$work/import.json" "$work/import.log" >&2
        exit 1
    fi
    if [[ "$1" == postgres ]]; then
        psql -q "$pg_url/postgres" -c "DROP DATABASE $pg_db" > /dev/null
        pg_db=""
    fi
    echo "$result"
}

for db in $dbs; do
    for size in $sizes; do
        : > "$work/$db-$size.txt"
        for run in $(seq 1 "$runs"); do
            line=$(one_run "$db" "$size" "$run")
            echo "$line" >> "$work/$db-$size.txt"
            read -r ms rss <<< "$line"
            echo "$db $size lines, run $run: $(( ms )) ms, $(( size * 1000 / (ms > 0 ? ms : 1) )) lines/s, peak RSS $(( rss / 1024 )) MiB"
        done
    done
done

python3 - "$work" "$sizes" $dbs <<'PY'
import statistics, sys
work, sizes, dbs = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
print()
print(f"{'database':<10} {'lines':>9} {'what':<12} {'median':>9} {'min':>9} {'max':>9}")
for db in dbs:
    for size in sizes:
        rows = [list(map(int, l.split())) for l in open(f"{work}/{db}-{size}.txt") if l.strip()]
        ms = [r[0] for r in rows]
        rate = [int(size) * 1000 // max(m, 1) for m in ms]
        rss = [r[1] // 1024 for r in rows]
        for what, xs in (("ms", ms), ("lines/s", rate), ("peak MiB", rss)):
            print(f"{db:<10} {size:>9} {what:<12} {statistics.median(xs):>9.0f} {min(xs):>9} {max(xs):>9}")
PY
