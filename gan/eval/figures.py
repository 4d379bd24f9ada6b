"""Plotly figures for evaluation results: the app, the CLI's HTML files and the report draw these."""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gan.eval.colour import HUE_BINS, METRICS, ColourGroup
from gan.eval.diversity import DiversityResult

SOURCE_COLOURS = {"generated": "#636efa", "real": "#ef553b"}


def diversity_boxplot(result: DiversityResult) -> go.Figure:
    """MS-SSIM per genre, generated beside real; hover an outlier to see its pair (i, j)."""
    fig = go.Figure()
    for source in ("generated", "real"):
        groups = [g for g in result.groups if g.source == source]
        if not groups:
            continue
        fig.add_trace(go.Box(
            x=np.concatenate([[g.genre] * len(g.scores) for g in groups]),
            y=np.concatenate([g.scores for g in groups]),
            customdata=np.concatenate([np.stack([g.i, g.j], axis=1) for g in groups]),
            hovertemplate="%{x}: MS-SSIM %{y:.3f}<br>pair (%{customdata[0]}, %{customdata[1]})<extra>" + source
                          + "</extra>",
            name=source, marker_color=SOURCE_COLOURS[source], boxpoints="outliers"))
    fig.update_layout(boxmode="group", title="Within-genre MS-SSIM (higher = more alike)",
                      yaxis_title="MS-SSIM", xaxis_title="genre", legend_title="source")
    return fig


def colour_figures(groups: list[ColourGroup]) -> list[go.Figure]:
    figures = []
    metric_fig = make_subplots(rows=1, cols=len(METRICS), subplot_titles=METRICS)
    for col, metric in enumerate(METRICS, start=1):
        for source in ("generated", "real"):
            chosen = [g for g in groups if g.source == source]
            if not chosen:
                continue
            metric_fig.add_trace(go.Box(
                x=np.concatenate([[g.genre] * len(g.stats[metric]) for g in chosen]),
                y=np.concatenate([g.stats[metric] for g in chosen]),
                name=source, marker_color=SOURCE_COLOURS[source], boxpoints=False,
                legendgroup=source, showlegend=col == 1), row=1, col=col)
    metric_fig.update_layout(boxmode="group", title="Colour statistics per genre", height=420)
    figures.append(metric_fig)

    hue_fig = go.Figure()
    centres = [(k + 0.5) * 360 / HUE_BINS for k in range(HUE_BINS)]
    for g in groups:
        hue_fig.add_trace(go.Barpolar(r=g.hue, theta=centres, width=[360 / HUE_BINS] * HUE_BINS,
                                      name=f"{g.genre} ({g.source})", opacity=0.6,
                                      visible=True if g is groups[0] else "legendonly"))
    hue_fig.update_layout(title="Hue histograms (click a legend entry to show it)", height=480)
    figures.append(hue_fig)
    figures.append(palette_figure(groups))
    return figures


def palette_figure(groups: list[ColourGroup]) -> go.Figure:
    """One row of swatches per genre and source, widths proportional to each colour's share."""
    fig = go.Figure()
    labels = [f"{g.genre} ({g.source})" for g in groups]
    for row, g in enumerate(groups):
        left = 0.0
        for colour, share in zip(g.palette, g.palette_shares):
            hex_colour = "#%02x%02x%02x" % tuple(int(c) for c in colour)
            fig.add_trace(go.Bar(x=[share], y=[labels[row]], base=left, orientation="h", marker_color=hex_colour,
                                 showlegend=False, hovertemplate=f"{hex_colour}: {share:.0%}<extra></extra>"))
            left += float(share)
    fig.update_layout(title="Dominant palettes (k-means)", barmode="overlay", height=60 + 28 * len(groups),
                      xaxis=dict(range=[0, 1], tickformat=".0%"), yaxis=dict(autorange="reversed"))
    return fig


def png_data_uri(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def figures_html(title: str, figures: list[go.Figure], sections: list[tuple[str, str]] | None = None) -> str:
    """One self-contained HTML page: the HTML sections, then each figure (plotly.js inlined once)."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:system-ui,sans-serif;max-width:1200px;margin:auto;padding:1em}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
             "img.grid{image-rendering:pixelated;max-width:100%}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for heading, body in sections or []:
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
    for k, figure in enumerate(figures):
        parts.append(figure.to_html(full_html=False, include_plotlyjs="inline" if k == 0 else False))
    parts.append("</body></html>")
    return "\n".join(parts)
