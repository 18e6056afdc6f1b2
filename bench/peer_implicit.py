#!/usr/bin/env python3
"""peer_implicit.py - the benchmark's settings run through the `implicit` library (a peer row).

bench/run calls this only when `import implicit` works. It reads the ratings file bench/run
generated (MovieLens .dat: user::item::rating::time), sums duplicate (user, item) pairs into a
users x items CSR exactly as gpu-als does, and with the same settings (factors, regularization,
alpha, CG steps or Cholesky, threads) measures:
  load       parsing the file and building the CSR (numpy + scipy)
  iteration  per-iteration times of fit(), from implicit's own callback, first --warmup dropped
  loss       implicit's training loss after warmup + reps iterations (the value, not a time)
  topn       recommend() for every user, liked items filtered, N = --topn
  similar    similar_items() for every item, N = --topn + 1 (implicit returns the item itself)
One JSON line per phase on stdout with the fields gpuals-bench writes (null where they do not
apply). Needs numpy, scipy and implicit; the initial factors differ from gpu-als's (implicit
draws its own), so the losses agree only to within what the initialisation changes.
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np
import scipy.sparse
import implicit
import implicit.als
import implicit.cpu._als
import implicit.gpu


def load(path):
    """The users x items CSR of summed ratings (float32) of a file of user::item::rating::time
    lines (what gpuals-synth writes), parsed by numpy's C number reader."""
    with open(path, "rb") as f:
        text = f.read().replace(b"::", b" ").decode("ascii")
    values = np.fromstring(text, dtype=np.float64, sep=" ")
    if values.size % 4:
        sys.exit(f"peer_implicit.py: {path}: expected 4 fields per line")
    cols = values.reshape(-1, 4)
    _, users = np.unique(cols[:, 0], return_inverse=True)
    _, items = np.unique(cols[:, 1], return_inverse=True)
    m = scipy.sparse.coo_matrix((cols[:, 2].astype(np.float32), (users, items)))
    return m.tocsr()  # duplicates are summed here


def stats(samples):
    """The timing fields of a record."""
    if not samples:
        return {"reps": 0, "median_s": None, "min_s": None, "max_s": None, "q1_s": None,
                "q3_s": None}
    q = statistics.quantiles(samples, n=4, method="inclusive") if len(samples) > 1 \
        else [samples[0]] * 3
    return {"reps": len(samples), "median_s": statistics.median(samples), "min_s": min(samples),
            "max_s": max(samples), "q1_s": q[0], "q3_s": q[2]}


def record(a, shape, phase, samples, note, final_loss=None, loss_iters=None):
    r = {"phase": phase, "schema": 1, "impl": "implicit", "impl_version": implicit.__version__,
         "device": a.device, "device_name": None, "solver": a.solver, "factors": a.factors,
         "cg_steps": a.cg_steps if a.solver == "cg" else None, "cg_form": None,
         "threads": a.threads, "warmup": a.warmup, "reg": a.reg, "alpha": a.alpha,
         "seed": a.seed, "topn": a.topn, "data": a.data, "data_bytes": None,
         "users": shape[0], "items": shape[1], "nnz": shape[2]}
    r.update(stats(samples))
    r.update({"bytes": None, "flops": None, "gbps": None, "gflops": None, "peak_gbps": None,
              "peak_gflops": None, "pct_peak_bw": None, "pct_peak_flops": None,
              "peak_rss_mib": None, "device_mem_mib": None, "final_loss": final_loss,
              "loss_iters": loss_iters, "note": note})
    print(json.dumps(r), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--solver", choices=["cg", "cholesky"], default="cg")
    p.add_argument("--factors", type=int, default=100)
    p.add_argument("--cg-steps", type=int, default=3)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--topn", type=int, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--reg", type=float, default=0.01)
    p.add_argument("--alpha", type=float, default=1.0)
    a = p.parse_args()

    # Load + CSR build, timed the way gpuals-bench times its own (first load kept).
    Cui = load(a.data)
    t = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        load(a.data)
        t.append(time.perf_counter() - t0)
    shape = (Cui.shape[0], Cui.shape[1], Cui.nnz)
    record(a, shape, "load", t, "numpy.fromstring + scipy COO -> CSR")

    # Fit warmup + reps iterations; implicit's callback gives each iteration's seconds.
    if a.device == "gpu" and not implicit.gpu.HAS_CUDA:
        sys.exit("peer_implicit.py: implicit was built without CUDA")
    if a.device == "gpu" and a.solver != "cg":
        sys.exit("peer_implicit.py: implicit has no GPU Cholesky solver")
    iters = a.warmup + a.reps
    model = implicit.als.AlternatingLeastSquares(
        factors=a.factors, regularization=a.reg, alpha=a.alpha, use_cg=a.solver == "cg",
        use_gpu=a.device == "gpu", iterations=iters, calculate_training_loss=False,
        num_threads=a.threads, random_state=a.seed)
    model.cg_steps = a.cg_steps
    seconds = []
    model.fit(Cui, show_progress=False,
              callback=lambda it, elapsed, loss: seconds.append(elapsed))
    record(a, shape, "iteration", seconds[a.warmup:], "fit() callback seconds")

    # The training loss of the result, with implicit's own function (on the CPU).
    cpu_model = model.to_cpu() if a.device == "gpu" else model
    loss = implicit.cpu._als.calculate_loss(a.alpha * Cui, cpu_model.user_factors,
                                            cpu_model.item_factors, a.reg,
                                            num_threads=a.threads)
    record(a, shape, "loss", [], "implicit.cpu._als.calculate_loss", float(loss), iters)

    # Queries for everyone.
    users = np.arange(shape[0])
    items = np.arange(shape[1])
    for phase, call in (("topn", lambda: model.recommend(users, Cui, N=a.topn)),
                        ("similar", lambda: model.similar_items(items, N=a.topn + 1))):
        t = []
        for k in range(a.warmup + a.reps):
            t0 = time.perf_counter()
            call()
            if k >= a.warmup:
                t.append(time.perf_counter() - t0)
        record(a, shape, phase, t, "recommend()" if phase == "topn" else "similar_items()")


if __name__ == "__main__":
    main()
