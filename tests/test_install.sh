#!/usr/bin/env bash
# The installed library as a user's program sees it: `cmake --install` into a temporary prefix,
# then build tests/install/example.c with nothing but `pkg-config --cflags --libs gpuals` from
# that prefix, run it on the embedded data and check its top 10; and the installed gpu-als runs
# on the installed copy of the data.
# Arguments: the gpu-als binary (at the top of the build tree), the source tree, the build's
# tests directory.
set -u
BIN=$1
SRC=$2
build=$(dirname "$BIN")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "cmake --install"; }
pc_dir=$(dirname "$(find "$tmp/prefix" -name gpuals.pc | head -1)")
[ -f "$pc_dir/gpuals.pc" ] || fail "no gpuals.pc installed"
[ -f "$tmp/prefix/include/gpuals.h" ] || fail "no gpuals.h installed"
lib=$(find "$tmp/prefix" -name libgpuals.a | head -1)
[ -f "$lib" ] || fail "no libgpuals.a installed"

# The archive exports the API alone (an OpenMP named lock aside), so a program may have
# functions of its own called csr_free or idmap_new, or gpuals_put_note (a helper the library
# keeps to itself, though named like the API).
others=$(nm -g --defined-only "$lib" | awk 'NF == 3 && $3 !~ /^gpuals_/ && $3 !~ /^\.gomp_critical/')
[ -z "$others" ] || fail "libgpuals.a exports more than the API: $(echo $others | head -c 300)"
for sym in $(nm -g --defined-only "$lib" | awk 'NF == 3 && $3 ~ /^gpuals_/ { print $3 }'); do
  grep -q "\b$sym(" "$SRC/include/gpuals.h" || fail "libgpuals.a exports $sym, not in gpuals.h"
done

# Build the example as an outside program would (the search path keeps the system's .pc files).
export PKG_CONFIG_PATH=$pc_dir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
flags=$(pkg-config --cflags --libs gpuals) || fail "pkg-config --cflags --libs gpuals"
case "$flags" in *"$SRC"*|*"$build"*) fail "the flags point into the source or build tree: $flags";; esac
${CC:-cc} -std=c11 -o "$tmp/example" "$SRC/tests/install/example.c" $flags 2> "$tmp/cc.log" ||
  { cat "$tmp/cc.log"; fail "the example does not build from the installed files: $flags"; }

# A program with its own function named like one of the library's internal ones links.
printf '%s\n' '#include <gpuals.h>' 'void csr_free(void *p) { (void)p; }' \
  'void gpuals_put_note(void) {}' 'void tmppath_add(void) {}' \
  'int main(void) { gpuals_params p; gpuals_params_default(&p); csr_free(0);' \
  '  gpuals_put_note(); tmppath_add(); return 0; }' \
  > "$tmp/clash.c"
${CC:-cc} -std=c11 -o "$tmp/clash" "$tmp/clash.c" $flags 2> "$tmp/cc.log" && "$tmp/clash" ||
  { cat "$tmp/cc.log"; fail "a program's own csr_free or gpuals_put_note clashes with the library"
  }

data=$tmp/prefix/share/gpu-als/ml-latest-small
[ -f "$data/ratings.csv" ] && [ -f "$data/movies.csv" ] || fail "the embedded data is not installed"
"$tmp/example" "$data/ratings.csv" "$data/movies.csv" > "$tmp/out" 2> "$tmp/err" ||
  { cat "$tmp/err"; fail "the example failed"; }
# Ten recommendations for user 414 and ten for the new user, each line a movie id, a title
# ending in its year and a score; the new user's list holds none of their three films; then
# three metrics in (0, 1], the AUC far above chance.
[ "$(grep -c '^414	' "$tmp/out")" -eq 10 ] && [ "$(grep -c '^new	' "$tmp/out")" -eq 10 ] ||
  { cat "$tmp/out"; fail "expected 10 recommendations for each user"; }
awk -F'\t' '$1 == "414" || $1 == "new" { if (NF != 4 || $2 !~ /^[0-9]+$/ ||
  $3 !~ /\([0-9][0-9][0-9][0-9]\)$/ || $4 + 0 <= 0) bad = 1; next } { metrics++ }
  END { exit bad || metrics != 3 }' "$tmp/out" || { cat "$tmp/out"; fail "malformed output"; }
awk -F'\t' '$1 == "new" && ($2 == 1214 || $2 == 6 || $2 == 608) { exit 1 }' "$tmp/out" ||
  { cat "$tmp/out"; fail "the new user was recommended a film they like"; }
awk -F'\t' '/^(implicit_precision@10|ndcg@10|auc)\t/ { if (!($2 > 0 && $2 <= 1)) bad = 1;
  if ($1 == "auc" && $2 < 0.8) bad = 1; n++ } END { exit bad || n != 3 }' "$tmp/out" ||
  { cat "$tmp/out"; fail "implausible metrics"; }

# The installed CLI, with its data found under the prefix.
GPUALS_DATA_DIR=$data "$tmp/prefix/bin/gpu-als" info -q > "$tmp/info" 2>&1 ||
  { cat "$tmp/info"; fail "the installed gpu-als"; }
grep -q "610 x 9724, 100836 stored" "$tmp/info" || { cat "$tmp/info"; fail "installed info"; }
echo "test_install: ok"
