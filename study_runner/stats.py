"""The statistics behind a study's cells and verdicts: a t-interval over seeds, the test set's
binomial noise floor, Welch's interval for the difference of two cells, and the seeds a
difference would need (Bouthillier et al., MLSys 2021; Agarwal et al.'s rliable, NeurIPS 2021).

Seeds are few (3 to 5), so intervals are Student t-intervals, not bootstraps: a bootstrap over
three values can take only ten distinct means and understates the spread. Every interval is
95 %, two-sided. Two cells are compared as independent samples (Welch), although a seed fixes
the same training subset for every run of a study: pairing by seed would often give narrower
intervals, and Welch's errs on the side of "undecided".
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence

# Student t's 97.5 % quantile (any statistics table): at 1 ... 4 degrees of freedom in steps of
# 0.25, where it bends most and Welch's fractional df fall for 2 or 3 seeds a cell, then at
# every whole df to 30.
_T975 = {
    1.0: 12.7062, 1.25: 8.0280, 1.5: 6.0167, 1.75: 4.9488, 2.0: 4.3027, 2.25: 3.8755,
    2.5: 3.5747, 2.75: 3.3525, 3.0: 3.1824, 3.25: 3.0483, 3.5: 2.9401, 3.75: 2.8510,
    4.0: 2.7764, 5.0: 2.5706, 6.0: 2.4469, 7.0: 2.3646, 8.0: 2.3060, 9.0: 2.2622,
    10.0: 2.2281, 11.0: 2.2010, 12.0: 2.1788, 13.0: 2.1604, 14.0: 2.1448, 15.0: 2.1314,
    16.0: 2.1199, 17.0: 2.1098, 18.0: 2.1009, 19.0: 2.0930, 20.0: 2.0860, 21.0: 2.0796,
    22.0: 2.0739, 23.0: 2.0687, 24.0: 2.0639, 25.0: 2.0595, 26.0: 2.0555, 27.0: 2.0518,
    28.0: 2.0484, 29.0: 2.0452, 30.0: 2.0423,
}  # fmt: skip
Z975 = 1.959964
# The normal's 80 % quantile: the power term of a sample-size projection.
Z80 = 0.841621


def t975(df: float) -> float:
    """Student t's 97.5 % quantile at `df` degrees of freedom (df >= 1). Between the table's
    points, as Welch's fractional df fall, log t is interpolated against 1/df, along which it
    is nearly straight (within 0.4 % of the exact quantile); past 30 a Cornish-Fisher
    expansion, within 1e-4.

    Raises:
        ValueError: df < 1.
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}.")
    if df <= 30:
        if df in _T975:
            return _T975[df]
        low = max(k for k in _T975 if k < df)
        high = min(k for k in _T975 if k > df)
        share = (1 / low - 1 / df) / (1 / low - 1 / high)
        logs = (1 - share) * math.log(_T975[low]) + share * math.log(_T975[high])
        return math.exp(logs)
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
        return cls.summary(len(scores), statistics.fmean(scores) if scores else math.nan,
                           statistics.stdev(scores) if len(scores) > 1 else math.nan)  # fmt: skip

    @classmethod
    def summary(cls, seeds: int, mean: float, std: float) -> Estimate:
        """From the count, mean and standard deviation alone (a table's cell)."""
        if seeds < 2:
            return cls(seeds, mean if seeds else math.nan, math.nan, math.nan, math.nan)
        half = t975(seeds - 1) * std / math.sqrt(seeds)
        return cls(seeds, mean, std, mean - half, mean + half)


def noise_floor(accuracy: float, images: int) -> float:
    """Half-width of the 95 % binomial interval of one accuracy measured on `images` test
    images (the normal approximation, which holds here: thousands of images, accuracy away
    from 0 and 1): how far the test set's own sampling moves a model's score from its accuracy
    on the whole distribution. Seeds do not see it, since every seed meets the same test set.
    Two models scored on one test set share part of that noise, so the floor of their
    difference depends on how often they disagree; this floor is a guide to its size.

    Raises:
        ValueError: images < 1 or an accuracy outside [0, 1].
    """
    if images < 1 or not 0 <= accuracy <= 1:
        raise ValueError(f"need images >= 1 and 0 <= accuracy <= 1, got {images}, {accuracy}.")
    return Z975 * math.sqrt(accuracy * (1 - accuracy) / images)


@dataclasses.dataclass(frozen=True)
class Difference:
    """`a - b` of two cells (or of a cell and a fixed level): the difference of the means, its
    95 % interval (NaN without two seeds on each cell), and the two cells' standard
    deviations (a level's is 0), from which `seeds_for` projects the seeds a decision needs."""

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
        """Seeds per cell that would exclude zero (`seeds_for(|mean|)`)."""
        return self.seeds_for(abs(self.mean))

    def seeds_for(self, distance: float, most: int = 1000) -> int | None:
        """The fewest seeds per cell at which an interval would clear `distance` with 80 %
        power, if the observed spreads are the true ones: `(t + z80) · se < distance`, the
        usual sample-size rule. None when no spread was measured, the distance is 0, or more
        than `most` seeds would be needed. The spreads come from a few seeds, so this is a
        guide, and adding seeds until a comparison is decided breaks the 95 % coverage."""
        if math.isnan(distance) or distance <= 0:
            return None
        if math.isnan(self.std_a) or math.isnan(self.std_b):
            return None
        spread = self.std_a**2 + self.std_b**2
        if spread == 0:
            return 2
        for n in range(2, most + 1):
            # Welch's degrees of freedom with n seeds on each side (one side: a fixed level).
            df = (n - 1) * spread**2 / (self.std_a**4 + self.std_b**4)
            if (t975(max(df, 1)) + Z80) * math.sqrt(spread / n) < distance:
                return n
        return None


def compare(a: Estimate, b: Estimate | float, images: int | None = None) -> Difference:
    """`a - b` with Welch's interval (unequal variances). `b` a number is a fixed level (an
    assignment's goal, chance): then the interval is `a`'s own t-interval shifted by it,
    widened by the test set's binomial noise at `a`'s mean when `images` is given, since a
    level, unlike another cell, shares none of that noise."""
    if not isinstance(b, Estimate):
        half = (a.high - a.low) / 2
        if images:
            half = math.hypot(half, noise_floor(min(max(a.mean, 0.0), 1.0), images))
        return Difference(a.mean - b, a.mean - b - half, a.mean - b + half, a.std, 0.0)
    mean = a.mean - b.mean
    if a.seeds < 2 or b.seeds < 2:
        return Difference(mean, math.nan, math.nan, a.std, b.std)
    va, vb = a.std**2 / a.seeds, b.std**2 / b.seeds
    if va + vb == 0:
        return Difference(mean, mean, mean, 0.0, 0.0)
    df = (va + vb) ** 2 / (va**2 / (a.seeds - 1) + vb**2 / (b.seeds - 1))
    half = t975(df) * math.sqrt(va + vb)
    return Difference(mean, mean - half, mean + half, a.std, b.std)


def difference(
    a: Sequence[float], b: Sequence[float] | float, images: int | None = None
) -> Difference:
    """`compare` on the seeds' scores."""
    return compare(Estimate.of(a), b if isinstance(b, int | float) else Estimate.of(b), images)
