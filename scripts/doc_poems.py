"""Keeps the poems shown in the docs equal to what their commands print.

The README and docs/tang-model.md show seeded poems of the bundled model under the command that wrote them
(``$ tangrnn generate ... --seed N`` in a code block, then the first poem it prints). When the model, the
decoding or its defaults change, those poems change too: this script runs every such command and either
reports the ones whose poem differs (``--check``, what the tests run on the README) or writes the new poems
in place.

    python scripts/doc_poems.py README.md docs/tang-model.md            # rewrite the poems
    python scripts/doc_poems.py --check README.md                       # exit 1 when one differs
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: A shown command: ``$ tangrnn generate`` and its flags, on one line of a code block.
COMMAND = re.compile(r"^\$ (tangrnn generate .*)$")


@dataclass(frozen=True)
class ShownPoem:
    """A command in a document and the poem shown under it.

    Args:
        command: the command line after ``$ ``.
        start: index of the poem's first line in the document's lines.
        end: index one past its last line.
    """

    command: str
    start: int
    end: int


def shown_poems(lines: list[str]) -> list[ShownPoem]:
    """Every ``$ tangrnn generate`` line inside a fenced code block, with the poem lines under it (up to a blank
    line, the next command or the end of the block)."""
    found, in_block = [], False
    for index, line in enumerate(lines):
        if line.startswith("```"):
            in_block = not in_block
            continue
        match = COMMAND.match(line) if in_block else None
        if match is None:
            continue
        end = index + 1
        while end < len(lines) and lines[end].strip() and not lines[end].startswith(("```", "$ ")):
            end += 1
        found.append(ShownPoem(command=match.group(1), start=index + 1, end=end))
    return found


def first_poem(command: str) -> list[str]:
    """The first poem ``command`` prints, line by line (run as ``python -m tangrnn_core``).

    Raises:
        RuntimeError: the command failed (its last line of stderr).
    """
    words = shlex.split(command)
    result = subprocess.run(
        [sys.executable, "-m", "tangrnn_core", *words[1:]], capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"`{command}` failed: {detail}")
    return result.stdout.strip("\n").split("\n\n", 1)[0].splitlines()


def refresh(path: Path, check: bool) -> list[str]:
    """Runs the commands shown in ``path``; rewrites their poems unless ``check``. Returns the commands whose
    shown poem differed from what they print."""
    lines = path.read_text(encoding="utf-8").split("\n")
    changed = []
    # From the last to the first, so that a poem of another length does not move the ones still to do.
    for shown in reversed(shown_poems(lines)):
        poem = first_poem(shown.command)
        if lines[shown.start : shown.end] != poem:
            changed.append(shown.command)
            lines[shown.start : shown.end] = poem
    if changed and not check:
        path.write_text("\n".join(lines), encoding="utf-8")
    return changed[::-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="Markdown files with `$ tangrnn generate` blocks")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a shown poem differs")
    args = parser.parse_args(argv)
    differing = 0
    for path in args.files:
        try:
            changed = refresh(path, args.check)
        except RuntimeError as error:
            print(f"doc_poems: error: {path}: {error}", file=sys.stderr)
            return 2
        differing += len(changed)
        verb = "differs from what it prints" if args.check else "rewritten"
        for command in changed:
            print(f"{path}: {command}: {verb}")
    return 1 if args.check and differing else 0


if __name__ == "__main__":
    sys.exit(main())
