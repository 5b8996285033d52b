"""An inverter's contract (:class:`melforge.core.inverter.Inverter`): the waveform it returns,
the input it declares, the input it refuses, and no state carried from one call to the next."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from melforge.core.inverter import Inverter
from melforge.core.stft import StftParams, stft_magnitude

from .expect import expect_value_error
from .inputs import part_name

#: Mel channels of the filterbank the check builds when none is given.
DEFAULT_N_MELS = 32


@dataclass
class InverterReport:
    """What :func:`check_inverter` found.

    Attributes:
        accepts: the entry points that inverted the signal (``"invert"``, ``"invert_mel"``).
        refused: entry point → the ``ValueError`` message with which the inverter refused it.
        stateless: the entry points checked for state carried between calls.
    """

    accepts: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    stateless: list[str] = field(default_factory=list)


def _seeded(seed: int, call: Callable[[], np.ndarray]) -> np.ndarray:
    """``call()`` with numpy's and torch's global generators seeded (a stochastic inverter that
    draws from them gives the same result for the same seed)."""
    import torch  # deferred: only an inverter check needs torch's generator

    np.random.seed(seed)
    torch.manual_seed(seed)
    return call()


def _check_waveform(who: str, audio: object, length: int) -> np.ndarray:
    """``audio`` is a finite float32 ``(length,)`` array, or an ``AssertionError`` naming ``who``."""
    if not isinstance(audio, np.ndarray):
        raise AssertionError(f"{who} returned a {type(audio).__qualname__}, not a numpy array")
    if audio.shape != (length,):
        raise AssertionError(f"{who} returned shape {audio.shape}, expected ({length},)")
    if audio.dtype != np.float32:
        raise AssertionError(f"{who} returned dtype {audio.dtype}, expected float32")
    if not np.isfinite(audio).all():
        raise AssertionError(f"{who} returned {int((~np.isfinite(audio)).sum())} non-finite samples")
    return audio


def _entry_points(magnitude: np.ndarray, mel_basis: np.ndarray, stft: StftParams):
    """``{entry: (invert(inverter, target, length), target, bad inputs {why: target})}`` for
    the two public entry points."""
    mel_power = (magnitude**2) @ mel_basis.T  # (frames, n_mels)

    def nan(x: np.ndarray) -> np.ndarray:
        x = x.copy()
        x[x.shape[0] // 2, x.shape[1] // 2] = np.nan
        return x

    return {
        "invert": (
            lambda inv, x, n: inv.invert(x, stft, length=n),
            magnitude,
            {"a magnitude with one bin too few": magnitude[:, :-1], "a magnitude holding NaN": nan(magnitude),
             "a 1-D magnitude": magnitude[0]},
        ),
        "invert_mel": (
            lambda inv, x, n: inv.invert_mel(x, mel_basis, stft, length=n),
            mel_power,
            {"a mel power with one channel too few": mel_power[:, :-1], "a mel power holding NaN": nan(mel_power),
             "a 1-D mel power": mel_power[0]},
        ),
    }


def _entry_works(who: str, invert, target: np.ndarray, stft: StftParams, seed: int) -> str | None:
    """Invert ``target`` at the default length and at an explicit one; ``None`` when both give
    finite float32 waveforms of the right length, the ``ValueError`` message when the entry is
    refused at the default length.

    Raises:
        AssertionError: a refusal other than a ``ValueError`` with a message, a bad waveform,
            or an entry accepted at one length and refused at the other.
    """
    frames = target.shape[0]
    default = stft.samples_for(frames)
    explicit = default + stft.hop_length // 2  # still ``frames`` frames
    try:
        audio = _seeded(seed, lambda: invert(target, None))
    except ValueError as exc:
        if not str(exc).strip():
            raise AssertionError(f"{who} refused its input with a ValueError without a message") from exc
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - an AttributeError, NotImplementedError … is the finding
        raise AssertionError(
            f"{who} raised {type(exc).__name__} on a valid input: an inverter that does not take this input "
            f"must refuse it with a ValueError saying so ({exc})"
        ) from exc
    _check_waveform(f"{who} (default length)", audio, default)
    try:
        audio = _seeded(seed, lambda: invert(target, explicit))
    except Exception as exc:  # noqa: BLE001 - a refusal of a valid length is the finding
        raise AssertionError(
            f"{who} inverts at the default length but raised {type(exc).__name__} for length={explicit}, which gives "
            f"the same {frames} frames: {exc}"
        ) from exc
    _check_waveform(f"{who} (length={explicit})", audio, explicit)
    return None


def _check_stateless(who: str, invert, first: np.ndarray, second: np.ndarray, fresh, seed: int, atol: float) -> None:
    """Inverting ``first`` then ``second`` with ``fresh[0]`` gives what ``fresh[1]`` gives for
    ``second`` then ``first`` (each alone and after the other), within ``atol``."""
    a = _seeded(seed, lambda: invert(fresh[0], first, None))
    b = _seeded(seed, lambda: invert(fresh[0], second, None))
    b_alone = _seeded(seed, lambda: invert(fresh[1], second, None))
    a_after = _seeded(seed, lambda: invert(fresh[1], first, None))
    for what, x, y in (("the first signal", a, a_after), ("the second signal", b, b_alone)):
        err = float(np.max(np.abs(x.astype(np.float64) - y))) if x.size else 0.0
        if not err <= atol:
            raise AssertionError(
                f"{who}: {what} inverts differently alone and after the other (max |difference| {err:.3g} > "
                f"atol {atol:g}, same seed): the inverter keeps state between calls"
            )


def _signals(audio: np.ndarray, stft: StftParams) -> tuple[np.ndarray, np.ndarray]:
    """Two different signals of equal length from ``audio``: its halves (the second reversed
    when the halves would be too short to differ)."""
    audio = np.asarray(audio, dtype=np.float32)
    half = audio.shape[0] // 2
    if half < 2 * stft.n_fft:
        return audio, np.ascontiguousarray(audio[::-1])
    return audio[:half], audio[half : 2 * half]


def check_inverter(
    inverter: Inverter,
    stft: StftParams,
    audio: np.ndarray,
    *,
    mel_basis: np.ndarray | None = None,
    seed: int = 0,
    atol: float = 0.0,
) -> InverterReport:
    """Assert that ``inverter`` keeps the :class:`~melforge.core.inverter.Inverter` contract on
    the magnitude and mel power of ``audio``.

    Checked, for each public entry point (``invert`` of a magnitude, ``invert_mel`` of a mel
    power ``|STFT|² Bᵀ``):

    * it returns a finite float32 ``(length,)`` waveform for the default length
      (``(frames - 1) · hop_length``) and for an explicit one, or refuses its input with a
      ``ValueError`` with a message (an ``AttributeError``, ``NotImplementedError`` … fails);
      at least one entry point must invert;
    * an accepted entry point refuses bad input — a wrong bin or channel count, a NaN, a 1-D
      array, a length that gives another frame count — with a ``ValueError``;
    * ``representation_config()`` is ``None`` or a mapping naming a representation;
    * no hidden state: the base class has no batched entry point, so two signals inverted in
      sequence must give what a fresh copy (``copy.deepcopy``) gives for them in the other order,
      each within ``atol`` (numpy's and torch's global generators are seeded with ``seed`` before
      every call, for an inverter that draws from them).

    Args:
        inverter: the inverter (kept; the state check inverts with deep copies of it).
        stft: the analysis geometry of the magnitude.
        audio: ``(samples,)`` real or synthetic signal at ``stft.sr`` Hz, a few ``n_fft`` long
            (its halves are the two signals of the state check).
        mel_basis: ``(n_mels, n_fft // 2 + 1)`` filterbank of ``invert_mel`` (default: librosa's
            Slaney mel filterbank of :data:`DEFAULT_N_MELS` channels).
        seed: seed of the global generators before each call.
        atol: largest absolute sample difference allowed by the state check (0: bit-identical).

    Returns:
        An :class:`InverterReport` (entry points accepted and refused, with the reasons).

    Raises:
        AssertionError: the first failed check, naming the inverter, the entry point and the input.
    """
    name = part_name(inverter)
    wanted = inverter.representation_config()
    if wanted is not None and not (isinstance(wanted, Mapping) and "name" in wanted):
        raise AssertionError(f"{name}.representation_config() returned {wanted!r}: expected None or a mapping with a name")
    first, second = _signals(audio, stft)
    magnitude = stft_magnitude(first, stft)  # (frames, n_fft // 2 + 1)
    if mel_basis is None:
        import librosa  # deferred: slow to import, needed only for the default filterbank

        mel_basis = librosa.filters.mel(sr=stft.sr, n_fft=stft.n_fft, n_mels=DEFAULT_N_MELS)
    mel_basis = np.asarray(mel_basis, dtype=np.float64)
    entries = _entry_points(magnitude, mel_basis, stft)
    second_entries = _entry_points(stft_magnitude(second, stft), mel_basis, stft)
    copies = {entry: (copy.deepcopy(inverter), copy.deepcopy(inverter)) for entry in entries}  # before any call
    report = InverterReport()
    for entry, (invert, target, bad) in entries.items():
        who = f"{name}.{entry}"
        refused = _entry_works(who, lambda x, n: invert(inverter, x, n), target, stft, seed)
        if refused is not None:
            report.refused[entry] = refused
            continue
        report.accepts.append(entry)
        for why, x in bad.items():
            expect_value_error(who, why, lambda: invert(inverter, x, None))
        frames = target.shape[0]
        expect_value_error(who, f"a length of {frames * stft.hop_length} samples for {frames} frames",
                            lambda: invert(inverter, target, frames * stft.hop_length))
        _check_stateless(who, invert, target, second_entries[entry][1], copies[entry], seed, atol)
        report.stateless.append(entry)
    if not report.accepts:
        raise AssertionError(f"{name} refused both a magnitude and a mel power: {report.refused}")
    return report
