#!/usr/bin/env bash
# The walkthrough on the embedded data: the five default favourites are found, the demo user
# joins (610 x 8,452, 81,768 stored), training prints one line per iteration, and the items
# most similar to The Empire Strikes Back include another Star Wars film in the top 5.
# Arguments: the gpu-als binary, the source tree, the build's tests directory.
BIN=$1
SRC=$2
. "$SRC/tests/cli_lib.sh"

expect_exit 0 --iters 15 || finish
for t in "Star Wars: Episode V - The Empire Strikes Back (1980)" \
         "Star Wars: Episode IV - A New Hope (1977)" \
         "Star Wars: Episode VI - Return of the Jedi (1983)" "Matrix, The (1999)" \
         "Toy Story (1995)"; do
  contains "$tmp/out" "  $t"
done
contains "$tmp/out" "609 x 8452, 81763 stored"
contains "$tmp/out" "With the demo user: 610 x 8452, 81768 stored"
[ "$(grep -c '^  iter ' "$tmp/out")" -eq 15 ] || { echo "FAIL: iteration lines";
  failures=$((failures + 1)); }
sed -n '/^Items most similar to/,/^$/p' "$tmp/out" | sed -n '2,6p' >"$tmp/top5"
contains "$tmp/top5" "Star Wars"
sed -n '/^Top 20 recommendations/,/^$/p' "$tmp/out" >"$tmp/rec"
[ "$(grep -c '^ *[0-9]*  ' "$tmp/rec")" -eq 20 ] || { echo "FAIL: 20 recommendations";
  failures=$((failures + 1)); }
lacks "$tmp/rec" "Toy Story (1995)"
contains "$tmp/out" "Why "
contains "$tmp/out" "(they differ: "
lacks "$tmp/out" "nan"
lacks "$tmp/err" "no usable GPU"

# --like replaces the favourites; an ambiguous or unknown title fails with the candidates.
expect_exit 0 --iters 2 -q --like "Heat (1995)" --like "alien (1979)" -n 5 && contains "$tmp/out" "Heat (1995)"
expect_exit 8 --iters 2 --like "Star Wars" && contains "$tmp/err" "Star Wars: Episode IV"
expect_exit 7 --iters 2 --like "No Such Film Whatsoever (2042)"
expect_exit 0 --iters 2 -q --history "$tmp/walk.csv"
[ "$(wc -l <"$tmp/walk.csv")" -eq 3 ] && contains "$tmp/walk.csv" "iteration,seconds,loss" \
  || { echo "FAIL: walkthrough --history"; failures=$((failures + 1)); }
expect_exit 0 --iters 3 --json -q
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d['recommendations'])==20 \
and len(d['iterations'])==3" "$tmp/out" || { echo "FAIL: --json"; failures=$((failures + 1)); }

# One iteration is said in the singular; a stdout that cannot be written is an i/o error.
expect_exit 0 --iters 1 -q && contains "$tmp/out" ", 1 iteration" && lacks "$tmp/out" "1 iterations"
expect_full --iters 1 -q

finish
