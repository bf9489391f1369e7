"""Two variants of a torchvision model trained in turns in one process: seconds per iteration.

Not a test.  A small per-iteration difference (a few %) drowns in a shared machine's
run-to-run noise when each variant runs in its own process (``bench_train_step.py``); here both
models are built, prepared as the training prepares them (``channels_last`` and all), and
trained on the same random batches in alternating blocks, so that both see the same machine::

    python benchmarks/bench_interleaved.py --a head_norm=null --b head_norm='"gn"'
    python benchmarks/bench_interleaved.py --base preset='"paper"' --a width=0.5 --b width=1.0 \\
        --width 640 --height 480 --rounds 2 --block 3

Prints the median and mean seconds per iteration of each variant, and the median of b over a.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from bench_train_step import _batch

from anonbench.backends import torchvision_backend as tb
from anonbench.backends.precision import prepare_model


def _keys(pairs: list[str]) -> dict:
    out = {}
    for kv in pairs:
        key, _, value = kv.partition("=")
        out[key] = json.loads(value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", nargs="*", default=['preset="demo"', "box_positive_fraction=0.5"],
                    metavar="KEY=JSON", help="keys of both variants (default: the street model)")
    ap.add_argument("--a", nargs="*", default=[], metavar="KEY=JSON")
    ap.add_argument("--b", nargs="*", default=[], metavar="KEY=JSON")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=160)
    ap.add_argument("--objects", type=int, default=6, help="instances per image")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=12, help="blocks per variant")
    ap.add_argument("--block", type=int, default=10, help="timed iterations per block")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = _keys(args.base)
    variants = {}
    for name, keys in (("a", args.a), ("b", args.b)):
        cfg = tb.resolve_config({**base, **_keys(keys)})
        torch.manual_seed(0)
        model = prepare_model(tb.build_model(cfg, num_classes=4), torch.device("cpu"), cfg)
        model.train()
        variants[name] = (model, torch.optim.SGD(model.parameters(), lr=1e-4), cfg)
    batches = {}
    for name, (_, _, cfg) in variants.items():     # the same batches where the sizes agree
        rng = np.random.default_rng(0)
        batches[name] = [_batch(rng, cfg["batch_size"], args.height, args.width, 4, cfg["arch"],
                                args.objects) for _ in range(4)]
    times: dict[str, list[float]] = {n: [] for n in variants}
    for _ in range(args.rounds):
        for name, (model, opt, _) in variants.items():
            for it in range(args.block + 2):       # 2 untimed iterations after the switch
                images, targets = batches[name][it % 4]
                t0 = time.perf_counter()
                loss = sum(model(images, targets).values())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if it >= 2:
                    times[name].append(time.perf_counter() - t0)
    med = {n: float(np.median(v)) for n, v in times.items()}
    for name, keys in (("a", args.a), ("b", args.b)):
        print(json.dumps({"variant": name, "keys": _keys(keys), "s_per_iter_median":
                          round(med[name], 4), "s_per_iter_mean": round(float(np.mean(
                              times[name])), 4), "iterations": len(times[name])}))
    print(json.dumps({"b_over_a_median": round(med["b"] / med["a"], 3)}))


if __name__ == "__main__":
    main()
