"""The one line every benchmark prints per headline figure, so ``python -m bench`` can gather them.

    FIGURE<TAB>name<TAB>value<TAB>target<TAB>pass|FAIL|-

A benchmark prints its own detailed table as well; these lines are the summary.
"""

from __future__ import annotations

from dataclasses import dataclass

MARK = "FIGURE"


@dataclass(frozen=True)
class Figure:
    name: str
    value: str
    target: str = ""
    ok: bool | None = None  # None: no target

    @property
    def verdict(self) -> str:
        return "-" if self.ok is None else ("pass" if self.ok else "FAIL")


def emit(name: str, value: str, target: str = "", ok: bool | None = None) -> None:
    """Print one figure line (tabs in the fields are replaced by spaces)."""
    fields = [MARK, name, value, target, Figure(name, value, target, ok).verdict]
    print("\t".join(field.replace("\t", " ") for field in fields), flush=True)


def parse(output: str) -> list[Figure]:
    """The figure lines of a benchmark's output."""
    figures = []
    for line in output.splitlines():
        parts = line.split("\t")
        if len(parts) == 5 and parts[0] == MARK:
            _, name, value, target, verdict = parts
            figures.append(Figure(name, value, target, None if verdict == "-" else verdict == "pass"))
    return figures
