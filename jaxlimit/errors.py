"""The one exception type the command line turns into a one-line message, and
the number check that raises it for scalar options."""

import math


class InputError(ValueError):
    """Bad input from a user: a wrong shape, a non-positive width, NaN data,
    an unknown name or an impossible combination of options.

    The message is one line that names the problem; the command line prints it
    and exits with status 2, without a traceback.
    """


def check_number(value, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float that is positive (or ≥ 0 with ``allow_zero``),
    or an InputError naming ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and (v >= 0 if allow_zero else v > 0)):
        kind = "non-negative" if allow_zero else "positive"
        raise InputError(f"{name} must be {kind} and finite, got {value}")
    return v
