"""Training throughput of single-tier MelNet: elements per second of a full training step
(forward, backward, gradient-norm clipping and the RMSProp update, as in ``core/training.py``)
and the achieved FLOP rate as a fraction of a plain matrix multiply's FLOP rate measured in the
same run (issue 3: at least 50 % at hidden 256).

Model: ``build_melnet(hidden, layers)`` + ``GMMHead(hidden, K)`` in a ``SpectrogramModel``, loss
``model.nll(x)`` on random ``(batch, frames, bins)`` crops (the cost does not depend on the values).
FLOPs are counted analytically (:func:`melnet_training_flops`); ``--check-flops`` compares the count
with ``torch.utils.flop_counter.FlopCounterMode`` and ``--profile`` prints where the time goes.

    .venv/bin/python benchmarks/training.py                    # hidden 64 and 256; prints a table
    .venv/bin/python benchmarks/training.py --hidden 256 --profile --check-flops
    .venv/bin/python benchmarks/training.py --ddp --precision  # + 1 vs 2 DDP ranks (gloo), bf16 vs fp32
    .venv/bin/python benchmarks/training.py --device cuda --precision   # wherever a GPU exists

``--ddp`` (issue 10) times the same step on 1 process and on 2 data-parallel processes (gloo on
the CPU, :mod:`melforge.core.distributed`'s DDP wrapper, ``--ddp-threads`` torch threads each,
``--batch`` rows per rank), alternately in one process group so that both see the same load; the
scaling efficiency is the 2 ranks' elements per second over twice the 1 rank's (target: at least
70 % at hidden 256). ``--precision`` times fp32 against bf16 (and fp16 on a GPU) autocast
(:class:`melforge.core.precision.Precision`), alternately, on ``--device``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from melforge.core.device import resolve_device
from melforge.core.model import SpectrogramModel
from melforge.core.optim import make_optimizer
from melforge.core.precision import Precision
from melforge.plugins.gmm.head import GMMHead
from melforge.plugins.melnet.backbone import build_melnet
from melforge.plugins.melnet.lstm import LearnedInitLSTM

HIDDEN = (64, 256)
LAYERS = 2
FRAMES = 64
BINS = 64
BATCH = 8
COMPONENTS = 10
LR = 1e-4  # RMSProp, seed 000 Appendix A (configs/train.yaml)
MOMENTUM = 0.9
GRAD_CLIP = 1.0
TARGET_RATIO = 0.5  # issue 3: >= 50 % of the matmul FLOP rate at hidden 256
TARGET_EFFICIENCY = 0.7  # issue 10: 2 DDP ranks at >= 70 % of twice one rank's throughput at hidden 256


def lstm_flops(positions: int, input_size: int, hidden: int) -> int:
    """Forward FLOPs of one LSTM direction over ``positions`` steps (all sequences together):
    the gate matmuls ``x W_ih^T`` and ``h W_hh^T``, each into 4H gates."""
    return 2 * positions * (input_size + hidden) * 4 * hidden


def melnet_training_flops(hidden: int, layers: int, frames: int, bins: int, batch: int, components: int) -> int:
    """FLOPs of one training step (forward + backward) of single-tier MelNet with a K-component
    GMM head on a ``(batch, frames, bins)`` crop.

    Counting rule: a multiply-add is 2 FLOPs; only matrix multiplies are counted. With
    ``N = batch·frames·bins`` positions and H = ``hidden``, the forward pass counts

    - per time-delayed layer: the time LSTM (16·N·H²: input-to-hidden and hidden-to-hidden gate
      matmuls, 2·N·(H + H)·4H), the bidirectional frequency LSTM (2 × 16·N·H²) and the projection
      W^t 3H → H (6·N·H²);
    - per frequency-delayed layer: the LSTM (16·N·H²) and the projection W^f H → H (2·N·H²);
    - the input projections W^t_0, W^f_0 (1 → H each, 2·N·H each) and the GMM head H → 3K (6·N·H·K).

    The backward pass counts 2× the forward FLOPs of every matmul (gradients with respect to the
    input and to the weight), except the input projections, whose input (the data) needs no
    gradient: 1× for those. Not counted: biases, the LSTM gate nonlinearities and cell updates,
    residual additions, the GMM log-density, permutes and copies, gradient clipping and the
    RMSProp update (all O(N·H) or O(parameters), against O(N·H²) for the matmuls).
    """
    n = batch * frames * bins
    h = hidden
    time_layer = 3 * lstm_flops(n, h, h) + 2 * n * 3 * h * h  # time LSTM + 2 frequency directions + W^t
    freq_layer = lstm_flops(n, h, h) + 2 * n * h * h  # LSTM + W^f
    head = 2 * n * h * 3 * components
    inputs = 2 * (2 * n * 1 * h)
    return 3 * (layers * (time_layer + freq_layer) + head) + 2 * inputs


def build_model(hidden: int, layers: int, components: int) -> SpectrogramModel:
    return SpectrogramModel(build_melnet(hidden, layers), GMMHead(hidden, components))


def make_train_step(
    model: SpectrogramModel, x: torch.Tensor, precision: Precision | None = None,
    nll: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Callable[[], float]:
    """One update as in ``core/training.py``: NLL (under ``precision``'s autocast; through ``nll``,
    e.g. a DDP wrapper of ``model.nll``, when given), backward, norm clipping, RMSProp."""
    optimizer = make_optimizer(model.parameters(), {"name": "rmsprop", "lr": LR, "momentum": MOMENTUM})
    precision = precision or Precision("fp32", x.device)
    nll = nll or model.nll
    model.train()

    def step() -> float:
        with precision.autocast():
            loss = nll(x)
        optimizer.zero_grad(set_to_none=True)
        precision.backward(loss)
        precision.unscale(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        precision.step(optimizer)
        return loss.item()  # waits for the device

    return step


def time_interleaved(
    step: Callable[[], object], matmul: Callable[[], object], warmup: int, steps: int, matmuls_per_step: int
) -> tuple[float, float]:
    """Median wall seconds of one ``step`` and of one ``matmul`` call, timed alternately (after each
    timed step, ``matmuls_per_step`` matmuls) so that both see the same load on a shared machine."""
    for _ in range(warmup):
        step()
        matmul()
    step_times, matmul_times = [], []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        step_times.append(time.perf_counter() - start)
        for _ in range(matmuls_per_step):
            start = time.perf_counter()
            matmul()
            matmul_times.append(time.perf_counter() - start)
    return statistics.median(step_times), statistics.median(matmul_times)


def matmul_reference(
    positions: int, hidden: int, device: torch.device = torch.device("cpu")
) -> tuple[Callable[[], object], int]:
    """``torch.mm`` of shapes typical for the model, ``(N, H) × (H, 4H)`` (the input-to-hidden gate
    matmul of a whole LSTM sequence, N = batch·frames·bins), and its FLOPs."""
    a = torch.randn(positions, hidden, device=device)
    b = torch.randn(hidden, 4 * hidden, device=device)
    if device.type == "cuda":
        return (lambda: (torch.mm(a, b), torch.cuda.synchronize())), 2 * positions * hidden * 4 * hidden
    return (lambda: torch.mm(a, b)), 2 * positions * hidden * 4 * hidden


def check_flops(hidden: int, layers: int, components: int) -> None:
    """Compare :func:`melnet_training_flops` with ``FlopCounterMode`` on a small crop. The counter
    does not see inside ``nn.LSTM`` (``aten.lstm`` has no FLOP formula), so the LSTM rule is checked
    separately by unrolling :meth:`LearnedInitLSTM.cell`, which uses plain matmuls."""
    from torch.utils.flop_counter import FlopCounterMode

    frames, bins, batch = 8, 8, 2
    model = build_model(hidden, layers, components)
    x = torch.randn(batch, frames, bins)
    with FlopCounterMode(display=False) as counter:
        model.nll(x).backward()
    counted = counter.get_total_flops()
    ops = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    n = batch * frames * bins
    lstm_directions = 4 * layers  # per layer pair: time + 2 frequency directions + frequency-delayed
    analytic = melnet_training_flops(hidden, layers, frames, bins, batch, components)
    analytic_no_lstm = analytic - 3 * lstm_directions * lstm_flops(n, hidden, hidden)
    print(f"FlopCounterMode, hidden {hidden}, {layers} layers, crop {batch}x{frames}x{bins}: {counted:,} FLOPs {ops}")
    print(f"  analytic without the LSTMs: {analytic_no_lstm:,} ({'equal' if counted == analytic_no_lstm else 'DIFFERENT'}); "
          f"analytic with them: {analytic:,} (the counter misses the nn.LSTM ops)")
    rnn = LearnedInitLSTM(hidden, hidden)
    seq = torch.randn(n // bins, bins, hidden, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        h, c = rnn.initial_state(seq.shape[0])
        state, outs = (h[0], c[0]), []
        for j in range(bins):
            state = rnn.cell(seq[:, j], state)
            outs.append(state[0])
        torch.stack(outs, 1).sum().backward()
    rule = 3 * lstm_flops(n, hidden, hidden)
    print(f"  one LSTM unrolled with LearnedInitLSTM.cell, forward + backward: {counter.get_total_flops():,} FLOPs; "
          f"rule 3 x 2·N·(I+H)·4H = {rule:,} ({'equal' if counter.get_total_flops() == rule else 'DIFFERENT'})")


def time_alternately(steps: dict[str, Callable[[], object]], warmup: int, rounds: int) -> dict[str, float]:
    """Median wall seconds of each of ``steps``, timed in turn round after round (so that all see
    the same load on a shared machine)."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def precision_rows(args: argparse.Namespace, device: torch.device) -> list[tuple[int, str, float, float]]:
    """``(hidden, precision, elements/s, ratio to fp32)``: fp32 against bf16 (and fp16 on a GPU)
    autocast on ``device``, one model per precision, timed alternately."""
    names = ["fp32", "bf16"] + (["fp16"] if device.type == "cuda" else [])
    positions = args.batch * args.frames * args.bins
    rows = []
    for hidden in args.hidden:
        x = torch.randn(args.batch, args.frames, args.bins, device=device)
        steps = {}
        for name in names:
            torch.manual_seed(0)
            model = build_model(hidden, args.layers, args.components).to(device)
            steps[name] = make_train_step(model, x, Precision(name, device))
        seconds = time_alternately(steps, args.warmup, args.steps)
        rows += [(hidden, name, positions / seconds[name], seconds["fp32"] / seconds[name]) for name in names]
    return rows


def _ddp_worker(rank: int, world: int, port: int, args: argparse.Namespace, hidden: int, out: "object") -> None:
    """One of 2 gloo ranks: alternately, rank 0 alone times a plain step (the other rank waits at a
    barrier, sleeping), then both time a DDP step of ``--batch`` rows each."""
    import torch.distributed as dist

    from melforge.core.distributed import Distributed, LaunchEnv

    torch.set_num_threads(args.ddp_threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        single = build_model(hidden, args.layers, args.components)
        torch.manual_seed(0)
        model = build_model(hidden, args.layers, args.components)
        group = Distributed(LaunchEnv(rank, world, rank))
        nll = group.wrap(model, "nll", torch.device("cpu"), find_unused=False)
        torch.manual_seed(rank)
        x = torch.randn(args.batch, args.frames, args.bins)  # this rank's rows
        one_step, ddp_step = make_train_step(single, x), make_train_step(model, x, nll=nll)
        one, both = [], []
        for k in range(args.warmup + args.steps):
            dist.barrier()
            if rank == 0:
                start = time.perf_counter()
                one_step()
                one.append(time.perf_counter() - start)
            dist.barrier()
            start = time.perf_counter()
            ddp_step()
            dist.barrier()
            both.append(time.perf_counter() - start)
        if rank == 0:
            out.put((statistics.median(one[args.warmup:]), statistics.median(both[args.warmup:])))
    finally:
        dist.destroy_process_group()


def ddp_rows(args: argparse.Namespace) -> list[tuple[int, float, float, float]]:
    """``(hidden, 1-rank elements/s, 2-rank elements/s, scaling efficiency)`` on the CPU (gloo)."""
    import socket

    import torch.multiprocessing as mp

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the apps' default: a waiting rank sleeps
    positions = args.batch * args.frames * args.bins
    rows = []
    for hidden in args.hidden:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        mp.start_processes(_ddp_worker, args=(2, port, args, hidden, out), nprocs=2, start_method="spawn")
        one_s, two_s = out.get()
        one_rate, two_rate = positions / one_s, 2 * positions / two_s
        rows.append((hidden, one_rate, two_rate, two_rate / (2 * one_rate)))
    return rows


#: Groups of profiler ops for the summary line; everything else is "other" (elementwise, reductions,
#: optimiser, autograd bookkeeping).
PROFILE_GROUPS = {
    "LSTM (oneDNN RNN forward + backward)": ("aten::mkldnn_rnn_layer", "aten::mkldnn_rnn_layer_backward"),
    "matmul (projections, head)": ("aten::mm", "aten::addmm", "aten::bmm"),
    "copies (permute/reshape copies, cat)": ("aten::copy_", "aten::cat", "aten::clone", "aten::contiguous"),
}


def profile_step(step: Callable[[], float], rows: int, lstm_flops_per_step: int) -> None:
    """Print the ops that take the most self CPU time in one training step, then the share of
    each op group and the FLOP rate of the LSTM ops alone."""
    from torch.profiler import ProfilerActivity, profile

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    averages = prof.key_averages()
    print(averages.table(sort_by="self_cpu_time_total", row_limit=rows))
    self_us = {e.key: e.self_cpu_time_total for e in averages}
    total = sum(self_us.values())
    shares = {name: sum(self_us.get(op, 0.0) for op in ops) for name, ops in PROFILE_GROUPS.items()}
    shares["other"] = total - sum(shares.values())
    print("self CPU time: " + ", ".join(f"{name} {t / 1e6:.2f} s ({t / total:.0%})" for name, t in shares.items()))
    lstm_s = shares["LSTM (oneDNN RNN forward + backward)"] / 1e6
    print(f"LSTM gate matmuls: {lstm_flops_per_step / 1e9:.1f} GFLOP in {lstm_s:.2f} s = {lstm_flops_per_step / lstm_s / 1e9:.1f} GFLOP/s")


def _setup(args: argparse.Namespace) -> str:
    return (f"MelNet 1 tier, {args.layers} layers, K={args.components}, batch {args.batch} x {args.frames} frames "
            f"x {args.bins} mels; torch {torch.__version__}; median of {args.steps} steps after {args.warmup} warm-up")


def print_precision(args: argparse.Namespace, device: torch.device, rows: list, load: float) -> None:
    print(f"### precision on {device}: {_setup(args)}, {torch.get_num_threads()} threads, timed alternately; "
          f"load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    print("| hidden | precision | elements/s | speed vs fp32 |")
    print("|---:|---|---:|---:|")
    for hidden, name, rate, ratio in rows:
        print(f"| {hidden} | {name} | {rate:,.0f} | {ratio:.2f}x |")
    print()


def print_ddp(args: argparse.Namespace, rows: list, load: float) -> None:
    print(f"### data parallel, CPU, gloo: {_setup(args)}, batch {args.batch} per rank, {args.ddp_threads} thread(s) per "
          f"rank, 1 rank and 2 ranks timed alternately; load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    print("| hidden | 1 rank elements/s | 2 ranks elements/s | scaling efficiency |")
    print("|---:|---:|---:|---:|")
    for hidden, one, two, efficiency in rows:
        print(f"| {hidden} | {one:,.0f} | {two:,.0f} | {efficiency:.0%} |")
    for hidden, _, _, efficiency in rows:
        if hidden == 256:
            print(f"\nhidden 256: 2-rank efficiency {efficiency:.0%} (target >= {TARGET_EFFICIENCY:.0%}): "
                  f"{'met' if efficiency >= TARGET_EFFICIENCY else 'not met'}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=list(HIDDEN))
    parser.add_argument("--layers", type=int, default=LAYERS)
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--bins", type=int, default=BINS)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--components", type=int, default=COMPONENTS)
    parser.add_argument("--warmup", type=int, default=2, help="untimed training steps per size")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per size (median reported)")
    parser.add_argument("--matmul-repeats", type=int, default=4, help="matmuls timed after each timed step")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table per size")
    parser.add_argument("--profile-rows", type=int, default=15)
    parser.add_argument("--check-flops", action="store_true", help="compare the FLOP count with FlopCounterMode")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (an absent device is an error)")
    parser.add_argument("--ddp", action="store_true", help="also time 1 against 2 DDP ranks (gloo, CPU)")
    parser.add_argument("--ddp-threads", type=int, default=1, help="torch threads of each DDP rank (and of the 1-rank run)")
    parser.add_argument("--precision", action="store_true", help="also time bf16 (and fp16 on a GPU) against fp32")
    parser.add_argument("--no-flops-table", action="store_true", help="skip the FLOP-rate table")
    args = parser.parse_args()
    device = resolve_device(args.device, key="--device")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    positions = args.batch * args.frames * args.bins
    load_start = os.getloadavg()[0]
    if args.check_flops:
        for hidden in args.hidden:
            check_flops(hidden, args.layers, args.components)
    if args.precision:
        print_precision(args, device, precision_rows(args, device), load_start)
    if args.ddp:
        load = os.getloadavg()[0]
        print_ddp(args, ddp_rows(args), load)
    if args.no_flops_table:
        return
    rows = []
    for hidden in args.hidden:
        model = build_model(hidden, args.layers, args.components).to(device)
        x = torch.randn(args.batch, args.frames, args.bins, device=device)
        step = make_train_step(model, x)
        mm, mm_flops = matmul_reference(positions, hidden, device)
        seconds, mm_seconds = time_interleaved(step, mm, args.warmup, args.steps, args.matmul_repeats)
        flops = melnet_training_flops(hidden, args.layers, args.frames, args.bins, args.batch, args.components)
        rows.append((hidden, positions / seconds, 1000 * seconds, flops / seconds / 1e9, mm_flops / mm_seconds / 1e9))
        if args.profile:
            print(f"### profile, hidden {hidden}")
            lstm_total = 3 * 4 * args.layers * lstm_flops(positions, hidden, hidden)  # fwd + bwd, 4 directions per pair
            profile_step(step, args.profile_rows, lstm_total)
    print(f"MelNet 1 tier, {args.layers} layers, K={args.components}, batch {args.batch} x {args.frames} frames "
          f"x {args.bins} mels on {device}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"median of {args.steps} steps after {args.warmup} warm-up; matmul: torch.mm (N, H) x (H, 4H), N = {positions}, "
          f"median of {args.matmul_repeats} after each timed step; load average {load_start:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end")
    print("| hidden | elements/s | ms/step | GFLOP/step | achieved GFLOP/s | matmul GFLOP/s | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for hidden, rate, ms, gflops, mm in rows:
        per_step = gflops * ms / 1000
        print(f"| {hidden} | {rate:,.0f} | {ms:.0f} | {per_step:.1f} | {gflops:.1f} | {mm:.1f} | {gflops / mm:.0%} |")
    if 256 in args.hidden:
        ratio = next(r[3] / r[4] for r in rows if r[0] == 256)
        print(f"\nhidden 256: {ratio:.0%} of the matmul FLOP rate (target >= {TARGET_RATIO:.0%}): "
              f"{'met' if ratio >= TARGET_RATIO else 'not met'}")


if __name__ == "__main__":
    main()
