# Helpers for the CLI test scripts: source it after setting BIN (the gpu-als binary).
#   expect_exit CODE ARGS...   run gpu-als ARGS, check the exit code; output in $out/$err
#   contains FILE TEXT         FILE holds TEXT (fixed string)
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
