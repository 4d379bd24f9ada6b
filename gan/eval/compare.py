"""Run comparison: configs side by side (only what differs), loss curves, sample grids at one step."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from gan.errors import GanError
from gan.train.run import RunFolder

# Training statistics, then the quality evaluations of fine-tuning (rows with "kind": "eval";
# see gan.train.quality): each curve is drawn from the rows that carry its metric.
CURVE_METRICS = ("d_loss", "g_loss", "genre_acc", "fake_genre_acc", "d_real_acc", "d_fake_acc", "img_per_s",
                 "realism_mean", "realism_ratio", "realism_worst", "fidelity_min", "msssim_gap_max")


@dataclass
class RunSummary:
    name: str
    path: Path
    config: dict[str, Any]  # flattened: "finetune.train.lr_g" -> value
    metrics: list[dict[str, Any]]
    samples: dict[tuple[str, int], Path]  # (phase, step) -> grid PNG

    @property
    def last_step(self) -> dict[str, int]:
        steps: dict[str, int] = {}
        for row in self.metrics:
            steps[row["phase"]] = max(steps.get(row["phase"], 0), row["step"])
        return steps


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def load_run(path: str | Path) -> RunSummary:
    run = RunFolder(path)
    if not run.config_path.is_file():
        raise GanError(f"{path}: not a run folder (no config.json)")
    plan = run.load_plan()
    samples = {}
    if run.samples_dir.is_dir():
        for file in run.samples_dir.glob("*.png"):
            phase, _, step = file.stem.partition("-")
            if step.isdigit():
                samples[(phase, int(step))] = file
    return RunSummary(run.path.name, run.path, _flatten(plan.to_json()), run.read_metrics(), samples)


def config_differences(runs: list[RunSummary]) -> dict[str, list[Any]]:
    """Config keys whose values differ between runs (data paths included), with each run's value."""
    keys = sorted(set().union(*(r.config for r in runs)))
    return {k: [r.config.get(k) for r in runs] for k in keys
            if len({repr(r.config.get(k)) for r in runs}) > 1}


def curves_figure(runs: list[RunSummary], metric: str, phase: str = "finetune") -> go.Figure:
    fig = go.Figure()
    for run in runs:
        rows = [r for r in run.metrics if r["phase"] == phase and metric in r]
        fig.add_trace(go.Scatter(x=[r["step"] for r in rows], y=[r[metric] for r in rows], mode="lines",
                                 name=run.name))
    fig.update_layout(title=f"{metric} ({phase})", xaxis_title="step", yaxis_title=metric, height=360)
    return fig


def losses_figure(run: RunSummary, phase: str = "finetune") -> go.Figure:
    """One run's discriminator and generator losses over the steps of a phase."""
    fig = go.Figure()
    rows = [r for r in run.metrics if r["phase"] == phase]
    for metric in ("d_loss", "g_loss"):
        fig.add_trace(go.Scatter(x=[r["step"] for r in rows], y=[r.get(metric) for r in rows], mode="lines",
                                 name=metric))
    fig.update_layout(title=f"{run.name}: losses ({phase})", xaxis_title="step", height=300)
    return fig


def common_sample_step(runs: list[RunSummary], phase: str = "finetune") -> int | None:
    """The latest step at which every run saved a sample grid of this phase."""
    common = set.intersection(*({s for p, s in r.samples if p == phase} for r in runs)) if runs else set()
    return max(common) if common else None


def write_comparison(runs: list[RunSummary], out: Path) -> Path:
    from PIL import Image

    from gan.eval.figures import figures_html, png_data_uri

    if len(runs) < 2:
        raise GanError("compare needs at least two run folders")
    out.mkdir(parents=True, exist_ok=True)
    differences = config_differences(runs)
    head = "".join(f"<th>{html.escape(r.name)}</th>" for r in runs)
    rows = "".join(f"<tr><td style='text-align:left'>{html.escape(k)}</td>"
                   + "".join(f"<td>{html.escape(str(v))}</td>" for v in values) + "</tr>"
                   for k, values in differences.items())
    sections = [("Configuration differences", f"<table><tr><th>setting</th>{head}</tr>{rows}</table>"
                 if differences else "<p>The runs' configurations are identical.</p>")]
    phase = "finetune" if any(p == "finetune" for r in runs for p, _ in r.samples) else "pretrain"
    step = common_sample_step(runs, phase)
    if step is not None:
        cells = "".join(f"<td>{html.escape(r.name)}<br><img class='grid' src="
                        f"'{png_data_uri(np.asarray(Image.open(r.samples[(phase, step)]).convert('RGB')))}'></td>"
                        for r in runs)
        sections.append((f"Sample grids at {phase} step {step}", f"<table><tr>{cells}</tr></table>"))
    metrics = [m for m in CURVE_METRICS if any(m in row for r in runs for row in r.metrics)]
    figures = [curves_figure(runs, m, phase) for m in metrics]
    path = out / "comparison.html"
    path.write_text(figures_html("Run comparison: " + ", ".join(r.name for r in runs), figures, sections))
    return path
