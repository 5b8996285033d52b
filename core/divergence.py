"""Divergence detection during training: a loss far above its recent running statistics, or a
non-finite loss or gradient norm, stops the run before a diverged state is checkpointed."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass
class DivergenceVerdict:
    """What :meth:`DivergenceDetector.update` decided about one step.

    Attributes:
        diverged: stop now.
        suspect: the loss is above its recent statistics by more than half the margin (do not
            checkpoint this state as the run's latest).
        reason: why, for the message (empty when healthy).
    """

    diverged: bool = False
    suspect: bool = False
    reason: str = ""


class DivergenceDetector:
    """Watches the training loss (nats per element) step by step.

    The reference is the median of the last ``window`` healthy losses, the spread their median
    absolute deviation (×1.4826, a robust standard deviation). A step diverges when its loss is
    non-finite, its gradient norm is non-finite, or its loss exceeds the reference by more than
    ``margin = max(min_excess, threshold · spread)``; it is *suspect* above half the margin.
    The onset of a divergence is the first step after the last healthy one.

    Args:
        window: losses kept for the statistics.
        threshold: robust standard deviations above the median that count as divergence.
        min_excess: nats per element above the median that always count (so that a run with a
            nearly constant loss does not stop on noise).

    Raises:
        ValueError: ``window < 1`` or non-positive thresholds.
    """

    def __init__(self, window: int = 50, threshold: float = 10.0, min_excess: float = 5.0):
        if window < 1 or not threshold > 0 or not min_excess > 0:
            raise ValueError(
                f"train.divergence: window >= 1, threshold > 0 and min_excess > 0 expected, "
                f"got {window}, {threshold}, {min_excess}"
            )
        self.threshold, self.min_excess = float(threshold), float(min_excess)
        self.history: deque[float] = deque(maxlen=int(window))
        self.last_healthy_step = 0

    def margin(self) -> tuple[float, float]:
        """``(reference, margin)`` from the history (``(inf, inf)`` before any step)."""
        if not self.history:
            return math.inf, math.inf
        values = sorted(self.history)
        median = values[len(values) // 2] if len(values) % 2 else 0.5 * (values[len(values) // 2 - 1] + values[len(values) // 2])
        deviations = sorted(abs(v - median) for v in values)
        mad = deviations[len(deviations) // 2]
        return median, max(self.min_excess, self.threshold * 1.4826 * mad)

    def update(self, step: int, loss: float, grad_norm: float | None = None) -> DivergenceVerdict:
        """Judge update ``step`` (1-based) from its loss and gradient norm."""
        if not math.isfinite(loss):
            return DivergenceVerdict(True, True, f"non-finite loss ({loss})")
        if grad_norm is not None and not math.isfinite(grad_norm):
            return DivergenceVerdict(True, True, f"non-finite gradient norm ({grad_norm})")
        reference, margin = self.margin()
        if loss > reference + margin:
            return DivergenceVerdict(
                True, True,
                f"loss {loss:.4g} nats per element, {loss - reference:.3g} above the median {reference:.4g} "
                f"of the last {len(self.history)} steps (threshold {margin:.3g})",
            )
        if loss > reference + 0.5 * margin:
            return DivergenceVerdict(False, True, f"loss {loss:.4g} is {loss - reference:.3g} above its recent median")
        self.history.append(float(loss))
        self.last_healthy_step = step
        return DivergenceVerdict()

    def state_dict(self) -> dict:
        """Plain data for checkpoints (resume continues the statistics)."""
        return {"history": list(self.history), "last_healthy_step": self.last_healthy_step}

    def load_state_dict(self, state: dict) -> None:
        self.history.extend(float(v) for v in state.get("history", []))
        self.last_healthy_step = int(state.get("last_healthy_step", 0))
