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
