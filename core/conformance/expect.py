"""Expected refusals: a call that must raise ``ValueError`` with a message."""

from __future__ import annotations

from collections.abc import Callable


def expect_value_error(who: str, why: str, call: Callable[[], object]) -> str:
    """``call()`` raises ``ValueError`` with a message; returns the message.

    Args:
        who: the part and entry point, for the message (``"GriffinLim.invert"``).
        why: the input it is given (``"a magnitude holding NaN"``).
        call: the call that must refuse it.

    Raises:
        AssertionError: ``call`` returned, raised another exception (chained), or raised a
            ``ValueError`` without a message.
    """
    try:
        call()
    except ValueError as exc:
        if not str(exc).strip():
            raise AssertionError(f"{who} refused {why} with a ValueError without a message") from exc
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - the wrong exception is the finding
        raise AssertionError(f"{who} raised {type(exc).__name__} for {why}, expected ValueError: {exc}") from exc
    raise AssertionError(f"{who} accepted {why}; expected a ValueError")
