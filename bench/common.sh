# Shared by the bench scripts (sourced, not run): the binary to time, a work directory, and the
# cleanup of a PostgreSQL database a run created. Needs `root` and `pg_url` set.

if [[ -n "${TRADEWARDEN_BIN:-}" ]]; then
    bin="$TRADEWARDEN_BIN"
else
    echo "building the release binary (a few minutes from clean) ..." >&2
    (cd "$root" && cargo build --release -q -p tradewarden)
    bin="${CARGO_TARGET_DIR:-$root/target}/release/tradewarden"
fi

work="$(mktemp -d)"
pg_db=""
cleanup() {
    if [[ -n "$pg_db" ]]; then
        psql -q "$pg_url/postgres" -c "DROP DATABASE IF EXISTS $pg_db" > /dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Prints N BUY recommendations of expert 1, one per symbol (PREFIX then the number, WIDTH
# digits), priced at PRICE, a millisecond apart from an hour ago (inside the default one-day
# lookback). Usage: buys N PREFIX WIDTH PRICE > FILE
buys() {
    python3 - "$@" <<'PY'
import datetime, json, sys
n, prefix, width, price = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
for i in range(n):
    at = (start + datetime.timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    print(json.dumps({
        "expert_id": 1, "symbol": f"{prefix}{i:0{width}d}", "action": "BUY", "confidence": 80,
        "expected_profit_percent": 10, "price_at_date": price, "risk_level": "MEDIUM",
        "time_horizon": "SHORT_TERM", "created_at": at,
    }))
PY
}
