"""A likelihood model (MelNet, WaveNet; backbone + head, one or several tiers) as a
:class:`~melforge.core.learner.Learner`: normalised crops of the experiment's corpus, the
optimiser config's RMSProp or Adam with per-tier gradient clipping, the NLL of every tier, and
the final samples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from .config_schema import TrainApp, typed
from .crops import CropSampler, ValidationSet
from .device import Placement
from .experiment import Experiment, place_experiment
from .learner import Learner, OptimizerSpec, StepContext
from .model import nats_to_bits
from .multiscale import MultiscaleModel, check_sample_shape
from .samples import render_samples


def train_tiers(cfg: Mapping[str, Any], n_tiers: int) -> list[int]:
    """``cfg["tiers"]["train"]``: the 1-based tiers this run updates (default: all).

    Raises:
        ValueError: a tier outside ``1..n_tiers`` (names the key).
    """
    wanted = (cfg.get("tiers") or {}).get("train")
    if wanted is None:
        return list(range(1, n_tiers + 1))
    wanted = [wanted] if isinstance(wanted, int) else list(wanted)
    if not wanted or any(not isinstance(g, int) or not 1 <= g <= n_tiers for g in wanted):
        raise ValueError(f"tiers.train: expected tiers among 1..{n_tiers}, got {wanted!r}")
    return sorted(set(wanted))


def overall_nll(per_tier: Mapping[int, float], shapes: list[tuple[int, int]]) -> float:
    """Per-tier NLLs (nats per element of each tier) → nats per element of the spectrogram made
    of those tiers: ``Σ_g n_g·NLL_g / Σ_g n_g`` (the log-likelihood is a sum over tiers, seed 000 eq. 10)."""
    sizes = {g: shapes[g - 1][0] * shapes[g - 1][1] for g in per_tier}
    return sum(per_tier[g] * sizes[g] for g in per_tier) / sum(sizes.values())


@torch.no_grad()
def evaluate(
    model: MultiscaleModel, valid: ValidationSet, batch_size: int, cond: torch.Tensor | None = None,
    *, placement: Placement | None = None,
) -> dict[int, float]:
    """Mean NLL of every tier, ``{g: nats per valid element of tier g}``, over every piece of
    ``valid`` (batched by length, padding not counted); ``cond: (pieces, C)`` aligned with
    ``valid.pieces``, or ``None``. With ``placement`` the batches run on its device and in its
    precision (the NLL itself in fp32), and data-parallel ranks share them (batch ``k`` on rank
    ``k mod world size``), summing totals and counts over the ranks: every rank returns the same."""
    placement = placement or Placement.local()
    group, device = placement.group, placement.device
    was_training = model.training
    model.eval()
    totals = torch.zeros(2, model.n_tiers, dtype=torch.float64)  # [summed NLL, element count] per tier
    for k, (x, lengths, idx) in enumerate(valid.batches(batch_size)):
        if k % group.world_size != group.rank:
            continue
        z = cond[idx].to(device) if cond is not None else None
        lengths = lengths.to(device) if lengths is not None else None
        with placement.precision.autocast():
            sums = model.tier_nll_sums(x.to(device), z, None, lengths)
        for g, (total, count) in sums.items():
            totals[0, g - 1] += float(total)
            totals[1, g - 1] += count
    totals = group.sum(totals)
    model.train(was_training)
    return {g: float(totals[0, g - 1] / totals[1, g - 1]) for g in range(1, model.n_tiers + 1)}


@dataclass
class TrainingData:
    """Normalised training batches and the validation set of an experiment.

    Attributes:
        train: draws right-padded ``(batch, frames ≤ crop_frames, bins)`` batches with their
            lengths and speaker labels (bucketed by length).
        valid: every validation clip, in pieces of at most ``crop_frames`` frames.
        valid_cond: ``(pieces, speakers)`` one-hot speaker of each piece, or ``None``.
        crop_frames: the longest crop, in frames (``data.crop_frames``, a maximum).
    """

    train: CropSampler
    valid: ValidationSet
    valid_cond: torch.Tensor | None
    crop_frames: int

    @classmethod
    def from_experiment(cls, exp: Experiment) -> "TrainingData":
        """Batches of ``exp``'s corpus, normalised with its normaliser (``cfg["data"]`` keys
        ``crop_frames``, ``min_frames``, ``buckets`` and ``valid_crops``; lengths are multiples
        of the model's time factor)."""
        corpus, normalizer, data = exp.load_corpus(), exp.normalizer, typed(TrainApp, exp.cfg).data
        crop_frames, multiple, min_frames = data.crop_frames, exp.model.schedule.time_factor, data.min_frames
        train = CropSampler(
            [normalizer.normalize(f) for f in corpus.train], crop_frames, multiple=multiple, min_frames=min_frames,
            buckets=data.buckets, speakers=corpus.train_speakers,
        )
        valid = ValidationSet.build(
            [normalizer.normalize(f) for f in corpus.valid], crop_frames, multiple=multiple, min_frames=min_frames,
            max_pieces=data.valid_crops,
        )
        valid_cond = exp.speakers.one_hot([corpus.valid_speakers[k] for k in valid.sources]) if exp.speakers else None
        return cls(train, valid, valid_cond, crop_frames)


def check_shapes(exp: Experiment) -> None:
    """The crop and sample lengths divide into the model's tiers.

    Raises:
        ValueError: names ``data.crop_frames``, ``sample.frames`` or ``sample.prime_frames``.
    """
    app, schedule, bins = typed(TrainApp, exp.cfg), exp.model.schedule, exp.representation.n_bins
    schedule.check(app.data.crop_frames, bins, what="data.crop_frames")
    if app.sample is not None and app.sample.count > 0:
        check_sample_shape(exp.model, bins, app.sample.frames, app.sample.prime_frames)


def check_inverter(exp: Experiment) -> None:
    """The inverter that will turn the run's samples into audio accepts its representation
    (:meth:`melforge.core.inverter.Inverter.accepts`). Checked before training, so a mismatch
    does not surface only after the run's last step.

    Raises:
        ValueError: names both representations and the ``inverter`` key.
    """
    sample = typed(TrainApp, exp.cfg).sample
    if sample is None or sample.count <= 0:
        return
    problem = exp.inverter.accepts(exp.cfg["representation"]["name"], exp.representation)
    if problem:
        raise ValueError(f"inverter: {exp.cfg['inverter'].get('name')} {problem}; choose another inverter, or set sample.count=0")


class ModelLearner(Learner):
    """The experiment's G-tier model trained on its NLL (seed 000 eq. 10 per tier).

    A multiscale model (``tiers.layers`` with G entries, §5) trains the tiers named in
    ``tiers.train`` (default all) on the same crops, each on its own NLL and with its own
    gradient clipping (one clipping group per tier), so the tiers train independently;
    validation NLL is reported per tier (``nll_tier<g>``) and for the whole spectrogram
    (``nll``, eq. 10). With ``data.speaker_conditioning`` every tier is conditioned on a
    one-hot speaker vector (§4.3).

    Every rank draws the step's whole batch of ``train.batch_size × world size`` rows and trains
    on its own slice; the NLL of each tier is its summed NLL over the rank's valid elements
    divided by the count over all ranks' (times the world size, which DDP's gradient average
    divides out), so the update equals one process's on the whole batch.

    Args:
        exp: the composed experiment (model, representation, normaliser, corpus, samplers).

    Raises:
        ValueError: shapes that do not divide into the tiers; an inverter that cannot take the
            run's samples (names the keys).
    """

    monitor = "nll"
    monitor_label = "NLL"
    kind = "model"

    def __init__(self, exp: Experiment):
        self.exp = exp
        self.trained = train_tiers(exp.cfg, exp.model.n_tiers)
        self.data: TrainingData | None = None
        self.nll_sums = exp.model.tier_nll_sums
        self.frames_this_run = 0

    @property
    def module(self) -> torch.nn.Module:
        return self.exp.model

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """``(frames, bins)`` of every tier of a training crop."""
        return self.exp.model.schedule.shapes(typed(TrainApp, self.exp.cfg).data.crop_frames, self.exp.representation.n_bins)

    def prepare(self) -> None:
        check_shapes(self.exp)
        check_inverter(self.exp)
        self.data = TrainingData.from_experiment(self.exp)

    def skipped(self) -> list[dict]:
        return list(self.exp.load_corpus().skipped)

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Nothing more: the experiment was built from ``state`` (weights, normaliser, speakers)."""

    def place(self, placement: Placement) -> None:
        """The model on the device, its samplers chosen again for it, and its NLL through DDP
        when there are several ranks (its backward averages the gradients)."""
        place_experiment(self.exp, placement.device)
        model = self.exp.model
        self.nll_sums = placement.group.wrap(
            model, "tier_nll_sums", placement.device, find_unused=len(self.trained) < model.n_tiers
        )

    def optimizers(self) -> list[OptimizerSpec]:
        tiers = self.exp.model.tiers
        return [OptimizerSpec(
            "model", list(self.exp.model.parameters()), self.exp.cfg["optimizer"],
            clip_groups={f"tier{g}": list(tiers[g - 1].parameters()) for g in self.trained},
            max_norm=typed(TrainApp, self.exp.cfg).train.grad_clip,
        )]

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, list]:
        """``(x: (batch, frames, bins), lengths: (batch,), speaker labels)``, right-padded."""
        batch = self.data.train.draw(batch_size, generator)
        self.frames_this_run += int(batch[1].sum())  # valid frames of the global batch, padding excluded
        return batch

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor, list], ctx: StepContext) -> dict[str, float]:
        placement = ctx.placement
        group, device = placement.group, placement.device
        x, lengths, labels = batch
        cond = self.exp.speakers.one_hot(labels).to(device) if self.exp.speakers else None
        with placement.precision.autocast():
            sums = self.nll_sums(x.to(device), cond, self.trained, lengths.to(device))  # {g: (summed NLL, count)}
        # (trained tiers, [summed NLL, valid elements]) over all ranks: one small all-reduce
        totals = group.sum(torch.tensor([[float(sums[g][0].detach()), float(sums[g][1])] for g in self.trained],
                                        dtype=torch.float64))
        reported = {g: float(totals[k, 0] / totals[k, 1]) for k, g in enumerate(self.trained)}
        loss = sum(sums[g][0] * (group.world_size / float(totals[k, 1])) for k, g in enumerate(self.trained))
        ctx.update("model", loss)
        return {"nll": overall_nll(reported, self.shapes), **self.tier_figures(reported)}

    def validate(self, batch_size: int, placement: Placement) -> dict[str, float]:
        per_tier = evaluate(self.exp.model, self.data.valid, batch_size, self.data.valid_cond, placement=placement)
        return {"nll": overall_nll(per_tier, self.shapes), **self.tier_figures(per_tier)}

    def tier_figures(self, per_tier: Mapping[int, float]) -> dict[str, float]:
        """``{"nll_tier<g>": …}`` of a multiscale model (a single tier's is ``nll`` itself)."""
        return {f"nll_tier{g}": v for g, v in per_tier.items()} if self.exp.model.n_tiers > 1 else {}

    def checkpoint_extras(self) -> dict[str, Any]:
        exp = self.exp
        return {
            "normalizer": exp.normalizer.state_dict(),
            "representation": exp.representation.config(),
            "speakers": exp.speakers.labels if exp.speakers else None,
        }

    def on_start(self, reporter: Any) -> None:
        exp = self.exp
        reporter.image("data/valid_crop", exp.representation.to_image(exp.normalizer.denormalize(self.data.valid.pieces[0].numpy())), 0)

    def log_units(self) -> str:
        return "nats/element"

    def summary(self, metrics: Mapping[str, Any], seconds: float) -> dict[str, Any]:
        """Tiers, shapes, clips, samplers, speed, and every NLL in bits as well."""
        exp, corpus = self.exp, self.exp.load_corpus()
        out: dict[str, Any] = {
            "tiers": exp.model.n_tiers, "tiers_trained": self.trained, "tier_shapes": [list(s) for s in self.shapes],
            "units": "NLL in nats (and bits) per element of the normalised features (a spectrogram bin, or a sample "
            "of a waveform representation); valid_nll and train_nll are over the whole spectrogram (the sum over "
            "tiers, eq. 10), *_tier<g> per element of tier g",
            "speakers": exp.speakers.labels if exp.speakers else None,
            "samplers": [type(s).__name__ for s in exp.samplers],
            "train_clips": len(corpus.train), "valid_clips": len(corpus.valid),
            "valid_crops": len(self.data.valid), "valid_frames": self.data.valid.frames,
            "train_elements_per_second": self.frames_this_run * exp.representation.n_bins / max(seconds, 1e-9),
        }
        for key, value in metrics.items():
            if "_nll" in key and isinstance(value, float):
                out[key.replace("_nll", "_bits")] = nats_to_bits(value) if np.isfinite(value) else float("nan")
        return out

    def finish(self, run_dir: Path, reporter: Any, step: int, placement: Placement) -> dict[str, Any]:
        """Draw the final samples (``cfg["sample"]``), write them under ``run_dir/samples`` and
        into TensorBoard; returns ``{"samples": [...]}`` (nothing when ``sample.count`` is 0)."""
        import soundfile  # deferred: only a run that samples reads its WAVs back

        exp, sample = self.exp, typed(TrainApp, self.exp.cfg).sample
        if sample is None or sample.count <= 0:
            return {}
        prime, prime_speaker = None, None
        if sample.prime_frames:
            prime, prime_speaker = exp.prime(sample.prime_frames, sample.prime_audio)
        rendered = render_samples(
            exp.model, exp.samplers, exp.representation, exp.normalizer, exp.inverter, run_dir / "samples",
            count=sample.count, frames=sample.frames, temperature=sample.temperature, seed=sample.seed,
            speakers=exp.speakers, speaker=sample.speaker or prime_speaker, prime=prime,
        )
        for k, r in enumerate(rendered):
            reporter.image(f"samples/{k}", exp.representation.to_image(np.load(r.npy)), step)
            audio, sr = soundfile.read(r.wav, dtype="float32")  # the WAV as written, no second inversion
            reporter.audio(f"samples/{k}", audio, sr, step)
        inverted = exp.representation.inverter_input is not None  # a waveform decodes itself
        return {"samples": [r.summary() for r in rendered], "inverter": exp.cfg["inverter"].get("name") if inverted else None}
