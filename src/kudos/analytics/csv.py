"""An analytics answer as a CSV table (``Accept: text/csv``): the same figures, one row per
bucket (step, cohort, figure), one column per series."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any


def render(answer: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in table(answer):
        writer.writerow([_cell(cell) for cell in row])
    return out.getvalue()


def _cell(value: Any) -> Any:
    """JSON's spelling: empty for null, true and false for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def table(answer: dict[str, Any]) -> list[list[Any]]:
    """The answer's table: a header row, then the rows."""
    if "steps" in answer:
        keys = [
            "event",
            "count",
            "conversionFromFirst",
            "conversionFromPrevious",
            "medianSecondsFromPrevious",
        ]
        return [keys, *([step[k] for k in keys] for step in answer["steps"])]
    if "cohorts" in answer:
        width = max((len(c["retained"]) for c in answer["cohorts"]), default=0)
        header = ["start", "size", *(f"period {k}" for k in range(width))]
        return [header, *([c["start"], c["size"], *c["retained"]] for c in answer["cohorts"])]
    if "buckets" in answer:
        columns = list(_columns(answer, len(answer["buckets"])))
        header = ["bucket", *(name for name, _ in columns)]
        body = [
            [bucket, *(values[i] for _, values in columns)]
            for i, bucket in enumerate(answer["buckets"])
        ]
        return [header, *body]
    if "customers" in answer and "intervals" in answer:
        return [
            ["activeIntervals", "customers"],
            *([k + 1, n] for k, n in enumerate(answer["customers"])),
        ]
    return [["figure", "value", "previous"], *_figures(answer, "")]


def _columns(answer: dict[str, Any], size: int) -> Iterator[tuple[str, list[Any]]]:
    for key, value in answer.items():
        if key == "buckets":
            continue
        if key == "series":
            for series in value:
                yield series["label"], series["data"]
                if "previous" in series:
                    yield series["label"] + " · previous", series["previous"]["data"]
        elif isinstance(value, list) and len(value) == size:
            yield key, value
        elif isinstance(value, dict):
            for name, values in value.items():
                if isinstance(values, list) and len(values) == size:
                    yield f"{key}.{name}", values


def _figures(answer: dict[str, Any], prefix: str) -> Iterator[list[Any]]:
    for key, value in answer.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and "value" in value and not isinstance(value["value"], dict):
            yield [name, value["value"], value.get("previous")]
        elif isinstance(value, dict):
            yield from _figures(value, name + ".")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    yield from _figures(item, f"{name}[{index}].")
        else:
            yield [name, value, None]
