"""Every command example in README.md runs, with tiny overrides appended (a README that lies is
a bug). A command added to the README without an entry in COMMANDS fails
``test_every_readme_command_has_a_test``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

README = Path(__file__).resolve().parents[1] / "README.md"

#: MelNet small enough for seconds (the same keys as conftest.TINY_TRAIN).
TINY = ("backbone.hidden_size=8", "backbone.layers=1", "head.components=2", "data.crop_frames=8",
        "data.valid_crops=2", "train.batch_size=2", "train.max_steps=2", "train.valid_every=2",
        "train.checkpoint_every=2", "sample.frames=8", "inverter.n_iter=2", "threads=1")
TINY_WAVENET = ("backbone.layers=3", "backbone.residual_channels=4", "backbone.skip_channels=8",
                "data.crop_frames=200", "data.valid_crops=2", "train.batch_size=2", "train.max_steps=2",
                "train.valid_every=2", "train.checkpoint_every=2", "sample.frames=400", "threads=1")
TINY_TIERS = ("tiers.layers=[1,1,1]", "backbone.hidden_size=8", "head.components=2", "data.crop_frames=8",
              "data.valid_crops=2", "train.batch_size=2", "train.max_steps=2", "train.valid_every=2",
              "train.checkpoint_every=2", "sample.frames=8", "inverter.n_iter=2", "threads=1")

#: README command (whitespace-normalised) → the test that runs it.
COMMANDS = {
    "melforge-train": "test_main_job_sample_and_invert_commands",
    ".venv/bin/melforge-train": "test_main_job_sample_and_invert_commands",
    "melforge-sample checkpoint=runs/.../checkpoints/last.pt sample.count=3 sample.temperature=0.8":
        "test_main_job_sample_and_invert_commands",
    "melforge-invert input=speech.wav output=out.wav inverter=pghi": "test_main_job_sample_and_invert_commands",
    "melforge-train -m backbone.layers=1,2,4": "test_sweep_command",
    "melforge-report DIR": "test_sweep_command",
    "melforge-train experiment=wavenet_speech_tiny": "test_experiment_commands",
    ".venv/bin/melforge-train experiment=speech_tiers_tiny": "test_experiment_commands",
    "melforge-train dataset=audio_folder dataset.root=/path/to/audio": "test_audio_folder_command",
    "melforge-plugins": "test_plugins_commands",
    "melforge-plugins --strict": "test_plugins_commands",
    "melforge-train -m experiment=tier_ablation tiers=two,three,four,five":
        "test_tier_ablation.py::test_tier_ablation_sweep_is_named_after_the_experiment_and_reported",
    "melforge-report multirun/tier_ablation/<time>":
        "test_tier_ablation.py::test_tier_ablation_sweep_is_named_after_the_experiment_and_reported",
    "melforge-train --help": "test_config_errors.py::test_help_lists_every_key_with_its_meaning_for_the_chosen_parts",
    "torchrun --nproc_per_node=2 -m melforge.core.cli.train train.batch_size=4":
        "test_distributed.py::test_two_ranks_at_batch_b_train_as_one_process_at_2b_and_resume_on_one_rank",
    "melforge-train -m hydra/launcher=submitit_local backbone.hidden_size=8,16":
        "test_distributed.py::test_submitit_local_launcher_runs_a_two_job_sweep",
    "melforge-train experiment=pg_vocoder_tiny": "test_pg_vocoder_commands",
    "melforge-train experiment=pg_vocoder_mixed_tiny": "test_pg_vocoder_mixed_command",
    "melforge-train experiment=hifigan_tiny": "test_gan_vocoder_commands",
    "melforge-invert input=speech.wav output=out.wav inverter=hifigan "
    "inverter.checkpoint=runs/hifigan_tiny/.../checkpoints/last.pt": "test_gan_vocoder_commands",
    "melforge-train experiment=ddsp_tiny": "test_source_filter_commands",
    "melforge-train experiment=nsf_tiny": "test_source_filter_commands",
    "melforge-invert input=speech.wav output=out.wav inverter=ddsp "
    "inverter.checkpoint=runs/ddsp_tiny/.../checkpoints/last.pt": "test_source_filter_commands",
    "melforge-invert input=speech.wav output=out.wav inverter=nsf "
    "inverter.checkpoint=runs/nsf_tiny/.../checkpoints/last.pt": "test_source_filter_commands",
    "melforge-train experiment=nsf_hifigan_tiny": "test_source_filter_commands",
    "melforge-invert input=speech.wav output=out.wav inverter=nsf_hifigan "
    "inverter.checkpoint=runs/nsf_hifigan_tiny/.../checkpoints/last.pt": "test_source_filter_commands",
    "melforge-invert input=music.wav output=out.wav inverter=pg_vocoder "
    "inverter.checkpoint=runs/pg_vocoder_tiny/.../checkpoints/last.pt": "test_pg_vocoder_commands",
    "melforge-invert input=music.wav output=out.wav inverter=pg_vocoder "
    "inverter.checkpoint=runs/pg_vocoder_tiny/.../checkpoints/last.pt inverter.refine_partials=true":
        "test_pg_vocoder_commands",
    "melforge-invert input=music.wav output=out.wav inverter=pg_vocoder "
    "inverter.checkpoint=runs/pg_vocoder_tiny/.../checkpoints/last.pt inverter.harmonic_prior=true inverter.refine_partials=true":
        "test_pg_vocoder_commands",
    "melforge-train head=logistic train.max_steps=3": "test_readme_plugin.py::test_it_trains_3_steps_with_head_logistic",
    ".venv/bin/melforge-train experiment=pg_vocoder_speech_tiny":
        "test_speech_geometry.py::test_the_main_jobs_sample_renders_through_the_speech_vocoder",
    ".venv/bin/melforge-invert input=runs/speech_tiny/<date>/samples/sample_000.npy output=vocoded.wav inverter=pg_vocoder "
    "inverter.checkpoint=runs/pg_vocoder_speech_tiny/<date>/checkpoints/last.pt":
        "test_speech_geometry.py::test_the_main_jobs_sample_renders_through_the_speech_vocoder",
}
#: Names of apps and packages mentioned in prose, not commands.
NAMES = {"melforge-invert", "melforge-sample", "melforge-example-plugin"}


def readme_commands() -> set[str]:
    text = README.read_text()
    found = {" ".join(m.split()) for m in re.findall(r"`((?:\.venv/bin/)?(?:melforge-[a-z]+|torchrun )[^`]*)`", text, re.S)}
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        lines = block.replace("\\\n", " ").splitlines()  # one command per line (backslash continues)
        for part in (p for line in lines for p in line.split("&&")):
            part = " ".join(part.split())
            if "melforge-" in part or part.startswith("torchrun "):
                found.add(part)
    return found - NAMES


def _run(app: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", f"melforge.core.cli.{app}", *args], cwd=cwd, capture_output=True, text=True,
        timeout=600, env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    assert proc.returncode == 0, f"{app} {' '.join(args)}\n{proc.stderr[-3000:]}"
    return proc


def _args(command: str) -> list[str]:
    return command.split()[1:]


def test_every_readme_command_has_a_test():
    missing = readme_commands() - set(COMMANDS)
    assert not missing, f"README commands without a test: {sorted(missing)}"
    stale = set(COMMANDS) - readme_commands()
    assert not stale, f"tests of commands no longer in the README: {sorted(stale)}"


def test_main_job_sample_and_invert_commands(tmp_path, speech_audio):
    _run("train", *_args("melforge-train"), *TINY, "hydra.run.dir=run", cwd=tmp_path)
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    assert metrics["steps"] == 2 and (tmp_path / "run/samples/sample_000.wav").exists()
    assert (tmp_path / "run/skipped.json").exists()
    sample = "melforge-sample checkpoint=runs/.../checkpoints/last.pt sample.count=3 sample.temperature=0.8"
    args = [a.replace("runs/.../checkpoints/last.pt", str(tmp_path / "run/checkpoints/last.pt")) for a in _args(sample)]
    _run("sample", *args, "sample.frames=8", "inverter.n_iter=2", "hydra.run.dir=sampled", cwd=tmp_path)
    assert len(list((tmp_path / "sampled/samples").glob("*.wav"))) == 3
    audio, sr = speech_audio
    sf.write(tmp_path / "speech.wav", audio[: sr // 2], sr)
    proc = _run("invert", *_args("melforge-invert input=speech.wav output=out.wav inverter=pghi"), cwd=tmp_path)
    out, out_sr = sf.read(tmp_path / "out.wav")
    assert out_sr == 16000 and np.abs(out).max() > 1e-3 and "SC" in proc.stdout


def test_sweep_command(tmp_path):
    tiny = [o for o in TINY if not o.startswith("backbone.layers=")]  # the sweep sets it
    _run("train", *_args("melforge-train -m backbone.layers=1,2,4"), *tiny, "sample.count=0",
         "hydra.sweep.dir=sweep", cwd=tmp_path)
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert len(jobs) == 3 and all((job / "metrics.json").exists() for job in jobs)
    assert [yaml.safe_load((j / "config.yaml").read_text())["backbone"]["layers"] for j in jobs] == [1, 2, 4]
    _run("report", *[a.replace("DIR", "sweep") for a in _args("melforge-report DIR")], cwd=tmp_path)
    table = (tmp_path / "sweep/report.md").read_text()
    assert all(f"backbone.layers={n}" in table for n in (1, 2, 4))
    assert (tmp_path / "sweep/report.html").exists() and (tmp_path / "sweep/curves.png").exists()


def test_experiment_commands(tmp_path):
    _run("train", *_args("melforge-train experiment=wavenet_speech_tiny"), *TINY_WAVENET, "hydra.run.dir=wavenet", cwd=tmp_path)
    audio, sr = sf.read(tmp_path / "wavenet/samples/sample_000.wav")
    assert sr == 16000 and audio.shape == (400,) and np.abs(audio).max() > 0
    _run("train", *_args(".venv/bin/melforge-train experiment=speech_tiers_tiny"), *TINY_TIERS, "hydra.run.dir=tiers",
         cwd=tmp_path)
    assert json.loads((tmp_path / "tiers/metrics.json").read_text())["tiers"] == 3


def test_audio_folder_command(tmp_path, speech_clips):
    folder = tmp_path / "audio"
    folder.mkdir()
    for k, clip in enumerate(speech_clips[:10]):
        sf.write(folder / f"clip{k}.wav", clip.audio, clip.sr)
    command = "melforge-train dataset=audio_folder dataset.root=/path/to/audio"
    args = [a.replace("/path/to/audio", str(folder)) for a in _args(command)]
    _run("train", *args, *TINY, "data.valid_fraction=0.3", "hydra.run.dir=run", cwd=tmp_path)
    assert json.loads((tmp_path / "run/metrics.json").read_text())["train_clips"] >= 5


@pytest.mark.parametrize("command", ["melforge-plugins", "melforge-plugins --strict"])
def test_plugins_commands(tmp_path, command):
    proc = _run("plugins", *_args(command), cwd=tmp_path)
    for name in ("melnet", "wavenet", "gmm", "categorical", "mu_law", "melnet_compiled", "wavenet_compiled", "cached",
                 "reference", "griffin_lim", "asterisk_prompts"):
        assert re.search(rf"^\s+{name}\s", proc.stdout, re.M), name
    assert "supports:" in proc.stdout


#: The phase-gradient vocoder's twin, tiny: 4 pieces of 8 s (the 4th held out), 2 layers of 8 channels.
TINY_PG = ("dataset.pieces=4", "dataset.seconds=8", "data.valid_fraction=0.3", "inverter.channels=8",
           "inverter.layers=2", "data.crop_frames=16", "data.valid_crops=2", "train.batch_size=2",
           "train.max_steps=2", "train.valid_every=2", "train.checkpoint_every=2", "threads=1")


def test_pg_vocoder_commands(tmp_path, speech_audio):
    _run("train", *_args("melforge-train experiment=pg_vocoder_tiny"), *TINY_PG, "hydra.run.dir=pg", cwd=tmp_path)
    assert json.loads((tmp_path / "pg/metrics.json").read_text())["steps"] == 2
    audio, sr = speech_audio
    sf.write(tmp_path / "music.wav", audio[:sr], sr)
    command = ("melforge-invert input=music.wav output=out.wav inverter=pg_vocoder "
               "inverter.checkpoint=runs/pg_vocoder_tiny/.../checkpoints/last.pt")
    outputs = []
    for extra in ("", " inverter.refine_partials=true", " inverter.harmonic_prior=true inverter.refine_partials=true"):
        args = [a.replace("runs/pg_vocoder_tiny/.../checkpoints/last.pt", str(tmp_path / "pg/checkpoints/last.pt"))
                for a in _args(command + extra)]
        proc = _run("invert", *args, cwd=tmp_path)
        out, out_sr = sf.read(tmp_path / "out.wav")
        assert out_sr == 22050 and np.isfinite(out).all() and "[pg_vocoder, log_mel]" in proc.stdout
        outputs.append(out)
    assert outputs[0].shape == outputs[1].shape == outputs[2].shape


def test_pg_vocoder_mixed_command(tmp_path):
    """The mixed-soundfont twin trains on pieces of its programs rendered with its soundfonts (the
    four tiny pieces: programs 0 and 4 on MuseScore Lite, then on the OPL-3 bank)."""
    _run("train", *_args("melforge-train experiment=pg_vocoder_mixed_tiny"), *TINY_PG, "dataset.programs=[0,4]",
         "dataset.soundfonts=[musescore,opl3]", "hydra.run.dir=pgm", cwd=tmp_path)
    assert json.loads((tmp_path / "pgm/metrics.json").read_text())["steps"] == 2
    cfg = (tmp_path / "pgm/config.yaml").read_text()
    assert "gm_music" in cfg and "opl3" in cfg and "max_steps: 2" in cfg


TINY_GAN = ("inverter.initial_channels=16", "inverter.discriminator_width=0.0625", "inverter.adversarial_start=1",
            "data.crop_frames=8", "data.valid_crops=2", "data.valid_fraction=0.3", "train.batch_size=2",
            "train.max_steps=2", "train.valid_every=2", "train.checkpoint_every=2", "threads=1")


def test_gan_vocoder_commands(tmp_path, speech_clips):
    folder = tmp_path / "speech"
    folder.mkdir()
    for k, clip in enumerate([c for c in speech_clips if len(c.audio) > c.sr][:6]):
        sf.write(folder / f"{k}.wav", clip.audio, clip.sr)
    _run("train", *_args("melforge-train experiment=hifigan_tiny"), *TINY_GAN, "dataset=audio_folder",
         f"dataset.root={folder}", "hydra.run.dir=gan", cwd=tmp_path)
    assert json.loads((tmp_path / "gan/metrics.json").read_text())["steps"] == 2
    clip = next(c for c in speech_clips if len(c.audio) > c.sr)
    sf.write(tmp_path / "speech.wav", clip.audio[: clip.sr], clip.sr)
    command = ("melforge-invert input=speech.wav output=out.wav inverter=hifigan "
               "inverter.checkpoint=runs/hifigan_tiny/.../checkpoints/last.pt")
    args = [a.replace("runs/hifigan_tiny/.../checkpoints/last.pt", str(tmp_path / "gan/checkpoints/last.pt")) for a in _args(command)]
    proc = _run("invert", *args, cwd=tmp_path)
    out, sr = sf.read(tmp_path / "out.wav")
    assert sr == 16000 and np.isfinite(out).all() and "[hifigan, log_mel]" in proc.stdout


TINY_SOURCE_FILTER = {
    "ddsp": ("inverter.hidden=16", "inverter.mlp_layers=1", "inverter.harmonics=16"),
    "nsf": ("inverter.channels=4", "inverter.blocks=1", "inverter.layers=3"),
    "nsf_hifigan": ("inverter.initial_channels=16", "inverter.discriminator_width=0.0625", "inverter.adversarial_start=1"),
}


@pytest.mark.parametrize("name", ["ddsp", "nsf", "nsf_hifigan"])
def test_source_filter_commands(tmp_path, speech_clips, name):
    folder = tmp_path / "speech"
    folder.mkdir()
    for k, clip in enumerate([c for c in speech_clips if len(c.audio) > c.sr][:6]):
        sf.write(folder / f"{k}.wav", clip.audio[: 2 * clip.sr], clip.sr)
    _run("train", *_args(f"melforge-train experiment={name}_tiny"), *TINY_SOURCE_FILTER[name],
         "inverter.estimator_channels=8", "inverter.estimator_layers=2", "data.crop_frames=8", "data.valid_crops=2",
         "data.valid_fraction=0.3", "train.batch_size=2", "train.max_steps=2", "train.valid_every=2",
         "train.checkpoint_every=2", "threads=1", "dataset=audio_folder", f"dataset.root={folder}", "hydra.run.dir=sf",
         cwd=tmp_path)
    metrics = json.loads((tmp_path / "sf/metrics.json").read_text())
    assert metrics["steps"] == 2 and 0 <= metrics["valid_vuv_accuracy"] <= 1 and metrics["valid_f0_cents"] >= 0
    clip = next(c for c in speech_clips if len(c.audio) > c.sr)
    sf.write(tmp_path / "speech.wav", clip.audio[: clip.sr], clip.sr)
    command = (f"melforge-invert input=speech.wav output=out.wav inverter={name} "
               f"inverter.checkpoint=runs/{name}_tiny/.../checkpoints/last.pt")
    args = [a.replace(f"runs/{name}_tiny/.../checkpoints/last.pt", str(tmp_path / "sf/checkpoints/last.pt")) for a in _args(command)]
    proc = _run("invert", *args, cwd=tmp_path)
    out, sr = sf.read(tmp_path / "out.wav")
    assert sr == 16000 and np.isfinite(out).all() and f"[{name}, log_mel]" in proc.stdout
