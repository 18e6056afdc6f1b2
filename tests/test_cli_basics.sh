#!/usr/bin/env bash
# gpu-als: help, version, usage errors, `info` on good and bad input, `train` and model files.
# Arguments: the gpu-als binary, the source tree, the build's tests directory.
BIN=$1
SRC=$2
. "$SRC/tests/cli_lib.sh"
FIX=$SRC/tests/fixtures/cli
DATA=$SRC/data/ml-latest-small

# Help and version go to stdout with exit 0.
expect_exit 0 --help && contains "$tmp/out" "Usage: gpu-als" && contains "$tmp/out" "Exit codes"
expect_exit 0 --version && contains "$tmp/out" "gpu-als "
for c in train recommend similar score explain info eval tune; do
  expect_exit 0 "$c" --help && contains "$tmp/out" "Usage: gpu-als $c"
done

# Usage errors: exit 2, prefixed message on stderr, nothing on stdout.
expect_exit 2 --no-such-option && contains "$tmp/err" "gpu-als: unknown option '--no-such-option'"
expect_exit 2 frobnicate && contains "$tmp/err" "gpu-als: unknown command 'frobnicate'"
expect_exit 2 info --min-rating abc && contains "$tmp/err" "--min-rating expects a finite number"
expect_exit 2 train --out "$tmp/m" --factors 0 && contains "$tmp/err" "--factors must be between"
expect_exit 2 train --out "$tmp/m" --solver lu && contains "$tmp/err" "cg, cholesky"
expect_exit 2 train && contains "$tmp/err" "train needs --out DIR"
expect_exit 2 info --ratings && contains "$tmp/err" "needs a value"
[ -s "$tmp/out" ] && { echo "FAIL: a usage error printed on stdout"; failures=$((failures + 1)); }

# info on the embedded data (610 users, 9,724 movies, 100,836 ratings; with >= 3 kept: 81,763).
expect_exit 0 info -q && contains "$tmp/out" "610 x 9724, 100836 stored"
expect_exit 0 info --min-rating 3 && contains "$tmp/out" "609 x 8452, 81763 stored" \
  && contains "$tmp/out" "Shawshank Redemption"
expect_exit 0 info --json --ratings "$DATA/ratings.csv" --movies "$DATA/movies.csv"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['stored']==100836 and \
d['users']==610 and d['items']==9724 and len(d['popular'])==10, d" "$tmp/out" \
  || { echo "FAIL: info --json"; failures=$((failures + 1)); }

# info on bad input: documented exit codes, file named in the message.
expect_exit 3 info --ratings "$tmp/missing.csv" && contains "$tmp/err" "missing.csv"
expect_exit 3 info --ratings "$tmp" && contains "$tmp/err" "$tmp"
: >"$tmp/empty.tsv"
expect_exit 5 info --ratings "$tmp/empty.tsv" && contains "$tmp/err" "empty.tsv"
printf 'u1\ti1\t5\nu2\ti2\tlots\nu3\ti3\t4\n' >"$tmp/bad.tsv"
expect_exit 4 info --ratings "$tmp/bad.tsv" && contains "$tmp/err" "bad.tsv:2"
expect_exit 0 info --ratings "$tmp/bad.tsv" --skip-bad-lines && contains "$tmp/err" "skipped 1"
expect_exit 5 info --ratings "$FIX/tiny.tsv" --min-rating 6
# A first line with integer ids and a bad value is a bad data line, not a header.
printf '1,2,0x10\n1,3,5\n' >"$tmp/badfirst.csv"
expect_exit 4 info --ratings "$tmp/badfirst.csv" && contains "$tmp/err" "badfirst.csv:1"
# A first line of string ids and a value that is not a number is read as a header, and said so.
printf 'alice,apple,five\nbob,pear,3\n' >"$tmp/guessed.csv"
expect_exit 0 info --ratings "$tmp/guessed.csv" \
  && contains "$tmp/err" "guessed.csv:1: read as a header line, not data: 'alice,apple,five'"
# train refuses, before training, to write over something that is not a model.
expect_exit 3 train --ratings "$FIX/tiny.tsv" --out "$FIX/tiny.tsv" --iters 1000000
mkdir -p "$tmp/notmodel" && : >"$tmp/notmodel/keep.txt"
expect_exit 3 train --ratings "$FIX/tiny.tsv" --out "$tmp/notmodel" --iters 1000000 \
  && contains "$tmp/err" "not a gpu-als model"

# train: a model directory with every file; loading a damaged one names the file.
expect_exit 0 train --ratings "$FIX/tiny.tsv" --out "$tmp/m" --factors 3 --iters 3 -q
for f in meta.json user_factors.npy item_factors.npy users.tsv items.tsv indptr.npy \
         indices.npy data.npy; do
  [ -f "$tmp/m/$f" ] || { echo "FAIL: model lacks $f"; failures=$((failures + 1)); }
done
ls "$tmp" | grep -q "tmp-" && { echo "FAIL: temporary files left"; failures=$((failures + 1)); }
# ...and refuses, before training, a directory whose meta.json is not ours, a model directory
# holding another file, and a symbolic link; none of them loses a file.
mkdir -p "$tmp/proj" && echo '{"name": "mine"}' >"$tmp/proj/meta.json" && echo x >"$tmp/proj/a.tex"
expect_exit 3 train --ratings "$FIX/tiny.tsv" --out "$tmp/proj" --iters 1000000 \
  && contains "$tmp/err" "it holds a.tex, which is not a model file"
rm "$tmp/proj/a.tex"
expect_exit 3 train --ratings "$FIX/tiny.tsv" --out "$tmp/proj/" --iters 1000000 \
  && contains "$tmp/err" "it has no meta.json of a gpu-als model"
cp -r "$tmp/m" "$tmp/mplus" && echo x >"$tmp/mplus/notes.txt"
expect_exit 3 train --ratings "$FIX/tiny.tsv" --out "$tmp/mplus" --iters 1000000 \
  && contains "$tmp/err" "it holds notes.txt"
ln -s "$tmp/m" "$tmp/mlink"
expect_exit 3 train --ratings "$FIX/tiny.tsv" --out "$tmp/mlink" --iters 1000000 \
  && contains "$tmp/err" "it is a symbolic link"
[ -f "$tmp/proj/meta.json" ] && [ -f "$tmp/mplus/notes.txt" ] && [ -f "$tmp/m/meta.json" ] \
  || { echo "FAIL: a refused --out lost a file"; failures=$((failures + 1)); }
expect_exit 0 train --ratings "$FIX/tiny.tsv" --out "$tmp/m" --factors 3 --iters 3 --json
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['users']==4" "$tmp/out" \
  || { echo "FAIL: train --json"; failures=$((failures + 1)); }
cp -r "$tmp/m" "$tmp/bad"
printf '\x01' | dd of="$tmp/bad/item_factors.npy" bs=1 seek=200 conv=notrunc status=none
expect_exit 6 score --model "$tmp/bad" alice apple && contains "$tmp/err" "item_factors.npy"

# --history inside the --out model directory, or at its path, would stand in the save's way:
# refused before any work, nothing created.
expect_exit 0 train --ratings "$FIX/tiny.tsv" --factors 2 --iters 1 --out "$tmp/hm" -q
expect_exit 2 train --ratings "$FIX/tiny.tsv" --factors 2 --iters 1 --out "$tmp/hm" \
  --history "$tmp/hm/h.csv" && contains "$tmp/err" "is inside the model directory"
[ ! -e "$tmp/hm/h.csv" ] || { echo "FAIL: a refused train wrote its history into the model";
                              failures=$((failures + 1)); }
expect_exit 2 train --ratings "$FIX/tiny.tsv" --factors 2 --iters 1 --out "$tmp/hm2/" \
  --history "$tmp/hm2" && contains "$tmp/err" "is the same path as the model directory"
[ ! -e "$tmp/hm2" ] || { echo "FAIL: a refused train left $tmp/hm2"; failures=$((failures + 1)); }
ln -s hm/h.csv "$tmp/hlink"
expect_exit 2 train --ratings "$FIX/tiny.tsv" --factors 2 --iters 1 --out "$tmp/hm" \
  --history "$tmp/hlink" && contains "$tmp/err" "is inside the model directory"

# A history file that cannot be written stops training at once (exit 3), not at the end.
if [ -c /dev/full ]; then
  timeout 60 "$BIN" train --min-rating 3 --factors 8 --iters 100000 --out "$tmp/hfull" \
    --history /dev/full >"$tmp/out" 2>"$tmp/err"
  code=$?
  [ "$code" -eq 3 ] && contains "$tmp/err" "cannot write the history file /dev/full" \
    || { echo "FAIL: --history /dev/full exited $code"; failures=$((failures + 1)); }
fi

# A user who only disliked items has nothing to rank, with either solver, and says so; among
# all users such a user is left out with a note.
printf 'u1,i1,-2\nu1,i2,-1\nu2,i1,3\nu2,i2,1\nu2,i3,2\nu3,i3,1\n' > "$tmp/disliked.csv"
for solver in cg cholesky; do
  expect_exit 5 recommend --ratings "$tmp/disliked.csv" --user u1 --factors 2 --iters 2 \
    --solver "$solver" -q && contains "$tmp/err" "only disliked items"
done
expect_exit 0 recommend --ratings "$tmp/disliked.csv" --all-users --factors 2 --iters 2 \
  && contains "$tmp/err" "1 user with nothing to rank left out" && lacks "$tmp/out" "u1"
# ...and is like no one (its factors are rounding noise), nor is anyone like it.
expect_exit 5 similar --ratings "$tmp/disliked.csv" --user u1 --factors 2 --iters 2 -q \
  && contains "$tmp/err" "user u1 has no interaction with a positive confidence"
expect_exit 0 similar --ratings "$tmp/disliked.csv" --user u2 --factors 2 --iters 2 -q \
  && contains "$tmp/out" "u3" && lacks "$tmp/out" "u1"

# On a 1-10 scale kept from 6 up, a --like counts as a rating of 6 (not 5, which the model's
# min_rating would drop), in recommend on a saved model as in the walkthrough.
printf 'u1,a,9\nu1,b,7\nu2,a,6\nu2,c,10\nu3,b,8\nu3,c,6\nu3,d,2\nu4,d,9\nu4,a,7\n' > "$tmp/ten.csv"
expect_exit 0 train --ratings "$tmp/ten.csv" --min-rating 6 --factors 2 --iters 2 -q \
  --out "$tmp/ten-model"
expect_exit 0 recommend --model "$tmp/ten-model" --like a --like b -q
expect_exit 0 --ratings "$tmp/ten.csv" --min-rating 6 --like a --like b --factors 2 --iters 2 \
  && contains "$tmp/out" "each rated 6"

# An id holding a tab (a quoted CSV field) is one TSV field in the results, escaped as \t.
printf 'c,x,4\n"a\tb",x,5\n"a\tb",y,3\nc,z,5\nd,y,5\nd,z,1\n' > "$tmp/tabid.csv"
expect_exit 0 recommend --ratings "$tmp/tabid.csv" --all-users --factors 2 --iters 2 -q \
  && contains "$tmp/out" 'a\tb	1	'
awk -F'\t' 'NF != 5 { bad = 1 } END { exit bad }' "$tmp/out" \
  || { echo "FAIL: recommend rows do not all have the header's 5 columns";
       failures=$((failures + 1)); }

# A numerical failure names the row by its raw id: reg 0 leaves user a's exact system singular.
printf 'a,x,1\na,y,1\nb,x,1\n' > "$tmp/singular.csv"
expect_exit 9 train --ratings "$tmp/singular.csv" --reg 0 --solver cholesky --factors 4 \
  --iters 1 --out "$tmp/singular" \
  && contains "$tmp/err" "singular system for user 'a' at iteration 1"
expect_exit 3 score --model "$tmp/nothing-here" alice apple
expect_exit 0 train --ratings "$FIX/tiny.tsv" --out "$tmp/h" --factors 2 --iters 4 -q \
  --history "$tmp/hist.csv"
[ "$(wc -l <"$tmp/hist.csv")" -eq 5 ] && contains "$tmp/hist.csv" "iteration,seconds,loss" \
  || { echo "FAIL: history file"; failures=$((failures + 1)); }

# --iters 0 would save an untrained model: a usage error. Counts of one are singular.
expect_exit 2 train --ratings "$FIX/tiny.tsv" --out "$tmp/zero" --iters 0 \
  && contains "$tmp/err" "--iters must be between 1"
[ -e "$tmp/zero" ] && { echo "FAIL: --iters 0 saved a model"; failures=$((failures + 1)); }
expect_exit 0 train --ratings "$FIX/tiny.tsv" --out "$tmp/one" --factors 1 --iters 1 \
  && contains "$tmp/out" "1 factor, 1 iteration in" && lacks "$tmp/out" "iterations"

# Results that cannot reach stdout (a full device) are an i/o error, whatever the command.
expect_full info -q
expect_full info --json
expect_full train --ratings "$FIX/tiny.tsv" --out "$tmp/full" --factors 2 --iters 1
expect_full --version
expect_full --iters 1 --factors 8 --json -q
expect_full train --help

# The --history file gets each row as its iteration completes (the row comes before the
# iteration's line on stderr): a run stopped partway keeps every row it reported.
"$BIN" train --min-rating 3 --factors 64 --iters 100000 --device cpu --out "$tmp/long" \
  --history "$tmp/long.csv" >/dev/null 2>"$tmp/long.err" &
pid=$!
for _ in $(seq 300); do
  [ "$(grep -c '^iter ' "$tmp/long.err")" -ge 3 ] && break
  sleep 0.1
done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
seen=$(grep -c '^iter ' "$tmp/long.err")
rows=$(($(cat "$tmp/long.csv" 2>/dev/null | wc -l) - 1))
[ "$seen" -ge 3 ] && [ "$rows" -ge "$seen" ] \
  || { echo "FAIL: stopped after $seen iterations, the history has $rows rows";
       failures=$((failures + 1)); }

# A signal while results are being written removes the half-written temporary file (the
# results go to a temporary name beside --out, renamed only when complete): the process dies
# of the signal (143 for SIGTERM) and leaves nothing beside --out.
mkdir "$tmp/sig"
"$BIN" recommend --min-rating 3 --factors 8 --iters 1 --all-users -n 9000 -q \
  --out "$tmp/sig/recs.tsv" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 600); do
  compgen -G "$tmp/sig/recs.tsv.tmp-*" >/dev/null && break
  sleep 0.05
done
if compgen -G "$tmp/sig/recs.tsv.tmp-*" >/dev/null; then
  kill -TERM "$pid"
  wait "$pid"
  got=$?
  left=$(ls -A "$tmp/sig")
  [ "$got" -eq 143 ] && [ -z "$left" ] \
    || { echo "FAIL: SIGTERM while writing --out: exit $got, left: $left";
         failures=$((failures + 1)); }
else
  kill "$pid" 2>/dev/null
  echo "FAIL: recommend --all-users --out never created its temporary file"
  failures=$((failures + 1))
fi

# A model larger than the file size limit (ulimit -f) is a write error, exit 3, with nothing
# left beside --out (not a death by SIGXFSZ with the temporary directory left behind).
mkdir "$tmp/fsz"
( ulimit -f 1; "$BIN" train --min-rating 3 --factors 8 --iters 1 -q --out "$tmp/fsz/m" \
    >/dev/null 2>"$tmp/fsz.err" )
got=$?
left=$(ls -A "$tmp/fsz")
[ "$got" -eq 3 ] && [ -z "$left" ] && grep -q "File too large" "$tmp/fsz.err" \
  || { echo "FAIL: over the file size limit: exit $got, left: $left, $(cat "$tmp/fsz.err")";
       failures=$((failures + 1)); }

# --plot draws SVG and says so for another extension, before any work.
expect_exit 2 eval --plot "$tmp/curves.png" --iters 1 && contains "$tmp/err" "ending in .svg"

finish
