"""The README's "From Python" code blocks run as written and recover their formulas.

The blocks are taken from the README itself (so the test follows every edit), run in one
fresh interpreter (``python -c``) after each other, and each block's result is printed and
compared with the truth by :func:`physkan.symbolic.equivalence.equivalent`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from physkan.symbolic.equivalence import equivalent
from physkan.symbolic.parse import parse_expression

README = Path(__file__).resolve().parents[1] / "README.md"
HEADING = "### From Python"
#: per block: the expression whose value is the found formula, the truth, its variables.
EXPECTED = [
    ("formula", "x0*x1 + sin(x2)", ["x0", "x1", "x2"]),
    ("model.sympy()", "x0*exp(-x1)", ["x0", "x1"]),
]


def python_blocks(text: str, heading: str = HEADING) -> list[str]:
    """The ```` ```python ```` blocks of the section under ``heading`` (up to the next heading
    of the same or a higher level)."""
    start = text.index(f"\n{heading}\n")
    level = heading.split()[0]
    ends = [m.start() for m in re.finditer(rf"\n#{{1,{len(level)}}} ", text[start + 1 :])]
    section = text[start : start + 1 + ends[0]] if ends else text[start:]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_section_has_the_expected_blocks() -> None:
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) == len(EXPECTED)
    for block, (name, _, _) in zip(blocks, EXPECTED):
        assert name.split(".")[0] in block


@pytest.mark.slow
@pytest.mark.recovery
def test_readme_python_snippets_recover_their_formulas(tmp_path: Path) -> None:
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    program = []
    for i, (block, (name, _, _)) in enumerate(zip(blocks, EXPECTED)):
        program += [block, f"print('RESULT{i}:', {name})"]
    done = subprocess.run([sys.executable, "-c", "\n".join(program)], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for i, (_, truth, variables) in enumerate(EXPECTED):
        line = next(ln for ln in done.stdout.splitlines() if ln.startswith(f"RESULT{i}:"))
        found = parse_expression(line.split(":", 1)[1].strip(), variables)
        check = equivalent(found, truth, variables)
        assert check.equivalent, f"block {i}: found {found}, expected {truth} ({check.reason})"
