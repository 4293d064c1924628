"""The random draws of the demo county from its distribution table (:mod:`pathway.demo.spec`): a
weighted pick among options, a uniform value in a span, and drawn values as tenths or whole numbers."""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol, TypeVar

TENTH = Decimal("0.1")


class _Weighted(Protocol):
    @property
    def weight(self) -> float: ...


W = TypeVar("W", bound=_Weighted)


def pick(rng: random.Random, options: Sequence[W]) -> W:
    return rng.choices(list(options), weights=[o.weight for o in options])[0]


def uniform(rng: random.Random, span: tuple[float, float]) -> float:
    return rng.uniform(span[0], span[1])


def tenths(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(TENTH)


def whole(rng: random.Random, span: tuple[float, float]) -> Decimal:
    return Decimal(rng.randint(round(span[0]), round(span[1])))
