"""What a run folder's history holds for charts and comparisons.

`metrics.jsonl` rows carry a phase, a step and whatever numbers the trainer logged; rows marked
`"kind": "eval"` hold periodic quality evaluations instead of training statistics. Nothing here
lists metric names: a chart draws every number a phase's rows carry, so a metric the trainer starts
logging shows up without touching the app, and one a phase never logged is not drawn.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from gan.checkpoint import PHASE_ORDER

EVAL_KIND = "eval"
BOOKKEEPING = ("phase", "step", "time", "kind", "eval_covers", "eval_seconds")  # not metrics
GROUPS = (("Losses", ("_loss",)), ("Accuracies", ("_acc",)), ("Speed", ("_per_s",)))
OTHER = "Loss terms and other numbers"  # e.g. d_adv, g_genre: parts of the losses, and what else is logged
QUALITY = "Quality"
REALISM = "Quality: realism (Frechet distance over the real floor; 1 = as close as real covers)"


def phase_rows(rows: Iterable[dict[str, Any]], phase: str, evaluation: bool = False) -> list[dict[str, Any]]:
    """A phase's training rows, or with `evaluation` its quality-evaluation rows."""
    return [r for r in rows if r.get("phase") == phase and (r.get("kind") == EVAL_KIND) == evaluation]


def phases_logged(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The phases that have rows, in training order."""
    return sorted({r["phase"] for r in rows if r.get("phase") in PHASE_ORDER}, key=PHASE_ORDER.get)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def numeric_metrics(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Every key holding a finite number in at least one row, in the order first logged."""
    names: dict[str, None] = {}
    for row in rows:
        for key, value in row.items():
            if key not in BOOKKEEPING and _is_number(value):
                names.setdefault(key)
    return list(names)


def metric_groups(rows: Sequence[dict[str, Any]], phase: str) -> list[tuple[str, list[str]]]:
    """(title, metric names) per chart for one phase: losses, accuracies, speed, other numbers, and
    two 'Quality' charts for evaluation rows (realism ratios; fidelity and diversity), since their
    scales differ; groups with nothing logged are left out."""
    groups: dict[str, list[str]] = {title: [] for title, _ in GROUPS}
    groups[OTHER] = []
    for name in numeric_metrics(phase_rows(rows, phase)):
        title = next((t for t, suffixes in GROUPS if name.endswith(suffixes)), OTHER)
        groups[title].append(name)
    quality = numeric_metrics(phase_rows(rows, phase, evaluation=True))
    groups[REALISM] = [name for name in quality if name.startswith("realism")]
    groups[QUALITY] = [name for name in quality if not name.startswith("realism")]
    return [(title, names) for title, names in groups.items() if names]


def metric_choices(runs_rows: Sequence[Sequence[dict[str, Any]]], phase: str) -> dict[str, tuple[str, bool]]:
    """Label -> (metric, is an evaluation metric) over several runs' rows of one phase, for a picker."""
    choices: dict[str, tuple[str, bool]] = {}
    for evaluation in (False, True):
        for name in numeric_metrics(r for rows in runs_rows for r in phase_rows(rows, phase, evaluation)):
            choices[f"{QUALITY.lower()}: {name}" if evaluation else name] = (name, evaluation)
    return choices


def nearest_sample_steps(sample_steps: Sequence[Iterable[int]]) -> list[int] | None:
    """One sample step per run, as close as each run has to the furthest step every run reached.

    Runs of different lengths or sample intervals rarely share a step; comparing each at its nearest
    step to a common point is what a person would do by hand. None if a run has no sample.
    """
    steps = [sorted(set(s)) for s in sample_steps]
    if not steps or any(not s for s in steps):
        return None
    target = min(s[-1] for s in steps)
    return [min(s, key=lambda step: (abs(step - target), step)) for s in steps]


def display_value(value: Any) -> str:
    """A config value as text, so a table column may mix numbers, flags, names and lists."""
    if value is None:
        return "–"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def config_table(differences: dict[str, list[Any]]) -> dict[str, list[str]]:
    """config_differences' values as text (a column of mixed types breaks Arrow serialisation)."""
    return {key: [display_value(v) for v in values] for key, values in differences.items()}
