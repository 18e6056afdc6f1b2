#!/usr/bin/env python3
"""test_bench.py - bench/run end to end at a tiny shape, on the CPU, in a few seconds.

usage: test_bench.py RUN BENCH SYNTH WORKDIR

Runs the harness with the built gpuals-bench and gpuals-synth, then checks what it wrote: every
JSON line parses and carries every field; each configuration has each phase; the numbers are
consistent (quartiles ordered, rates equal to floor / median, shares of the ceilings equal to
rate / peak); the half-iteration rows were timed (the engine's hooks were seen); the commit,
date, machine and settings are there; the table was printed; a second run reuses the data and
appends. Also the exit codes of --help and of invocations that must fail. No speed is asserted.
"""

import json
import math
import os
import shutil
import subprocess
import sys

FIELDS = [
    "phase", "schema", "impl", "impl_version", "device", "device_name", "solver", "factors",
    "cg_steps", "cg_form", "threads", "warmup", "reg", "alpha", "seed", "topn", "data",
    "data_bytes", "users", "items", "nnz", "reps", "median_s", "min_s", "max_s", "q1_s", "q3_s",
    "bytes", "flops", "gbps", "gflops", "peak_gbps", "peak_gflops", "pct_peak_bw",
    "pct_peak_flops", "peak_rss_mib", "device_mem_mib", "final_loss", "loss_iters", "note",
    # added by bench/run
    "run_id", "date", "commit", "dirty", "machine", "command", "shape", "shape_spec", "settings",
]
MACHINE = ["cpu", "cores", "memory_gib", "gpu", "hostname", "loadavg_1m"]
PHASES = ["iteration", "yty", "half_users", "xtx", "half_items", "loss", "topn", "similar"]

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}", file=sys.stderr)


def run(cmd, expect=None):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=300)
    if expect is not None and r.returncode != expect:
        print(f"$ {' '.join(cmd)}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}",
              file=sys.stderr)
        check(False, f"exit code {r.returncode}, expected {expect}: {' '.join(cmd[1:4])}...")
    return r


def close(a, b, rel=1e-6):
    return a is not None and b is not None and abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


def check_usage(run_py, bench):
    r = run([sys.executable, run_py, "--help"], 0)
    check("usage: bench/run" in r.stdout and "ml-20m" in r.stdout, "--help text")
    for bad in (["--shape", "10x"], ["--factors", "0"], ["--device", "tpu"], ["--reps", "x"],
                ["--phases", "iter,bogus"], ["--user-exponent", "-3"]):
        r = run([sys.executable, run_py] + bad, 2)
        check(r.stderr.startswith("bench/run: "), f"usage error message for {bad}")
    r = run([bench, "--help"], 0)
    check("usage: gpuals-bench" in r.stdout, "gpuals-bench --help")
    r = run([bench, "--factors", "x", "--data", "f"], 2)
    check(r.stderr.startswith("gpuals-bench: "), "gpuals-bench usage error message")
    run([bench, "--data", "/nonexistent/ratings.dat"], 1)


def check_record(r):
    """Every field present; timing and rate fields consistent."""
    missing = [k for k in FIELDS if k not in r]
    check(not missing, f"{r.get('phase')}: fields missing: {missing}")
    if missing:
        return
    check(all(k in r["machine"] for k in MACHINE), "machine fields")
    check(r["commit"] and r["date"] and r["run_id"], "commit, date and run id")
    if r["median_s"] is None:
        return
    for k in ("median_s", "min_s", "max_s", "q1_s", "q3_s"):
        check(isinstance(r[k], float) and math.isfinite(r[k]), f"{r['phase']}: {k} finite")
    check(r["min_s"] <= r["q1_s"] <= r["median_s"] <= r["q3_s"] <= r["max_s"],
          f"{r['phase']}: quartiles ordered")
    if r["phase"].startswith("ceiling_"):
        return
    check(r["median_s"] > 0, f"{r['phase']}: positive median")
    check(r["bytes"] and r["bytes"] > 0, f"{r['phase']}: a byte floor")
    check(close(r["gbps"], r["bytes"] / r["median_s"] * 1e-9), f"{r['phase']}: GB/s = floor/time")
    check(close(r["pct_peak_bw"], 100 * r["gbps"] / r["peak_gbps"]),
          f"{r['phase']}: share of the bandwidth ceiling")
    if r["phase"] != "load":
        check(r["flops"] and r["flops"] > 0, f"{r['phase']}: a flop floor")
        check(close(r["gflops"], r["flops"] / r["median_s"] * 1e-9),
              f"{r['phase']}: GFLOP/s = floor/time")
        check(close(r["pct_peak_flops"], 100 * r["gflops"] / r["peak_gflops"]),
              f"{r['phase']}: share of the flop ceiling")


def check_results(records, shape):
    ours = [r for r in records if r.get("impl") == "gpu-als"]
    for r in records:
        check_record(r)

    # The ceilings, measured in the same run.
    ceil = {r["phase"]: r for r in ours if r["phase"].startswith("ceiling_")}
    for p in ("ceiling_copy", "ceiling_triad", "ceiling_sgemm"):
        check(p in ceil, f"{p} recorded")
    check(ceil.get("ceiling_sgemm", {}).get("gflops", 0) > 0, "sgemm ceiling positive")

    # Four configurations, each with every phase; the load once per shape.
    runs = [r for r in ours if not r["phase"].startswith("ceiling_")]
    configs = {(r["solver"], r["factors"]) for r in runs}
    check(configs == {("cg", 3), ("cg", 8), ("cholesky", 3), ("cholesky", 8)},
          f"configurations run: {sorted(configs)}")
    check(sum(r["phase"] == "load" for r in runs) == 1, "one load record per shape")
    for c in configs:
        phases = {r["phase"]: r for r in runs if (r["solver"], r["factors"]) == c}
        for p in PHASES:
            check(p in phases, f"{c}: phase {p} recorded")
            if p in phases:
                check(phases[p]["median_s"] is not None,
                      f"{c}: {p} timed ({phases[p]['note']})")
                check(phases[p]["reps"] == 2, f"{c}: {p} has 2 repetitions")
        loss = phases.get("loss", {})
        check(loss.get("final_loss") is not None and 0 < loss["final_loss"] < 10,
              f"{c}: a final loss")
        check(loss.get("loss_iters") == 3, f"{c}: loss after warmup + reps iterations")

    # The shape and the settings travel with every line.
    for r in runs:
        check(r["shape"] == shape and r["shape_spec"]["users"] == 40, "shape recorded")
        check(r["settings"]["reps"] == 2 and r["settings"]["threads"] == 2, "settings recorded")
        check(0 < r["users"] <= 40 and 0 < r["items"] <= 30 and 0 < r["nnz"] <= 500,
              "data shape within the requested one")
        check(r["cg_steps"] == (2 if r["solver"] == "cg" else None), "CG steps recorded")


def main():
    run_py, bench, synth, work = sys.argv[1:5]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    results = os.path.join(work, "results.jsonl")
    check_usage(run_py, bench)

    # The end-to-end run at a tiny shape.
    shape = "40x30x500"
    common = [sys.executable, run_py, "--shape", shape, "--device", "cpu", "--reps", "2",
              "--warmup", "1", "--threads", "2", "--out", work, "--results", results,
              "--bench", bench, "--synth", synth]
    cmd = common + ["--solver", "cg,cholesky", "--factors", "3,8", "--cg-steps", "2",
                    "--stream-mib", "2", "--gemm-n", "64"]
    r = run(cmd, 0)
    check("generating" in r.stderr, "data generated on first use")
    for text in ("ceilings: copy", "half-iter users", "YtY (items)", "top-n all users",
                 "final loss", f"{shape}: "):
        check(text in r.stdout, f"table shows '{text}'")
    check("implicit" in r.stdout, "the table says whether `implicit` ran")
    with open(results, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    check_results(records, shape)

    # A second run reuses the data and appends.
    r = run(common + ["--factors", "2", "--phases", "iter", "--no-ceilings", "--no-peers"], 0)
    check("reusing" in r.stderr, "data reused on the second run")
    with open(results, encoding="utf-8") as f:
        count = sum(1 for line in f if line.strip())
    check(count > len(records), "second run appended")

    # A GPU request: skipped (77) without a usable device, or a run that writes records.
    data = [os.path.join(work, "data", n) for n in os.listdir(os.path.join(work, "data"))][0]
    r = run([bench, "--data", data, "--device", "gpu", "--factors", "2", "--reps", "1",
             "--phases", "iter"])
    check(r.returncode in (0, 77), f"--device gpu exits 0 or 77 (got {r.returncode})")
    if r.returncode == 77:
        check("gpuals-bench: " in r.stderr, "the reason a GPU run was skipped")

    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
