# Shared by scripts/test-*.sh (source it): counters and check helpers. The caller sets WORK (a
# temporary folder) first. Ends with `finish`, which prints `N passed, N failed` and exits
# non-zero when a check failed.

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }
show_log() { sed 's/^/    | /' "$1" | tail -n "${2:-40}"; }

# check NAME CMD...: passes when CMD exits 0 (its output is shown only on failure).
check() {
    local name=$1
    shift
    if "$@" >"$WORK/check.log" 2>&1; then
        ok "$name"
    else
        not_ok "$name"
        show_log "$WORK/check.log"
    fi
}

# expect_exit WANT NAME CMD...: passes when CMD exits with WANT. Keeps its standard output in
# $WORK/last.log and its standard error in $WORK/last.err.
expect_exit() {
    local want=$1 name=$2
    shift 2
    local got=0
    "$@" >"$WORK/last.log" 2>"$WORK/last.err" || got=$?
    if [ "$got" -eq "$want" ]; then
        ok "$name (exit $got)"
    else
        not_ok "$name (exit $got, wanted $want)"
        cat "$WORK/last.log" "$WORK/last.err" | sed 's/^/    | /' | tail -n 40
    fi
}

finish() {
    echo "$passed passed, $failed failed"
    if [ "$failed" -eq 0 ]; then exit 0; else exit 1; fi
}
