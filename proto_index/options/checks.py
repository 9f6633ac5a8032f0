"""Small checks the option objects share."""
from __future__ import annotations

import numbers


def whole(value, least: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= least
