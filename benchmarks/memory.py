"""Peak memory of one training step of each Table 2 tier at batch 1, with and without gradient
checkpointing (seed 000 Appendix A Table 2: hidden 512, K = 10; our configs ``speech`` =
Blizzard, ``piano`` = MAESTRO, ``speakers`` = VoxCeleb2 with 4-speaker one-hot conditioning).

Method. Each tier is built as the runner builds it: the experiment config is composed with
Hydra (``train.yaml`` + ``experiment=<column>`` + ``backbone.checkpoint=<bool>``) and the tier is
made by the same registry calls and keyword arguments as ``build_model(cfg, cond_features=4 for
speakers else 0).tiers[g - 1]`` (:func:`build_tier`; the other tiers are not built, so that their
parameters do not raise the process's peak before the step). One training step is the runner's:
``tier.nll(x, cond, context)`` on a random ``x: (1, frames_g, bins_g)`` (context of the same shape
for g > 1), backward, gradient-norm clipping and an RMSProp step (``make_optimizer``). Every case
runs in a fresh subprocess (2 torch threads). Its peak is ``getrusage(RUSAGE_SELF).ru_maxrss``
minus the RSS just before the step, taken in two phases (the peak is reset with
``/proc/self/clear_refs`` between them): forward + backward (activations kept for backward,
their gradients, the parameter gradients) and clipping + RMSProp step (gradients plus the
optimizer's two buffers per parameter). The step's peak is the larger of the two. Parameters
are in the baseline and reported separately.

Full-size steps take minutes each on a CPU, so every tier is measured at two reduced frame
counts (``--fractions``, default 1/4 and 1/2 of its frames, all bins kept). The
forward+backward peak is fitted by a line in the number of frames and extrapolated to the
tier's full frames; the optimizer-phase peak does not depend on the frames. The extrapolation
is validated by also measuring tiers at their full shape (``--validate``); the table marks
those rows "measured" and the prediction error is printed below it. Much smaller fractions
(1/16 and 1/8) do not work: there the forward+backward peak is held up by the parameter
gradients rather than the activations, and the line through those points was off by -36 %
(no checkpointing) and +61 % (checkpointing) at the full shape of tier 2 of ``speech``.

Cost: each case is a fresh process (about 15 s of start-up and optimizer work) plus the step,
about 1.6 ms per element per MelNet layer (feature-extraction layers count as one more) on 2
busy cores; every tier of every column at the default fractions is about 2 hours, so pick tiers
with ``--tiers`` and keep finished cases in ``--cache`` (``--from-cache`` only tabulates).

    .venv/bin/python benchmarks/memory.py --quick                   # the validation tier only
    .venv/bin/python benchmarks/memory.py --cache /tmp/memory.json --tiers speakers:2 speech:1
    .venv/bin/python benchmarks/memory.py --cache /tmp/memory.json --from-cache
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

THREADS = 2
GIB = 2**30
MIB = 2**20
COLUMNS = {  # our config → Table 2 column, speakers (one-hot conditioning width)
    "speech": ("Blizzard", 0),
    "piano": ("MAESTRO", 0),
    "speakers": ("VoxCeleb2", 4),
}
FRACTIONS = (1 / 4, 1 / 2)
VALIDATE = ("speech:2",)  # the cheapest tier at full shape
MAX_FULL_GIB = 16.0
RUN = True  # False (--from-cache): never start a case, tabulate only what the cache holds  # skip a full-shape validation run predicted above this (machine: 24 GiB)


def compose(column: str, checkpoint: bool) -> dict:
    """``train.yaml`` with ``experiment=column`` as ``melforge-train`` composes it (plain dict)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from omegaconf import OmegaConf

    overrides = [f"experiment={column}", f"backbone.checkpoint={str(checkpoint).lower()}"]
    with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
        cfg = hydra_compose(config_name="train", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def tier_shapes(cfg: dict) -> list[tuple[int, int]]:
    """``(frames_g, bins_g)`` of every tier at the config's full crop (``data.crop_frames``)."""
    from melforge.core.experiment import tier_layers
    from melforge.core.tiers import TierSchedule

    layers = tier_layers(cfg)
    return TierSchedule(len(layers)).shapes(int(cfg["data"]["crop_frames"]), int(cfg["representation"]["n_mels"]))


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak() -> None:
    """Reset this process's peak RSS (``ru_maxrss``) to its current RSS (Linux ``clear_refs``)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def build_tier(cfg: dict, tier: int, speakers: int):
    """Tier ``tier`` exactly as :func:`melforge.core.experiment.build_model` builds it (same
    registries and keyword arguments), without building the other tiers."""
    from melforge.core.experiment import _accepts, tier_layers
    from melforge.core.model import SpectrogramModel
    from melforge.core.plugins import registries

    regs = registries()
    layers = tier_layers(cfg)
    extra = {"layers": layers[tier - 1]}
    if tier > 1:
        extra["context"] = True
    if speakers:
        extra["cond_features"] = speakers
    if _accepts(regs.backbone.get(str(cfg["backbone"]["name"])).factory, "bins"):
        extra["bins"] = tier_shapes(cfg)[tier - 1][1]
    backbone = regs.backbone.build(cfg["backbone"], **extra)
    return SpectrogramModel(backbone, regs.head.build(cfg["head"], in_features=backbone.hidden_size))


def child(column: str, tier: int, frames: int, checkpoint: bool) -> dict:
    """One training step of tier ``tier`` of ``column`` on ``frames`` frames (in this process).

    Returns peaks above the RSS just before the step, in bytes: ``fwd_bwd`` (forward and
    backward: activations and gradients), ``opt`` (clipping and the RMSProp step: gradients and
    optimizer state) and ``delta`` (their maximum, the step's peak)."""
    import gc

    import torch

    from melforge.core.optim import make_optimizer

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    cfg = compose(column, checkpoint)
    speakers = COLUMNS[column][1]
    bins = tier_shapes(cfg)[tier - 1][1]
    model_tier = build_tier(cfg, tier, speakers)
    model_tier.train()
    optimizer = make_optimizer(model_tier.parameters(), cfg["optimizer"])
    params = sum(p.numel() * p.element_size() for p in model_tier.parameters())
    x = torch.randn(1, frames, bins)  # (batch, frames_g, bins_g)
    context = torch.randn(1, frames, bins) if tier > 1 else None  # x_<g
    cond = torch.nn.functional.one_hot(torch.tensor([0]), speakers).float() if speakers else None
    gc.collect()
    base = rss_bytes()
    reset_peak()
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss = model_tier.nll(x, cond, context)
    loss.backward()
    del loss
    fwd_bwd = peak_bytes() - base
    reset_peak()
    torch.nn.utils.clip_grad_norm_(model_tier.parameters(), float(cfg["train"]["grad_clip"]))
    optimizer.step()
    opt = peak_bytes() - base
    seconds = time.perf_counter() - start
    return {"params": params, "base": base, "fwd_bwd": fwd_bwd, "opt": opt, "delta": max(fwd_bwd, opt), "seconds": seconds}


def run_case(column: str, tier: int, frames: int, checkpoint: bool, cache: dict, cache_path: str | None) -> dict:
    """:func:`child` in a fresh interpreter (so that peaks of different cases never mix);
    results are kept in ``cache`` (and written to ``cache_path``) so that a rerun skips them."""
    key = f"{column}:{tier}:{frames}:{int(checkpoint)}"
    if key in cache:
        return cache[key]
    if not RUN:
        raise KeyError(key)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", column, str(tier), str(frames), str(int(checkpoint))]
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), MKL_NUM_THREADS=str(THREADS))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"{key}: exit {out.returncode}\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"  {key}: forward+backward +{result['fwd_bwd'] / GIB:.3f} GiB, optimizer +{result['opt'] / GIB:.3f} GiB "
        f"(base {result['base'] / GIB:.2f} GiB, {result['seconds']:.1f} s)",
        file=sys.stderr, flush=True,
    )
    cache[key] = result
    if cache_path:
        with open(cache_path, "w") as f:
            json.dump(cache, f, indent=1)
    return result


def predict(points: list[dict], frames: int) -> float:
    """Peak at ``frames`` from reduced-frame runs: the forward+backward peak extrapolated along
    its line in the number of frames, or the optimizer-step peak (which does not depend on the
    frames; the mean of the runs), whichever is larger."""
    a, b = fit_line([(p["frames"], p["fwd_bwd"]) for p in points])
    return max(a + b * frames, sum(p["opt"] for p in points) / len(points))


def reduced_frames(frames: int, fractions: tuple[float, ...]) -> list[int]:
    """Distinct frame counts (at least 2) at the given fractions of ``frames``."""
    out = sorted({max(2, round(frames * f)) for f in fractions})
    if len(out) < 2:
        out = [out[0], out[0] * 2]
    return out


def fit_line(points: list[tuple[int, int]]) -> tuple[float, float]:
    """Least-squares ``delta = a + b·frames`` through ``(frames, delta)`` points → ``(a, b)``."""
    n = len(points)
    mx = sum(f for f, _ in points) / n
    my = sum(d for _, d in points) / n
    sxx = sum((f - mx) ** 2 for f, _ in points)
    b = sum((f - mx) * (d - my) for f, d in points) / sxx
    return my - b * mx, b


def measure_tier(column: str, g: int, column_shapes, args, cache: dict, validate) -> tuple[dict, list]:
    """Tier ``g`` of ``column`` in both modes → its table row and its validation errors."""
    tier_errors = []
    layers, tshapes = column_shapes
    frames, bins = tshapes[g - 1]
    row = {"column": column, "tier": g, "layers": layers[g - 1], "frames": frames, "bins": bins}
    for ckpt in (False, True):
        points = []
        for f in reduced_frames(frames, tuple(args.fractions)):
            r = run_case(column, g, f, ckpt, cache, args.cache)
            points.append(dict(r, frames=f))
            row["params"] = r["params"]
        predicted = predict(points, frames)
        row[ckpt], row[f"source{int(ckpt)}"] = predicted, "extrapolated"
        if (column, g) in validate:
            if predicted / GIB > MAX_FULL_GIB:
                print(f"  skip full {column} g{g} ckpt={int(ckpt)}: predicted {predicted / GIB:.1f} GiB", file=sys.stderr)
                continue
            measured = run_case(column, g, frames, ckpt, cache, args.cache)["delta"]
            row[ckpt], row[f"source{int(ckpt)}"] = measured, "measured"
            tier_errors.append((column, g, ckpt, predicted, measured))
    return row, tier_errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=4, metavar=("COLUMN", "TIER", "FRAMES", "CHECKPOINT"), help=argparse.SUPPRESS)
    parser.add_argument("--columns", nargs="+", default=list(COLUMNS), choices=list(COLUMNS))
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS),
                        help="fractions of each tier's frames to measure (default 1/4 1/2)")
    parser.add_argument("--validate", nargs="*", default=list(VALIDATE), metavar="COLUMN:TIER",
                        help="tiers also measured at full shape (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="only the tiers named by --validate")
    parser.add_argument("--tiers", nargs="+", default=None, metavar="COLUMN:TIER",
                        help="only these tiers, in this order (after the --validate ones)")
    parser.add_argument("--cache", default=None, help="JSON file of finished cases (read, then extended)")
    parser.add_argument("--from-cache", action="store_true", help="run nothing; tabulate the tiers --cache holds")
    args = parser.parse_args()
    if args.child:
        column, tier, frames, ckpt = args.child
        print(json.dumps(child(column, int(tier), int(frames), bool(int(ckpt)))))
        return

    cache = {}
    if args.cache and os.path.exists(args.cache):
        with open(args.cache) as f:
            cache = json.load(f)
    global RUN
    RUN = not args.from_cache
    validate = [(c, int(g)) for c, g in (v.split(":") for v in args.validate)]
    started = time.perf_counter()
    load = os.getloadavg()[0]
    shapes = {}
    for column in COLUMNS:
        cfg = compose(column, False)
        shapes[column] = (cfg["tiers"]["layers"], tier_shapes(cfg))
    cases = list(validate)  # validation tiers first, then the rest column by column
    if args.tiers:
        cases += [(c, int(g)) for c, g in (t.split(":") for t in args.tiers) if (c, int(g)) not in validate]
    elif not args.quick:
        cases += [(c, g) for c in args.columns for g in range(1, len(shapes[c][0]) + 1) if (c, g) not in validate]
    rows, errors = [], []
    for column, g in cases:
        try:
            row, tier_errors = measure_tier(column, g, shapes[column], args, cache, validate)
        except KeyError as e:
            print(f"  {column} tier {g}: {e} not in the cache, left out", file=sys.stderr)
            continue
        rows.append(row)
        errors += tier_errors
    rows.sort(key=lambda r: (list(COLUMNS).index(r["column"]), r["tier"]))

    print(f"\nPeak memory of one training step at batch 1 (hidden 512, K = 10), torch {THREADS} threads; "
          f"load average at start {load:.2f}; {time.perf_counter() - started:.0f} s in all.\n")
    print("| column | tier | layers | shape (frames × bins) | elements | parameters (MiB) "
          "| peak, no checkpointing (GiB) | peak, checkpointing (GiB) | measured / extrapolated |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        source = r["source0"] if r["source0"] == r["source1"] else f"{r['source0']} / {r['source1']}"
        print(
            f"| {r['column']} ({COLUMNS[r['column']][0]}) | {r['tier']} | {r['layers']} | {r['frames']} × {r['bins']} "
            f"| {r['frames'] * r['bins']:,} | {r['params'] / MIB:.0f} | {r[False] / GIB:.2f} | {r[True] / GIB:.2f} | {source} |"
        )
    if errors:
        print("\nValidation (full shape measured vs extrapolated from the reduced-frame runs):\n")
        print("| column | tier | checkpointing | extrapolated (GiB) | measured (GiB) | error |")
        print("| --- | ---: | --- | ---: | ---: | ---: |")
        for column, g, ckpt, predicted, measured in errors:
            print(f"| {column} | {g} | {'yes' if ckpt else 'no'} | {predicted / GIB:.3f} | {measured / GIB:.3f} "
                  f"| {100 * (predicted - measured) / measured:+.1f} % |")


if __name__ == "__main__":
    main()
