"""Metrics of regulation: how many generated poems keep the tones and the rhyme of regulated verse.

Both judge a poem with the checker behind ``tangrnn check``
(:func:`~tangrnn_core.prosody.checker.check_poem`: the best of its form's four patterns, tones of 平水韵), and
only poems of a regular form: a free poem that is no 五绝 七绝 五律 or 七律 has no pattern to follow, which
:class:`~tangrnn_core.evaluation.metrics.FormCompliance` counts already. So ``form_rate * tone_rate`` is the share
of all poems that are regular and keep their tones. The states are counts, summed across processes.

For scale, Tang poems of the regular forms themselves (600 of the test split): strict tones 50%, loose 66%; rhyme
87% (strict) and 92% (loose), the checker faulting some rhymes of the poets' own pronunciation.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from tangrnn_core.data.forms import Form, classify
from tangrnn_core.prosody.checker import CheckResult, Severity, check_poem
from tangrnn_core.prosody.patterns import ToneMode, parse_tone_mode

#: The checker's rules that each metric counts (violations only; warnings such as 邻韵 or 孤平 pass).
TONE_RULES = frozenset({"tone", "line-end"})
RHYME_RULES = frozenset({"rhyme"})


class _RuleCompliance(Metric):
    """Share of regular-form poems with no violation of ``rules``; NaN when no poem had a regular form."""

    full_state_update = False
    higher_is_better = True
    rules: frozenset[str] = frozenset()

    def __init__(self, tones: str | ToneMode = ToneMode.STRICT, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tones = parse_tone_mode(tones)
        self.add_state("checked", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("passed", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, poems: Sequence[str]) -> None:
        for poem in poems:
            if classify(poem) is Form.OTHER:
                continue
            result = _check(poem, self.tones)
            self.checked += 1
            self.passed += int(not any(_breaks(finding, self.rules) for finding in result.findings))

    def compute(self) -> Tensor:
        if int(self.checked) == 0:
            return torch.tensor(float("nan"), device=self.device)
        return (self.passed.double() / self.checked.double()).float()


class ToneCompliance(_RuleCompliance):
    """Share of regular-form poems whose tones fit a pattern of their form: no character against a position the
    pattern fixes, no unrhymed line ending in 平.

    Args:
        tones: ``strict`` (every position the pattern fixes, as ``tangrnn check`` by default) or ``loose`` (the
            2nd, 4th and 6th characters and the line ends: 一三五不论).
    """

    rules = TONE_RULES


class RhymeCompliance(_RuleCompliance):
    """Share of regular-form poems whose rhymes (lines 2, 4, 6, 8, and line 1 if it rhymes) all come from one 平声
    group of 平水韵; a neighbouring group (邻韵) is allowed, as ``tangrnn check`` allows it without ``--strict``.

    Args:
        tones: as for :class:`ToneCompliance`; it decides which pattern a poem is read against, and so which
            lines must rhyme.
    """

    rules = RHYME_RULES


def _breaks(finding, rules: frozenset[str]) -> bool:
    return finding.severity is Severity.VIOLATION and finding.rule in rules


@functools.lru_cache(maxsize=4096)
def _check(poem: str, tones: ToneMode) -> CheckResult:
    # ToneCompliance and RhymeCompliance read the same poems: check each once.
    return check_poem(poem, tones=tones)
