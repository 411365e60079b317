"""The columns that tell runs apart in every table a person reads: the plan, the live view and `status`.

A run id (`resnet-56-A-cifar10-paper-s0-1a2b3c4d`) is too long for an 80-column terminal, and cut short it
hides exactly the part that differs. So the tables show the identifying fields as their own columns (arch,
depth, shortcut, seed, plus data set and preset when they differ between rows; when all rows share them they
go in the title) and a short id: the run id's hash, which also tells apart runs that differ only in an extra
override. `--wide` shows the full run id instead; runs.parquet always holds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ALWAYS = ("arch", "depth", "shortcut", "seed")  # the grid's axes: always a column
WHEN_THEY_DIFFER = ("dataset", "preset", "subset")  # a column when rows differ, else named once in the title
HEADERS = {"arch": "arch", "depth": "depth", "shortcut": "sc", "seed": "seed", "dataset": "data",
           "preset": "preset", "subset": "subset"}
RIGHT = ("depth", "seed")


def short_id(run_id: str) -> str:
    """The run id's hash (its last part): unique per result-changing config, 8 characters."""
    return str(run_id).rsplit("-", 1)[-1]


def _text(field: str, value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if field == "subset":  # data.train_subset: "-" for the whole training set
        try:
            return f"{int(value):,} img"  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return "-"
    text = str(value)
    if field == "shortcut" and text in ("none", "<NA>", ""):
        return "-"  # plain nets have no shortcut
    return "-" if text == "<NA>" else text


@dataclass
class IdColumns:
    """Headers, their justification and each row's cells; `shared` names what every row has in common."""

    headers: list[str]
    justify: list[str]
    rows: list[list[str]]
    shared: list[str]

    def add_to(self, table) -> None:
        """Add these columns to a rich Table (the id never wraps nor gets cut: it is what you copy)."""
        for header, justify in zip(self.headers, self.justify, strict=True):
            wide = header == "run id"
            table.add_column(header, justify=justify, no_wrap=not wide, overflow="fold" if wide else "ellipsis")

    def title_suffix(self) -> str:
        return f" ({', '.join(self.shared)})" if self.shared else ""


def id_columns(records: Sequence[Mapping], wide: bool = False) -> IdColumns:
    """The identifying columns for these runs (each a mapping with run_id and the fields above)."""
    fields = list(ALWAYS)
    shared = []
    for name in WHEN_THEY_DIFFER:
        values = {_text(name, r.get(name)) for r in records}
        if len(values) > 1:
            fields.append(name)
        elif values and values != {"-"}:
            shared.append(values.pop())
    headers = ["run id" if wide else "id"] + [HEADERS[f] for f in fields]
    justify = ["left"] + ["right" if f in RIGHT else "left" for f in fields]
    rows = [[str(r["run_id"]) if wide else short_id(r["run_id"])] + [_text(f, r.get(f)) for f in fields]
            for r in records]
    return IdColumns(headers, justify, rows, shared)
