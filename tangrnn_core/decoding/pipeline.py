"""One pipeline: the logit processors of a plan, each at its stage.

Adding a constraint takes a processor class with a ``stage`` and a ``from_plan`` (returning ``None`` when the
plan does not ask for it), its entry in :data:`CONSTRAINTS`, the request field a user sets, and the planner line
that puts it in the plan; ``docs/decoding.md`` walks through ``--avoid`` as the example.
"""

from __future__ import annotations

from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.decoding.constraints import AvoidCharacters, ForcedCharacters, FormConstraint, NoRepeat
from tangrnn_core.decoding.plan import Plan
from tangrnn_core.decoding.processors import LogitsProcessor
from tangrnn_core.decoding.prosody import ProsodyConstraint
from tangrnn_core.decoding.template import TemplateConstraint

#: Every constraint a request can ask for. They are built in this order (so the shape is refused before the
#: tones) and applied in the order of their stages; within a stage, in this order.
CONSTRAINTS: tuple[type[LogitsProcessor], ...] = (
    FormConstraint,
    ProsodyConstraint,
    NoRepeat,
    AvoidCharacters,
    ForcedCharacters,
    TemplateConstraint,
)


def build_processors(vocabulary: Vocabulary, plan: Plan) -> list[LogitsProcessor]:
    """The processors ``plan`` asks for, ordered by stage: the shape, tones and rhyme, which characters may be
    used, then the forced characters, which override every mask before them.

    Args:
        vocabulary: the model's vocabulary.
        plan: the resolved request (:func:`~tangrnn_core.decoding.plan.plan_request`).

    Raises:
        ConfigError: a constraint refuses the plan (a vocabulary without characters for it, forced characters
            that fit no tone pattern ...).
    """
    built = [constraint.from_plan(vocabulary, plan) for constraint in CONSTRAINTS]
    return sorted((p for p in built if p is not None), key=lambda processor: processor.stage)
