# shellcheck shell=bash
# Helpers for the CLI test scripts: source it after setting BIN (the gpu-als binary).
#   expect_exit CODE ARGS...   run gpu-als ARGS, check the exit code; output in $out/$err
#   expect_full ARGS...        run gpu-als ARGS with stdout on a full device: exit 3 and a
#                              message saying stdout could not be written
#   contains FILE TEXT         FILE holds TEXT (fixed string)
#   lacks FILE TEXT            FILE does not hold TEXT
failures=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect_exit() {
  local want=$1
  shift
  "$BIN" "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL: gpu-als $* exited $got, expected $want"
    echo "  stdout: $(head -c 600 "$tmp/out")"
    echo "  stderr: $(head -c 600 "$tmp/err")"
    failures=$((failures + 1))
    return 1
  fi
  return 0
}

# Only where /dev/full is the real device: some sandboxes lack it, and writing would make a file.
expect_full() {
  if [ ! -c /dev/full ]; then
    echo "note: /dev/full is not a character device here; not checking gpu-als $* >/dev/full"
    return 0
  fi
  "$BIN" "$@" >/dev/full 2>"$tmp/err"
  local got=$?
  if [ "$got" -ne 3 ] || ! grep -qF "cannot write the results to stdout" "$tmp/err"; then
    echo "FAIL: gpu-als $* >/dev/full exited $got, expected 3 saying it cannot write stdout"
    echo "  stderr: $(head -c 600 "$tmp/err")"
    failures=$((failures + 1))
    return 1
  fi
  return 0
}

contains() {
  if ! grep -qF -- "$2" "$1"; then
    echo "FAIL: $(basename "$1") lacks '$2'"
    echo "  it holds: $(head -c 800 "$1")"
    failures=$((failures + 1))
    return 1
  fi
  return 0
}

lacks() {
  if grep -qF -- "$2" "$1"; then
    echo "FAIL: $(basename "$1") holds '$2'"
    failures=$((failures + 1))
    return 1
  fi
  return 0
}

finish() {
  if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
  fi
  echo "all checks passed"
  exit 0
}
