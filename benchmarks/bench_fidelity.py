"""How close is the simulator to measured serving? Every measured row replayed, with targets.

Run: ``python benchmarks/bench_fidelity.py`` (about 2–3 minutes on two cores).

1. NIM serving rows (525, GenAI-Perf closed loops) replayed as closed loops through the
   TensorRT-LLM scheduler: median |error| of mean TTFT, mean ITL and output tokens/s, per
   (model, GPU, precision, TP) group and overall. Targets: overall ≤ 10 % ITL and tokens/s,
   ≤ 20 % TTFT; no group worse than 15 % / 25 %.
2. Static-batch rows (TensorRT-LLM 0.9, 2,878 measured) replayed offline through the engine
   (``batch`` requests at t = 0, one prefill step, then decode together): median |error| of the
   first-token and token-to-token times. Target ≤ 10 %.
3. Generalisation splits: the step model refitted without a group (its static-batch rows and
   its NIM single-client rows both left out), then tested on it: Llama-2-7B/13B → Llama-2-70B
   (static batch); and, for serving, A100 → H100, TP1/TP4 → TP2/TP8 and 8B → 70B (the 70B-class
   static rows, Llama-2-70B, left out too). Target: every split ≤ 15 % on ITL and tokens/s.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infphys.catalog import load_nim_serving, load_static_batch
from infphys.sim.fidelity import NIM_SERVING, replay_nim, replay_static, summarise
from infphys.sim.fit import fit_step_params, predict_static

NIM_COLS = ["ttft_ms_avg", "itl_ms_avg", "output_tokens_per_s"]
STATIC_COLS = ["first_token_ms", "token_to_token_ms"]


def _pct(x: float) -> str:
    return f"{x:6.1%}"


def _mark(ok: bool) -> str:
    return "ok  " if ok else "MISS"


def main() -> int:
    t0 = time.perf_counter()
    pd.set_option("display.width", 160)
    nim = load_nim_serving()
    static = load_static_batch()
    static = static[static["measured"]]
    print("== 1. NIM serving rows, replayed (fitted step model, TensorRT-LLM scheduler) ==")
    rep = replay_nim(nim)
    table = summarise(rep, NIM_COLS)
    print((table * 100).round(1).rename(columns=lambda c: c + " %").to_string())
    overall = table.iloc[-1]
    groups = table.iloc[:-1]
    ok = True
    for col, target, worst in (
        ("ttft_ms_avg", 0.20, 0.25),
        ("itl_ms_avg", 0.10, 0.15),
        ("output_tokens_per_s", 0.10, 0.15),
    ):
        o, w = float(overall[col]), float(groups[col].max())
        good = o <= target and w <= worst
        ok &= good
        print(
            f"  {_mark(good)} {col:22s} overall {_pct(o)} (target ≤ {target:.0%}), "
            f"worst group {_pct(w)} (target ≤ {worst:.0%})"
        )

    print("== 2. static-batch rows, replayed offline through the engine ==")
    st = replay_static(static)
    for col in STATIC_COLS:
        m = float(st[f"err_{col}"].abs().median())
        good = m <= 0.10
        ok &= good
        print(f"  {_mark(good)} {col:22s} median |error| {_pct(m)} (target ≤ 10%)")

    print("== 3. generalisation: refit without a group, test on it ==")
    l2 = static["model_key"]
    fit = fit_step_params(static[l2.isin(["llama-2-7b", "llama-2-13b"])], nim.iloc[:0])
    held = predict_static(static[l2 == "llama-2-70b"], fit.params)
    for col in STATIC_COLS:
        m = float(held[f"err_{col}"].abs().median())
        good = m <= 0.15
        ok &= good
        print(f"  {_mark(good)} static 7B/13B → 70B {col:20s} {_pct(m)} (target ≤ 15%)")
    splits = (
        ("A100 → H100", static["gpu_key"] != "h100-sxm", nim["gpu_key"] == "h100-sxm"),
        ("TP1/TP4 → TP2/TP8", ~static["tp"].isin([2, 8]), nim["tp"].isin([2, 8])),
        ("8B → 70B", static["model_key"] != "llama-2-70b", nim["model_key"] == "llama-3.1-70b"),
    )
    for name, train, test in splits:
        fit = fit_step_params(static[train], nim[~test])
        serving = replace(NIM_SERVING, frontend_latency_s=fit.frontend_latency_s)
        r = replay_nim(nim[test], step_params=fit.params, serving=serving)
        s = summarise(r, NIM_COLS).iloc[-1]
        for col in ("itl_ms_avg", "output_tokens_per_s"):
            good = float(s[col]) <= 0.15
            ok &= good
            print(
                f"  {_mark(good)} serving {name:18s} {col:20s} {_pct(float(s[col]))} (target ≤ 15%)"
            )
        print(f"       serving {name:18s} {'ttft_ms_avg':20s} {_pct(float(s['ttft_ms_avg']))}")
    verdict = "all targets met" if ok else "targets missed"
    print(f"== done in {time.perf_counter() - t0:.0f} s; {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
