"""The statistics behind a study's cells and verdicts: a t-interval over seeds, the test set's
binomial noise floor, Welch's interval for the difference of two cells, and the seeds a
difference would need (Bouthillier et al., MLSys 2021; Agarwal et al.'s rliable, NeurIPS 2021).

Seeds are few (3 to 5), so intervals are Student t-intervals, not bootstraps: a bootstrap over
three values can take only ten distinct means and understates the spread. Every interval is
95 %, two-sided.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence

# Student t's 97.5 % quantile for 1 ... 30 degrees of freedom (any statistics table).
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip
Z975 = 1.959964


def t975(df: float) -> float:
    """Student t's 97.5 % quantile at `df` degrees of freedom (df >= 1; fractional df, as
    Welch's gives, interpolate the table; past 30 a Cornish-Fisher expansion, within 1e-4).

    Raises:
        ValueError: df < 1.
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}.")
    if df <= 30:
        low = int(df)
        if low == df or low == 30:
            return _T975[low - 1]
        return _T975[low - 1] + (df - low) * (_T975[low] - _T975[low - 1])
    z = Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A cell's scores over seeds: their mean, standard deviation and 95 % t-interval of the
    mean (NaN where one seed leaves no spread)."""

    seeds: int
    mean: float
    std: float
    low: float
    high: float

    @classmethod
    def of(cls, scores: Sequence[float]) -> Estimate:
        n = len(scores)
        if n == 0:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        mean = statistics.fmean(scores)
        if n == 1:
            return cls(1, mean, math.nan, math.nan, math.nan)
        std = statistics.stdev(scores)
        half = t975(n - 1) * std / math.sqrt(n)
        return cls(n, mean, std, mean - half, mean + half)


def noise_floor(accuracy: float, images: int) -> float:
    """Half-width of the 95 % binomial interval of an accuracy measured on `images` test
    images (the normal approximation, which holds here: thousands of images, accuracy away
    from 0 and 1). Two models that differ by less differ by no more than the test set's own
    sampling noise, however many seeds agree.

    Raises:
        ValueError: images < 1 or an accuracy outside [0, 1].
    """
    if images < 1 or not 0 <= accuracy <= 1:
        raise ValueError(f"need images >= 1 and 0 <= accuracy <= 1, got {images}, {accuracy}.")
    return Z975 * math.sqrt(accuracy * (1 - accuracy) / images)


@dataclasses.dataclass(frozen=True)
class Difference:
    """`a - b` of two cells (or of a cell and a fixed level, whose std is 0): the difference of
    the means, its 95 % Welch t-interval (NaN without two seeds on each cell), and the two
    cells' standard deviations, from which `seeds_for` projects the seeds a decision needs."""

    mean: float
    low: float
    high: float
    std_a: float
    std_b: float

    @property
    def decided(self) -> bool:
        """Whether the interval excludes zero."""
        return self.low > 0 or self.high < 0

    @property
    def seeds_needed(self) -> int | None:
        """Seeds per cell whose interval, at the observed means and spreads, would exclude
        zero (`seeds_for(|mean|)`)."""
        return self.seeds_for(abs(self.mean))

    def seeds_for(self, half_width: float, most: int = 1000) -> int | None:
        """The fewest seeds per cell that would narrow the interval's half-width below
        `half_width`, at the observed spreads; None when no count up to `most` would, or no
        spread was measured."""
        if math.isnan(half_width) or half_width <= 0:
            return None
        if math.isnan(self.std_a) or math.isnan(self.std_b):
            return None
        spread = self.std_a**2 + self.std_b**2
        if spread == 0:
            return 2
        for n in range(2, most + 1):
            # Welch's degrees of freedom with n seeds on each side (one side: a fixed level).
            df = (n - 1) * spread**2 / (self.std_a**4 + self.std_b**4)
            if t975(max(df, 1)) * math.sqrt(spread / n) < half_width:
                return n
        return None


def difference(a: Sequence[float], b: Sequence[float] | float) -> Difference:
    """`a - b` with Welch's interval (unequal variances); `b` a number is a fixed level, and
    the interval is `a`'s own t-interval shifted by it."""
    ea = Estimate.of(a)
    if isinstance(b, int | float):
        return Difference(ea.mean - b, ea.low - b, ea.high - b, ea.std, 0.0)
    eb = Estimate.of(b)
    mean = ea.mean - eb.mean
    if ea.seeds < 2 or eb.seeds < 2:
        return Difference(mean, math.nan, math.nan, ea.std, eb.std)
    va, vb = ea.std**2 / ea.seeds, eb.std**2 / eb.seeds
    if va + vb == 0:
        return Difference(mean, mean, mean, 0.0, 0.0)
    df = (va + vb) ** 2 / (va**2 / (ea.seeds - 1) + vb**2 / (eb.seeds - 1))
    half = t975(df) * math.sqrt(va + vb)
    return Difference(mean, mean - half, mean + half, ea.std, eb.std)
