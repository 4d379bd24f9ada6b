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
from gan.eval.pairs import PairReport
from gan.eval.realism import RealismReport

SOURCE_COLOURS = {"generated": "#636efa", "real": "#ef553b"}


def realism_figure(report: RealismReport) -> go.Figure:
    """Per-genre and pooled Frechet ratios as bars, with the line where generated covers would sit as
    close to real ones as another draw of real covers does."""
    scores = report.scores
    fig = go.Figure(go.Bar(
        x=[s.genre for s in scores], y=[s.ratio for s in scores], marker_color=SOURCE_COLOURS["generated"],
        customdata=[[s.frechet, s.frechet_floor, s.kid, s.kid_floor] for s in scores],
        hovertemplate="%{x}: %{y:.2f} x the floor<br>Frechet %{customdata[0]:.3f} (floor %{customdata[1]:.3f})"
                      "<br>KID %{customdata[2]:.4f} (floor %{customdata[3]:.4f})<extra></extra>"))
    fig.add_hline(y=1.0, line_dash="dash", line_color=SOURCE_COLOURS["real"],
                  annotation_text="another draw of real covers", annotation_position="top left")
    fig.update_layout(title="Realism: Frechet distance to real covers over the real floor (lower is better)",
                      yaxis_title="ratio", height=360, margin=dict(t=50, b=40, l=50, r=10))
    return fig


def pairs_figure(report: PairReport) -> go.Figure:
    """Per tag pair: top-two accuracy of generated covers beside that of real covers of the pair
    (the judge's ceiling), and the realism ratio, on a second axis."""
    from gan.eval.pairs import PAIR_REALISM_TARGET, TOP_TWO_TARGET

    names = [s.pair + ("" if s.counted else " *") for s in report.scores]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("Top-two accuracy: the judge's two highest genres are the pair",
                                        "Realism: Frechet distance to real covers of the pair over the floor"))
    for source, values in (("generated", [s.top_two for s in report.scores]),
                           ("real", [s.real_top_two for s in report.scores])):
        fig.add_trace(go.Bar(x=names, y=values, name=source, marker_color=SOURCE_COLOURS[source],
                             hovertemplate="%{x}: %{y:.0%}<extra>" + source + "</extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=[s.ratio for s in report.scores], name="realism ratio", showlegend=False,
                         marker_color=SOURCE_COLOURS["generated"], customdata=[s.covers_in_data for s in report.scores],
                         hovertemplate="%{x}: %{y:.2f} x the floor<br>%{customdata} covers in the training data"
                                       "<extra></extra>"), row=2, col=1)
    fig.add_hline(y=TOP_TWO_TARGET, line_dash="dash", row=1, col=1)
    fig.add_hline(y=PAIR_REALISM_TARGET, line_dash="dash", row=2, col=1)
    fig.update_yaxes(tickformat=".0%", range=[0, 1], row=1, col=1)
    fig.update_layout(barmode="group", height=560, margin=dict(t=60, b=40, l=50, r=10),
                      title="Genre pairs (* fewer than the covers in the data the targets count)")
    return fig


def diversity_boxplot(result: DiversityResult) -> go.Figure:
    """MS-SSIM per genre, generated beside real: boxes from each group's summary, and its outliers
    (the 1.5 IQR rule of `PairScores.summary`, the same pairs the app lists) as points.

    Each outlier point carries (genre, source, i, j, score) as customdata, so a click can show the pair.
    """
    fig = go.Figure()
    genres = list(dict.fromkeys(g.genre for g in result.groups))
    sources = [s for s in ("generated", "real") if any(g.source == s for g in result.groups)]
    width = 0.8 / len(sources)
    for k, source in enumerate(sources):
        groups = [g for g in result.groups if g.source == source]
        summaries = [g.summary() for g in groups]
        x = [genres.index(g.genre) + (k - (len(sources) - 1) / 2) * width for g in groups]
        fig.add_trace(go.Box(
            x=x, q1=[s["q1"] for s in summaries], median=[s["median"] for s in summaries],
            q3=[s["q3"] for s in summaries], lowerfence=[s["whisker_low"] for s in summaries],
            upperfence=[s["whisker_high"] for s in summaries], mean=[s["mean"] for s in summaries],
            width=width * 0.85, name=source, legendgroup=source, marker_color=SOURCE_COLOURS[source],
            hoverinfo="y"))
        points = [(xk, s["genre"], o) for xk, s in zip(x, summaries) for o in s["outliers"]]
        fig.add_trace(go.Scatter(
            x=[p[0] for p in points], y=[p[2]["score"] for p in points], mode="markers",
            customdata=[[genre, source, o["i"], o["j"], o["score"]] for _, genre, o in points],
            hovertemplate="%{customdata[0]} (%{customdata[1]}): covers %{customdata[2]} and %{customdata[3]}, "
                          "MS-SSIM %{y:.3f}<br>click to see the pair<extra></extra>",
            name=f"{source} outliers", legendgroup=source, showlegend=False,
            marker=dict(color=SOURCE_COLOURS[source], size=7, line=dict(width=1, color="white"))))
    fig.update_layout(title="Within-genre MS-SSIM (higher = more alike); points are outlier pairs",
                      yaxis_title="MS-SSIM", legend_title="source", height=460,
                      xaxis=dict(title="genre", tickmode="array", tickvals=list(range(len(genres))), ticktext=genres,
                                 range=[-0.6, len(genres) - 0.4]))
    return fig


def colour_figures(groups: list[ColourGroup]) -> list[go.Figure]:
    """The statistics (one panel each), hue histograms (one polar panel per genre) and palettes."""
    return [colour_statistics_figure(groups), hue_figure(groups), palette_figure(groups)]


def colour_statistics_figure(groups: list[ColourGroup], columns: int = 2) -> go.Figure:
    """Brightness, contrast, saturation and colourfulness per genre, generated beside real: a panel
    each, two to a row, so every box keeps a readable width."""
    rows = -(-len(METRICS) // columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=METRICS, vertical_spacing=0.14,
                        horizontal_spacing=0.06)
    for index, metric in enumerate(METRICS):
        for source in ("generated", "real"):
            chosen = [g for g in groups if g.source == source]
            if not chosen:
                continue
            fig.add_trace(go.Box(
                x=np.concatenate([[g.genre] * len(g.stats[metric]) for g in chosen]),
                y=np.concatenate([g.stats[metric] for g in chosen]),
                name=source, marker_color=SOURCE_COLOURS[source], boxpoints=False,
                legendgroup=source, showlegend=index == 0), row=index // columns + 1, col=index % columns + 1)
    fig.update_layout(boxmode="group", title="Colour statistics per genre", height=300 * rows + 120,
                      legend=dict(orientation="h", y=1.02 + 0.04 * rows, x=1, xanchor="right", yanchor="bottom"))
    return fig


def hue_figure(groups: list[ColourGroup], columns: int = 4) -> go.Figure:
    """One polar hue histogram per genre, generated and real overlaid; one legend entry per source."""
    genres = list(dict.fromkeys(g.genre for g in groups))
    columns = max(1, min(columns, len(genres)))
    rows = -(-len(genres) // columns)
    fig = make_subplots(rows=rows, cols=columns, specs=[[{"type": "polar"}] * columns] * rows,
                        subplot_titles=genres, vertical_spacing=0.12 / rows + 0.04, horizontal_spacing=0.04)
    centres = [(k + 0.5) * 360 / HUE_BINS for k in range(HUE_BINS)]
    shown = set()
    for g in groups:
        index = genres.index(g.genre)
        fig.add_trace(go.Barpolar(r=g.hue, theta=centres, width=[360 / HUE_BINS] * HUE_BINS, name=g.source,
                                  legendgroup=g.source, showlegend=g.source not in shown, opacity=0.55,
                                  marker_color=SOURCE_COLOURS[g.source],
                                  hovertemplate=f"{g.genre} ({g.source}): "
                                                + "%{theta:.0f}°: %{r:.1%}<extra></extra>"),
                      row=index // columns + 1, col=index % columns + 1)
        shown.add(g.source)
    fig.update_annotations(yshift=14)  # genre names above their panels' 90° mark
    fig.update_polars(radialaxis=dict(showticklabels=False),
                      angularaxis=dict(tickmode="array", tickvals=[0, 90, 180, 270], tickfont=dict(size=9)))
    fig.update_layout(title="Hue histograms of coloured pixels (0° red, 120° green, 240° blue)",
                      height=280 * rows + 120,  # the legend goes below: above, it covers the panels' titles
                      legend=dict(orientation="h", x=0.5, xanchor="center", y=-0.04, yanchor="top"))
    return fig


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
    fig.update_layout(title="Dominant palettes (k-means)", barmode="overlay", height=100 + 30 * len(groups),
                      xaxis=dict(range=[0, 1], tickformat=".0%"),
                      yaxis=dict(autorange="reversed", type="category", tickmode="array", tickvals=labels))
    return fig


def metrics_figure(rows: list[dict], names: list[str], title: str, height: int = 280) -> go.Figure:
    """Lines of the given metrics over the steps of `rows` (rows without a metric leave a gap)."""
    fig = go.Figure()
    for name in names:
        points = [(r["step"], r[name]) for r in rows if isinstance(r.get(name), int | float)]
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers"
                                 if len(points) < 30 else "lines", name=name))
    # No axis title: the legend sits below the axis instead, and hovering says the step.
    fig.update_layout(title=title, height=height, margin=dict(t=40, b=20, l=40, r=10), hovermode="x unified",
                      legend=dict(orientation="h", yanchor="top", y=-0.2))
    return fig


def run_charts(rows: list[dict], phase: str) -> list[go.Figure]:
    """One chart per group of the metrics a phase logged (losses, accuracies, speed, other numbers) and a
    'Quality' chart of its evaluation rows; a group the phase did not log is not drawn."""
    from gan.train.history import QUALITY, metric_groups, phase_rows

    return [metrics_figure(phase_rows(rows, phase, evaluation=title.startswith(QUALITY)), names, title)
            for title, names in metric_groups(rows, phase)]


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


def labelled_grid_html(png: bytes, width: int, columns: list[str], rows: list[str], label_width: int = 72) -> str:
    """A grid image with its column names above and row names beside it, as HTML that fits its container:
    at most `width` px of image, narrower when the page is (the labels stay aligned, as they are placed
    in equal shares of the image's width and height)."""
    def cell(text: str, style: str) -> str:
        return f"<div title='{html.escape(text)}' style='{style}'>{html.escape(text)}</div>"

    clip = "overflow:hidden;text-overflow:ellipsis;white-space:nowrap;"
    heads = "".join(cell(name, clip + "text-align:center;font-weight:600;padding:0 2px") for name in columns)
    sides = "".join(cell(name, clip + "display:flex;align-items:center;justify-content:flex-end;"
                         "padding-right:8px;opacity:0.7") for name in rows)
    source = "data:image/png;base64," + base64.b64encode(png).decode()
    return (f"<div class='labelled-grid' style='width:100%;max-width:{width + label_width}px;font-size:0.85rem'>"
            f"<div style='display:grid;grid-template-columns:{label_width}px minmax(0,1fr)'>"
            f"<div></div><div style='display:grid;grid-template-columns:repeat({len(columns)},minmax(0,1fr))'>"
            f"{heads}</div>"
            f"<div style='display:grid;grid-template-rows:repeat({len(rows)},minmax(0,1fr))'>{sides}</div>"
            f"<img alt='grid' src='{source}' style='width:100%;height:auto;display:block'>"
            "</div></div>")
