#!/usr/bin/env bash
# test_cli_eval.sh - `gpu-als eval` and `gpu-als tune` on the embedded ml-latest-small data:
# metric tables, JSON, history CSV, both splits, the tune grid's sorted rows and its ready-to-run
# train command, plots (with gnuplot and without it on PATH), output paths checked before any
# work, splits with nobody to evaluate (exit 5), tune's validation split, JSON of a Latin-1
# path and must-fail invocations.
#
#   test_cli_eval.sh GPU_ALS SOURCE_DIR BINARY_DIR
set -u
bin=$1
work=$(mktemp -d "${3:-/tmp}/cli-eval.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect_exit CODE ARGS...: run gpu-als and check its exit status.
expect_exit() {
    local want=$1
    shift
    "$bin" "$@" >"$work/out" 2>"$work/err"
    local got=$?
    [ "$got" -eq "$want" ] || fail "gpu-als $* exited $got, expected $want: $(cat "$work/err")"
}

small=(--min-rating 3 --factors 8 --iters 3 --device cpu)

# --- help -----------------------------------------------------------------------------------------
expect_exit 0 eval --help
grep -q "implicit_precision@K" "$work/out" || fail "eval --help does not name the metrics"
expect_exit 0 tune --help
grep -q -- "--patience" "$work/out" || fail "tune --help does not list --patience"

# --- eval: the table ------------------------------------------------------------------------------
expect_exit 0 eval "${small[@]}" -q
cp "$work/out" "$work/plain.txt"
for name in implicit_precision@10 precision@10 recall@10 map@10 ndcg@10 implicit_auc@10 auc; do
    line=$(grep -E "^$name +[0-9]" "$work/plain.txt") || { fail "eval prints no $name"; continue; }
    value=$(echo "$line" | awk '{print $2}')
    awk -v v="$value" 'BEGIN { exit !(v > 0 && v <= 1) }' || fail "$name = $value not in (0, 1]"
done
grep -q "^users .* evaluated, .* skipped" "$work/plain.txt" || fail "eval prints no user counts"
[ ! -s "$work/err" ] || fail "eval -q wrote to stderr: $(cat "$work/err")"

# --- eval: --history gives the same final metrics, one row per iteration --------------------------
expect_exit 0 eval "${small[@]}" -q --history "$work/h.csv" --eval-every 2
diff <(grep -v "^training" "$work/plain.txt") <(grep -v "^training" "$work/out") >/dev/null ||
    fail "eval with --history gives other metrics than without"
header="iteration,seconds,loss,implicit_precision@10,precision@10,recall@10,map@10,ndcg@10"
header="$header,implicit_auc@10,auc"
[ "$(head -1 "$work/h.csv")" = "$header" ] || fail "history header is $(head -1 "$work/h.csv")"
[ "$(wc -l <"$work/h.csv")" -eq 4 ] || fail "history has $(wc -l <"$work/h.csv") lines, expected 4"
# Iteration 1 (not evaluated) has empty metric fields, 2 and 3 (the last) have metrics, all a loss.
awk -F, 'NR == 2 && $4 != "" { exit 1 } NR == 3 && $4 == "" { exit 1 }
         NR == 4 && $10 == "" { exit 1 } NR > 1 && $3 == "" { exit 1 }' "$work/h.csv" ||
    fail "history rows are not as expected: $(cat "$work/h.csv")"
final=$(grep "^implicit_precision@10" "$work/plain.txt" | awk '{print $2}')
last=$(tail -1 "$work/h.csv" | cut -d, -f4)
awk -v a="$final" -v b="$last" 'BEGIN { exit !((a - b) < 1e-6 && (b - a) < 1e-6) }' ||
    fail "history's last implicit_precision@10 $last differs from the table's $final"

# --- eval: the seconds of --history are each iteration's own, as in `train --history` ----------
expect_exit 0 eval "${small[@]}" -q --json --history "$work/sec.csv"
if command -v python3 >/dev/null; then
    python3 - "$work/out" "$work/sec.csv" <<'EOF' || fail "eval --history seconds are cumulative"
import csv, json, sys
total = json.load(open(sys.argv[1]))["training"]["seconds"]
rows = list(csv.DictReader(open(sys.argv[2])))
s = sum(float(r["seconds"]) for r in rows)
assert len(rows) == 3 and abs(s - total) <= 1e-4 + 0.01 * total, (s, total, rows)
EOF
fi

# --- eval: --history rows are written as the iterations complete --------------------------------
# Each row comes before its iteration's line on stderr, so a run stopped partway keeps them all.
"$bin" eval --min-rating 3 --factors 64 --iters 100000 --device cpu --history "$work/long.csv" \
    >/dev/null 2>"$work/long.err" &
pid=$!
for _ in $(seq 300); do
    [ "$(grep -c '^iter ' "$work/long.err")" -ge 3 ] && break
    sleep 0.1
done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
seen=$(grep -c '^iter ' "$work/long.err")
rows=$(($(cat "$work/long.csv" 2>/dev/null | wc -l) - 1))
[ "$seen" -ge 3 ] && [ "$rows" -ge "$seen" ] ||
    fail "eval stopped after $seen iterations, its history has $rows rows"

# --- --device auto says nothing of a missing GPU unless -v ---------------------------------------
auto=(--min-rating 3 --factors 8 --iters 3)
expect_exit 0 eval "${auto[@]}" --history "$work/auto.csv"
! grep -q "no usable GPU" "$work/err" || fail "eval --history: $(cat "$work/err")"
expect_exit 0 tune "${auto[@]}"
! grep -q "no usable GPU" "$work/err" || fail "tune: $(cat "$work/err")"
expect_exit 0 eval "${auto[@]}" --history "$work/auto.csv" -v
grep -q -E "using (GPU|the CPU)" "$work/err" || fail "eval -v does not say where it trained"
grep -q "metrics on the CPU" "$work/err" || fail "eval -v does not say where it ranks"

# --- eval: JSON -----------------------------------------------------------------------------------
expect_exit 0 eval "${small[@]}" -q --json --k 5
if command -v python3 >/dev/null; then
    python3 - "$work/out" <<'EOF' || fail "eval --json is not as expected"
import json, sys
d = json.load(open(sys.argv[1]))
m = d["metrics"]
assert set(m) == {"implicit_precision@5", "precision@5", "recall@5", "map@5", "ndcg@5",
                  "implicit_auc@5", "auc"}, m
assert d["k"] == 5 and d["users_evaluated"] > 0
assert d["split"]["kind"] == "random"
assert d["split"]["train_entries"] + d["split"]["test_entries"] == d["data"]["stored"]
EOF
else
    grep -q '"implicit_precision@5"' "$work/out" || fail "eval --json has no implicit_precision@5"
fi

# --- eval: users whose interactions all went to the test side are left out and counted ----------
# (their factors are zero: a ranking of ties would score the item order, not the model)
expect_exit 0 eval "${small[@]}" -q --test-fraction 0.9 --json
python3 - "$work/out" <<'EOF' || fail "eval --json does not count the cold users apart"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["users_cold"] > 0 and d["users_evaluated"] > 0, d
assert d["users_evaluated"] + d["users_cold"] + d["users_skipped"] == d["data"]["users"], d
EOF
expect_exit 0 eval "${small[@]}" -q --test-fraction 0.9
grep -q "left out (no positive training interaction)" "$work/out" ||
    fail "eval does not say it left out users without training interactions"

# --- eval: leave-k-out holds out exactly K per eligible user --------------------------------------
expect_exit 0 eval "${small[@]}" -q --split leave-k-out --leave-k 2
test_entries=$(grep "^entries" "$work/out" | awk '{print $4}')
users=$(grep "^users" "$work/out" | awk '{print $2}')
[ "$test_entries" -eq $((2 * users)) ] ||
    fail "leave-2-out: $test_entries test entries for $users evaluated users"

# --- tune: a 2 x 2 grid writes 4 sorted rows ------------------------------------------------------
expect_exit 0 tune "${small[@]}" --factors 4,8 --reg 0.01,1 --out "$work/t.tsv"
[ "$(wc -l <"$work/t.tsv")" -eq 5 ] || fail "tune TSV has $(wc -l <"$work/t.tsv") lines, not 5"
head -1 "$work/t.tsv" | grep -q "^rank	factors	reg	alpha	confidence	iters	best_iteration" ||
    fail "tune TSV header is $(head -1 "$work/t.tsv")"
col=$(head -1 "$work/t.tsv" | tr '\t' '\n' | grep -n "^implicit_precision@10$" | cut -d: -f1)
tail -n +2 "$work/t.tsv" | cut -f"$col" | sort -g -r -c 2>/dev/null ||
    fail "tune rows are not sorted by implicit_precision@10: $(cut -f"$col" "$work/t.tsv")"
[ "$(tail -n +2 "$work/t.tsv" | cut -f1 | tr '\n' ' ')" = "1 2 3 4 " ] || fail "tune ranks"
[ "$(tail -n +2 "$work/t.tsv" | cut -f2,3 | sort -u | wc -l)" -eq 4 ] ||
    fail "tune rows do not cover the 4 combinations"
# Every run's one line on stderr (not a terminal), and the best command on stdout.
[ "$(grep -c "^run [1-4]/4 " "$work/err")" -eq 4 ] || fail "tune did not print 4 run lines"
best=$(grep "^best: gpu-als train " "$work/out" | sed 's/^best: gpu-als //')
[ -n "$best" ] || fail "tune printed no best command"
# The best command runs as printed (its --out is a relative directory).
(cd "$work" && eval "\"$bin\" $best -q" >/dev/null) || fail "the best command failed: $best"
[ -f "$work/best-model/meta.json" ] || fail "the best command wrote no model"

# --- tune: JSON, early stopping -------------------------------------------------------------------
expect_exit 0 tune --min-rating 3 --device cpu --factors 4 --iters 6 --reg 0.01,0.1,1 -q --json \
    --metric ndcg@5 --patience 1 --eval-every 2
if command -v python3 >/dev/null; then
    python3 - "$work/out" <<'EOF' || fail "tune --json is not as expected"
import json, sys
d = json.load(open(sys.argv[1]))
runs = d["runs"]
assert d["metric"] == "ndcg@5" and len(runs) == 3
vals = [r["metrics"]["ndcg@5"] for r in runs]
assert vals == sorted(vals, reverse=True), vals
for r in runs:
    assert r["iterations_run"] in (2, 4, 6) and r["best_iteration"] <= r["iterations_run"]
    assert r["best_iteration"] % 2 == 0
assert d["best_command"].startswith("gpu-als train ")
EOF
fi

# --- plots ----------------------------------------------------------------------------------------
if command -v gnuplot >/dev/null; then
    expect_exit 0 eval "${small[@]}" -q --plot "$work/e.svg"
    grep -q "<svg" "$work/e.svg" 2>/dev/null || fail "eval --plot wrote no SVG"
    expect_exit 0 tune "${small[@]}" -q --factors 4,8 --alpha 1,2 --plot "$work/t.svg"
    grep -q "<svg" "$work/t.svg" 2>/dev/null || fail "tune --plot wrote no SVG"
fi
# Without gnuplot on PATH: a clear message naming the package, before any training.
PATH=/nonexistent "$bin" eval "${small[@]}" --plot "$work/x.svg" >"$work/out" 2>"$work/err"
[ $? -eq 3 ] || fail "eval --plot without gnuplot did not exit 3"
grep -q "gnuplot-nox" "$work/err" || fail "no gnuplot-nox in: $(cat "$work/err")"

# --- output paths are checked before any work, and write failures say why ------------------------
# no_work WHAT: stderr shows no training (no per-iteration line, no run line, no split note).
no_work() {
    ! grep -q -E "^(iter |run |gpu-als: split )" "$work/err" || fail "$1 worked before failing"
}
expect_exit 3 tune "${small[@]}" --factors 4,8 --out /nonexistent-dir/t.tsv
grep -q "cannot write /nonexistent-dir/t.tsv.*No such file or directory" "$work/err" ||
    fail "tune --out in a missing directory: $(cat "$work/err")"
no_work "tune --out /nonexistent-dir/t.tsv"
expect_exit 3 tune "${small[@]}" --out "$work"
grep -q "cannot write.*is a directory" "$work/err" || fail "tune --out DIR: $(cat "$work/err")"
no_work "tune --out DIR"
expect_exit 3 eval "${small[@]}" --history "$work"
grep -q "cannot write.*is a directory" "$work/err" || fail "eval --history DIR: $(cat "$work/err")"
no_work "eval --history DIR"
for cmd in eval tune; do
    expect_exit 3 "$cmd" "${small[@]}" --plot /nonexistent-dir/p.svg
    grep -q "cannot write /nonexistent-dir/p.svg.*No such file or directory" "$work/err" ||
        fail "$cmd --plot in a missing directory: $(cat "$work/err")"
    [ "$(wc -l <"$work/err")" -eq 1 ] ||
        fail "$cmd --plot: more than one message: $(cat "$work/err")"
    no_work "$cmd --plot /nonexistent-dir/p.svg"
done
# A write that fails later (a full device) or at once (no permission) names the reason. Only
# where /dev/full is the real device: some sandboxes lack it, and writing would make a file.
if [ -c /dev/full ]; then
    expect_exit 3 eval "${small[@]}" -q --history /dev/full
    grep -q -E "cannot write.*/dev/full.*: [A-Za-z]" "$work/err" ||
        fail "eval --history /dev/full gives no reason: $(cat "$work/err")"
    expect_exit 3 tune "${small[@]}" -q --out /dev/full
    grep -q -E "cannot write.*/dev/full.*: [A-Za-z]" "$work/err" ||
        fail "tune --out /dev/full gives no reason: $(cat "$work/err")"
    # Results that cannot reach stdout are an i/o error too.
    for cmd in eval tune; do
        for out in "" --json; do
            "$bin" "$cmd" "${small[@]}" -q $out >/dev/full 2>"$work/err"
            [ $? -eq 3 ] || fail "$cmd -q $out >/dev/full did not exit 3"
            grep -q "cannot write the results to stdout" "$work/err" ||
                fail "$cmd -q $out >/dev/full: $(cat "$work/err")"
        done
    done
else
    echo "note: /dev/full is not a character device here; full-device checks not run"
fi

# --- nobody to evaluate is an error (exit 5), said before training --------------------------------
expect_exit 5 eval "${small[@]}" --test-fraction 0
grep -q "no test interactions" "$work/err" || fail "eval --test-fraction 0: $(cat "$work/err")"
no_work "eval --test-fraction 0"
expect_exit 5 eval "${small[@]}" --test-fraction 1
grep -q "no training interactions" "$work/err" || fail "eval --test-fraction 1: $(cat "$work/err")"
no_work "eval --test-fraction 1"
expect_exit 5 eval "${small[@]}" --split leave-k-out --leave-k 100000
grep -q "no eligible user" "$work/err" || fail "eval leave-100000-out: $(cat "$work/err")"
expect_exit 5 tune "${small[@]}" --factors 4,8 --test-fraction 0
grep -q "no test interactions" "$work/err" || fail "tune --test-fraction 0: $(cat "$work/err")"
no_work "tune --test-fraction 0"
expect_exit 5 tune --ratings "$2/tests/fixtures/cli/tiny.tsv" --device cpu --iters 1 \
    --validation-fraction 0.01
grep -q "no validation interactions" "$work/err" ||
    fail "tune with an empty validation split: $(cat "$work/err")"
expect_exit 5 tune "${small[@]}" --test-fraction 0.2 --validation-fraction 0.99999
grep -q "no training interactions: validation fraction 0.99999 held out all" "$work/err" ||
    fail "tune with a validation split that takes every training entry: $(cat "$work/err")"

# --- tune: selection on the test split is said; a validation split keeps the test split apart ----
expect_exit 0 tune --help
grep -q -- "--validation-fraction" "$work/out" || fail "tune --help does not list it"
grep -q "optimistic" "$work/out" || fail "tune --help does not say the default is optimistic"
# The selection is a note on stderr, silenced by -q; stdout holds the results alone.
expect_exit 0 tune "${small[@]}"
grep -q "^gpu-als: .*on the test split" "$work/err" || fail "tune does not say what it selects on"
! grep -q "stopped early" "$work/out" || fail "tune printed its selection note on stdout"
expect_exit 0 tune "${small[@]}" -q
[ ! -s "$work/err" ] || fail "tune -q wrote to stderr: $(cat "$work/err")"
! grep -q "stopped early" "$work/out" || fail "tune -q printed its selection note on stdout"
expect_exit 0 tune "${small[@]}" --factors 4,8 --validation-fraction 0.2 --out "$work/v.tsv"
grep -q "^gpu-als: .*on a validation split" "$work/err" || fail "tune does not name the validation"
head -1 "$work/v.tsv" | grep -q "	validation_implicit_precision@10$" ||
    fail "tune TSV has no validation column: $(head -1 "$work/v.tsv")"
tail -n +2 "$work/v.tsv" | awk -F'\t' '{print $NF}' | sort -g -r -c 2>/dev/null ||
    fail "tune rows are not sorted by the validation metric: $(cat "$work/v.tsv")"
expect_exit 0 tune "${small[@]}" -q --factors 4,8 --json
cp "$work/out" "$work/plain.json"
expect_exit 0 tune "${small[@]}" -q --factors 4,8 --json --validation-fraction 0.2
if command -v python3 >/dev/null; then
    python3 - "$work/plain.json" "$work/out" <<'EOF' || fail "tune --validation-fraction JSON"
import json, sys
plain, valid = (json.load(open(f)) for f in sys.argv[1:])
assert plain["selected_on"] == "test" and "optimistic" in plain["selection_note"]
assert valid["selected_on"] == "validation" and valid["validation_fraction"] == 0.2
vals = [r["validation_metric"] for r in valid["runs"]]
assert vals == sorted(vals, reverse=True), vals
assert all("validation_metric" not in r for r in plain["runs"])
# The same test split: the same users are evaluated; the models (trained on less) differ.
by = lambda d: {r["factors"]: r for r in d["runs"]}
p, v = by(plain), by(valid)
for f in (4, 8):
    assert p[f]["users_evaluated"] == v[f]["users_evaluated"]
    assert p[f]["metrics"] != v[f]["metrics"]
EOF
fi

# --- JSON keeps a path that is not UTF-8 ----------------------------------------------------------
latin1="$work/caf$(printf '\351').tsv"
cp "$2/tests/fixtures/cli/tiny.tsv" "$latin1"
expect_exit 0 tune --ratings "$latin1" --device cpu --iters 1 --factors 2 --test-fraction 0.5 \
    -q --json
grep -q '"best_command": "gpu-als train --ratings' "$work/out" ||
    fail "tune --json dropped the best command of a Latin-1 path: $(cat "$work/out")"

# --- must fail ------------------------------------------------------------------------------------
expect_exit 2 eval --split bogus
expect_exit 2 eval --test-fraction 1.5
expect_exit 2 eval --k 0
expect_exit 2 eval --leave-k 0
expect_exit 2 tune --metric hitrate@10
expect_exit 2 tune --metric auc@10
expect_exit 2 tune --factors 8,x
expect_exit 2 eval --iters 0
grep -q -- "--iters must be between 1" "$work/err" || fail "eval --iters 0: $(cat "$work/err")"
expect_exit 2 tune --iters 0
expect_exit 2 tune --iters 5,0
for list in 16,,32 ,16 16,; do
    expect_exit 2 tune --factors "$list"
    grep -q "empty element" "$work/err" || fail "tune --factors $list: $(cat "$work/err")"
done
# A grid point that diverges is reported as failed and listed last; the others still count.
expect_exit 0 tune "${small[@]}" --alpha 1,1e12 --out "$work/div.tsv"
grep -q "failed: .*became non-finite" "$work/out" || fail "tune does not show the failed run"
tail -1 "$work/div.tsv" | grep -q "	nan	nan" || fail "tune TSV: no failed row last"
head -2 "$work/div.tsv" | tail -1 | grep -q "^1	8	0.01	1	" || fail "tune TSV: best run not first"
expect_exit 9 tune "${small[@]}" --alpha 1e12
grep -q "every run of the grid failed" "$work/err" ||
    fail "tune, all runs failing: $(cat "$work/err")"
expect_exit 2 tune --factors 16,32,16
grep -q "gives 16 twice" "$work/err" || fail "tune --factors 16,32,16: $(cat "$work/err")"
expect_exit 2 tune --reg 1,1.0
expect_exit 2 tune --confidence implicit,bogus
expect_exit 2 tune --patience 0
expect_exit 2 tune --validation-fraction 1
expect_exit 2 tune --validation-fraction -0.1
expect_exit 2 eval --dtype float64 --device gpu

if [ "$failures" -gt 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "all eval/tune CLI checks passed"
