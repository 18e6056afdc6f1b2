#!/usr/bin/env bash
# gpu-als recommend, similar, score and explain on a small saved model, and their failures.
# Arguments: the gpu-als binary, the source tree, the build's tests directory.
BIN=$1
SRC=$2
. "$SRC/tests/cli_lib.sh"
FIX=$SRC/tests/fixtures/cli

expect_exit 0 train --ratings "$FIX/tiny.tsv" --out "$tmp/m" --factors 4 --iters 10 \
  --solver cholesky -q || finish
M=(--model "$tmp/m")

# recommend never returns a liked item, and returns fewer rows (saying so) when N is too big:
# alice has 3 of the 6 items, so 3 candidates remain.
expect_exit 0 recommend "${M[@]}" --user alice -n 10
[ "$(($(wc -l <"$tmp/out") - 1))" -eq 3 ] || { echo "FAIL: alice got $(cat "$tmp/out")";
  failures=$((failures + 1)); }
for liked in apple banana cherry; do
  cut -f3 "$tmp/out" | grep -qx "$liked" && { echo "FAIL: liked $liked returned";
    failures=$((failures + 1)); }
done
contains "$tmp/err" "only 3 candidates remain"
expect_exit 0 recommend "${M[@]}" --user alice -n 10 --include-liked
[ "$(($(wc -l <"$tmp/out") - 1))" -eq 6 ] || { echo "FAIL: --include-liked";
  failures=$((failures + 1)); }
printf 'date\n' >"$tmp/deny.txt"
expect_exit 0 recommend "${M[@]}" --user alice --deny "$tmp/deny.txt" && lacks "$tmp/out" "date"
expect_exit 0 recommend "${M[@]}" --all-users -n 2 --json
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d)==4 and \
all(r['returned']<=2 for r in d)" "$tmp/out" || { echo "FAIL: --all-users --json";
  failures=$((failures + 1)); }
expect_exit 0 recommend "${M[@]}" --like apple --like date -n 3 && lacks "$tmp/out" "apple"
expect_exit 0 recommend "${M[@]}" --all-users --out "$tmp/all.tsv"
[ "$(wc -l <"$tmp/all.tsv")" -gt 4 ] || { echo "FAIL: --out"; failures=$((failures + 1)); }
# The batched path for many users never returns a liked item either.
leaks=$(awk -F'\t' 'NR == FNR { liked[$1 "\t" $2] = 1; next }
                    FNR > 1 && (($1 "\t" $3) in liked) { print }' "$FIX/tiny.tsv" "$tmp/all.tsv")
[ -z "$leaks" ] || { echo "FAIL: --all-users returned liked items: $leaks"; failures=$((failures + 1)); }
printf 'carol\nbob\n' >"$tmp/users.txt"
expect_exit 0 recommend "${M[@]}" --users "$tmp/users.txt" -n 1
[ "$(cut -f1 "$tmp/out" | tr '\n' ' ')" = "user carol bob " ] || { echo "FAIL: --users order";
  failures=$((failures + 1)); }
# ...with white space around the ids, CRLF line ends and blank lines.
printf '  carol \r\n\n \t\r\nbob\t\r\n' >"$tmp/users-ws.txt"
expect_exit 0 recommend "${M[@]}" --users "$tmp/users-ws.txt" -n 1
[ "$(cut -f1 "$tmp/out" | tr '\n' ' ')" = "user carol bob " ] || { echo "FAIL: --users trimming";
  failures=$((failures + 1)); }
# ...and with a UTF-8 byte order mark before the first id.
printf '\xef\xbb\xbfcarol\nbob\n' >"$tmp/users-bom.txt"
expect_exit 0 recommend "${M[@]}" --users "$tmp/users-bom.txt" -n 1
[ "$(cut -f1 "$tmp/out" | tr '\n' ' ')" = "user carol bob " ] || { echo "FAIL: --users BOM";
  failures=$((failures + 1)); }

# Unknown users and items: exit 7 with the closest matches.
expect_exit 7 recommend "${M[@]}" --user alicia && contains "$tmp/err" "alice"
expect_exit 7 similar "${M[@]}" aple && contains "$tmp/err" "apple"
expect_exit 2 recommend "${M[@]}"
expect_exit 2 recommend "${M[@]}" --user alice --all-users

# similar leaves out the query unless asked, cosine in [-1, 1].
expect_exit 0 similar "${M[@]}" apple -n 10 && lacks "$tmp/out" "	apple	"
[ "$(($(wc -l <"$tmp/out") - 1))" -eq 5 ] || { echo "FAIL: similar rows";
  failures=$((failures + 1)); }
expect_exit 0 similar "${M[@]}" apple --include-self -n 1 && contains "$tmp/out" "1	apple	1.0000"
expect_exit 0 similar "${M[@]}" --user bob -n 2

# score and explain; explain's total equals the score for an exactly solved user (to print
# precision), checked through --json.
expect_exit 0 score "${M[@]}" alice date bob apple && contains "$tmp/out" "alice	date	"
printf 'alice\tdate\ncarol\tfig\n' >"$tmp/pairs.tsv"
expect_exit 0 score "${M[@]}" --pairs "$tmp/pairs.tsv" --json
expect_exit 2 score "${M[@]}" alice
expect_exit 0 explain "${M[@]}" alice date --json
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); \
assert len(d['contributions'])==3, d" "$tmp/out" || { echo "FAIL: explain --json";
  failures=$((failures + 1)); }
expect_exit 7 explain "${M[@]}" zed date

# Lists given as files: a directory, an empty file and a malformed line have their own codes.
expect_exit 3 score "${M[@]}" --pairs "$tmp"
: >"$tmp/empty.txt"
expect_exit 5 score "${M[@]}" --pairs "$tmp/empty.txt"
printf '  alice \t date \r\n\n' >"$tmp/pairs-ws.tsv"
expect_exit 0 score "${M[@]}" --pairs "$tmp/pairs-ws.tsv" && contains "$tmp/out" "alice	date	"
printf 'alice\tdate\t9\n' >"$tmp/pairs3.tsv"
expect_exit 4 score "${M[@]}" --pairs "$tmp/pairs3.tsv" && contains "$tmp/err" "pairs3.tsv:1"
expect_exit 3 recommend "${M[@]}" --all-users --deny "$tmp"

# A failing command prints no partial table; output paths are checked before any work.
expect_exit 7 score "${M[@]}" alice date nobody date
[ -s "$tmp/out" ] && { echo "FAIL: partial output"; failures=$((failures + 1)); }
expect_exit 3 recommend "${M[@]}" --all-users --out "$tmp/no/such/dir/r.tsv" \
  && contains "$tmp/err" "--out"
expect_exit 3 train --ratings "$FIX/tiny.tsv" --out "$tmp/no/such/dir/m" --iters 1000000
expect_exit 3 train --ratings "$FIX/tiny.tsv" --out "$tmp/m2" --history "$tmp"

# A saved model takes no data or training options.
expect_exit 2 recommend "${M[@]}" --user alice --factors 8 && contains "$tmp/err" "--factors"
# ...and says so before anything about the device (with or without a GPU there).
expect_exit 2 recommend "${M[@]}" --user alice --iters 1 --device gpu \
  && contains "$tmp/err" "--iters does not apply to a saved model"

# --device is the same on every command. auto and cpu always work, and the steps with no GPU
# implementation say with -v (and only then) that they ran on the CPU.
for dev in auto cpu; do
  expect_exit 0 info --ratings "$FIX/tiny.tsv" --device $dev
  expect_exit 0 similar "${M[@]}" apple --device $dev
  expect_exit 0 score "${M[@]}" alice date --device $dev && lacks "$tmp/err" "on the CPU"
  expect_exit 0 explain "${M[@]}" alice date --device $dev
  expect_exit 0 recommend "${M[@]}" --like apple --device $dev && lacks "$tmp/err" "on the CPU"
done
expect_exit 0 info --ratings "$FIX/tiny.tsv" -v && contains "$tmp/err" "on the CPU"
expect_exit 0 similar "${M[@]}" apple -v && contains "$tmp/err" "similar items on the CPU"
expect_exit 0 score "${M[@]}" alice date -v && contains "$tmp/err" "scoring on the CPU"
expect_exit 0 explain "${M[@]}" alice date -v && contains "$tmp/err" "the score on the CPU"
expect_exit 0 recommend "${M[@]}" --like apple -v && contains "$tmp/err" "new user on the CPU"
# gpu: without a usable GPU every command fails with exit 11 and the probe's reason before any
# work; with one, the same steps run on the CPU and say so.
"$BIN" info --ratings "$FIX/tiny.tsv" --device gpu -q >/dev/null 2>"$tmp/probe"
probe=$?
no_gpu() {
  expect_exit 11 "$@" --device gpu && contains "$tmp/err" "gpu-als: no usable GPU: " \
    && lacks "$tmp/err" "iter "
  [ -s "$tmp/out" ] && { echo "FAIL: gpu-als $* --device gpu printed results";
    failures=$((failures + 1)); }
}
if [ "$probe" -eq 11 ]; then
  no_gpu info --ratings "$FIX/tiny.tsv"
  no_gpu train --ratings "$FIX/tiny.tsv" --out "$tmp/g" --iters 100000
  [ -e "$tmp/g" ] && { echo "FAIL: train --device gpu saved a model"; failures=$((failures + 1)); }
  no_gpu recommend "${M[@]}" --user alice
  no_gpu recommend "${M[@]}" --like apple
  no_gpu recommend --ratings "$FIX/tiny.tsv" --iters 100000 --user alice
  no_gpu similar "${M[@]}" apple
  no_gpu score "${M[@]}" alice date
  no_gpu explain "${M[@]}" alice date
  no_gpu eval --ratings "$FIX/tiny.tsv" --iters 100000
  no_gpu tune --ratings "$FIX/tiny.tsv" --iters 100000
  no_gpu --ratings "$FIX/tiny.tsv" --iters 100000
elif [ "$probe" -eq 0 ]; then
  expect_exit 0 info --ratings "$FIX/tiny.tsv" --device gpu && contains "$tmp/err" "on the CPU"
  expect_exit 0 similar "${M[@]}" apple --device gpu && contains "$tmp/err" "on the CPU"
  expect_exit 0 score "${M[@]}" alice date --device gpu && contains "$tmp/err" "on the CPU"
  expect_exit 0 explain "${M[@]}" alice date --device gpu && contains "$tmp/err" "on the CPU"
  expect_exit 0 recommend "${M[@]}" --like apple --device gpu && contains "$tmp/err" "on the CPU"
  expect_exit 0 recommend "${M[@]}" --user alice --device gpu && contains "$tmp/err" "on GPU"
else
  echo "FAIL: info --device gpu exited $probe: $(cat "$tmp/probe")"
  failures=$((failures + 1))
fi

# Where recommend ranks: a GPU it uses is named on stderr by default; the CPU only with -v (or
# by default when a GPU was too small), and nothing is said with -q.
expect_exit 0 recommend "${M[@]}" --all-users
grep -qF "ranking on GPU 0: " "$tmp/err" || lacks "$tmp/err" "ranking on"
expect_exit 0 recommend "${M[@]}" --all-users -v && contains "$tmp/err" "ranking on"
expect_exit 0 recommend "${M[@]}" --all-users --device cpu -v \
  && contains "$tmp/err" "ranking on the CPU"
expect_exit 0 recommend "${M[@]}" --all-users -q && lacks "$tmp/err" "ranking on"

# Results that cannot reach stdout are an i/o error, said once.
if expect_full recommend "${M[@]}" --user alice && [ -c /dev/full ]; then
  [ "$(grep -c "cannot write" "$tmp/err")" -eq 1 ] \
    || { echo "FAIL: recommend >/dev/full: $(cat "$tmp/err")"; failures=$((failures + 1)); }
fi
expect_full score "${M[@]}" alice date
expect_full explain "${M[@]}" alice date

# The same item twice in --like is a mistake, not double weight.
expect_exit 2 recommend "${M[@]}" --like apple --like apple

# Ids that are not UTF-8 (Latin-1 bytes) still appear in JSON, converted.
printf 'anna\tcaf\xe9\t5\nbob\tcaf\xe9\t4\nbob\ttea\t3\n' >"$tmp/latin1.tsv"
expect_exit 0 info --ratings "$tmp/latin1.tsv" --json
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); \
assert d['popular'][0]['item']=='caf\u00e9', d" "$tmp/out" || { echo "FAIL: Latin-1 id in JSON";
  failures=$((failures + 1)); }
# ...and the converted id, as JSON shows it, names the same item on the command line.
expect_exit 0 train --ratings "$tmp/latin1.tsv" --out "$tmp/l1" --factors 2 --iters 2 -q
expect_exit 0 score --model "$tmp/l1" anna "café"

# Output through a link (or a device such as /dev/stdout) is written in place, never replaced.
: >"$tmp/target.tsv"
ln -s "$tmp/target.tsv" "$tmp/link.tsv"
expect_exit 0 recommend "${M[@]}" --user alice --out "$tmp/link.tsv"
[ -L "$tmp/link.tsv" ] && [ -s "$tmp/target.tsv" ] || { echo "FAIL: --out replaced a link";
  failures=$((failures + 1)); }

finish
