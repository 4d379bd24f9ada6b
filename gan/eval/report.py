"""One self-contained HTML report of a checkpoint: samples, realism, diversity, colour and memorisation."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from gan.data.demo import demo_origin
from gan.errors import GanError
from gan.eval.colour import evaluate_colour, write_colour
from gan.eval.diversity import Progress, evaluate_diversity, write_diversity
from gan.eval.figures import (
    colour_figures,
    diversity_boxplot,
    figures_html,
    pairs_figure,
    png_data_uri,
    realism_figure,
)
from gan.eval.nearest import evaluate_nearest, write_nearest
from gan.eval.pairs import data_pairs, evaluate_pairs, write_pairs
from gan.eval.realism import realism_against_real, write_realism
from gan.sampling import CoverGenerator, genre_grid


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{v:.3f}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>"
                                    for v in (r[c] for c in columns)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(generator: CoverGenerator, out: Path, real: dict[str, np.ndarray] | None = None, n: int = 200,
                 pairs: int | str = 500, seed: int = 0, progress: Progress | None = None,
                 real_source: str | Path | None = None) -> Path:
    """Run diversity, colour and (with real covers) nearest-neighbour checks; write their files and report.html.

    `real_source` is where `real` came from (a folder, CSV or pack): its tag sets, if any, are the
    real covers of genre pairs for a checkpoint trained on covers of several genres."""
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda fraction, message: None)
    say(0.0, "diversity")
    diversity = evaluate_diversity(generator, n=n, pairs=pairs, seed=seed, real=real)
    write_diversity(diversity, out)
    say(0.5, "colour statistics")
    colour = evaluate_colour(generator, n=n, seed=seed, real=real)
    write_colour(colour, out, {"n": n, "seed": seed})
    nearest = None
    if real:
        say(0.75, "nearest training covers")
        nearest = evaluate_nearest(generator, real, n=n, seed=seed)
        write_nearest(nearest, out, {"n": n, "seed": seed})
    realism = None
    if real or demo_origin(generator.info.get("data")) is not None:
        say(0.85, "realism (trains the judge once, then cached)")
        realism = realism_against_real(generator, real, n=n, seed=seed)
        write_realism(realism, out)
    pair_report, pairs_not_measured = None, ""
    if data_pairs(generator):
        if real_source is None and demo_origin(generator.info.get("data")) is None:
            pairs_not_measured = "no real covers of the pairs to compare with (give --real: covers with tag sets)"
        else:
            say(0.9, "genre pairs (trains the judge of tag sets once, then cached)")
            try:
                pair_report = evaluate_pairs(generator, n=n, seed=seed, real=real_source)
                write_pairs(pair_report, out)
            except GanError as error:  # e.g. the real covers given carry too few covers of some pair
                pairs_not_measured = str(error)
    say(0.95, "writing the report")

    facts = generator.describe()
    sections = [
        ("Checkpoint", _table([facts], list(facts))),
        ("Samples: rows are fixed noise, columns are genres",
         f"<img class='grid' width=800 src='{png_data_uri(genre_grid(generator, rows=6, seed=seed))}'>"),
        ("Within-genre MS-SSIM (higher = more alike; settings: "
         + html.escape(json.dumps(diversity.settings["msssim"])) + ")",
         _table(diversity.summaries(), ["genre", "source", "images", "pairs", "mean", "median", "q1", "q3",
                                        "share_above_threshold"])),
        ("Colour statistics (means)",
         _table([g.summary() for g in colour], ["genre", "source", "brightness_mean", "contrast_mean",
                                                "saturation_mean", "colourfulness_mean"])),
    ]
    if nearest:
        sections.append(("Memorisation: nearest training covers",
                         _table([g.summary() for g in nearest], ["genre", "generated", "training",
                                                                 "share_closer_than_training",
                                                                 "median_nearest_distance",
                                                                 "median_training_nn_distance", "max_msssim"])
                         + "<p>Details and the closest pairs: nearest.html</p>"))
    if realism:
        sections.insert(1, ("Realism: Frechet distance to real covers in the judge's features, over the same "
                            "distance between two draws of real covers (1 = as close as real covers; "
                            f"{html.escape(realism.settings['real'])}, {realism.settings['n_per_genre']} per genre)",
                            _table(realism.rows(), ["genre", "ratio", "frechet", "frechet_floor", "kid", "kid_floor",
                                                    "spread", "judge_accuracy"])))
    else:
        sections.insert(1, ("Realism", "<p>Not measured: no real covers to compare with (give --real).</p>"))
    if pair_report:
        sections.insert(2, ("Genre pairs: covers asked for the equal mix of two genres against real covers of both "
                            f"({html.escape(pair_report.settings['real'])}; the targets count pairs with at least "
                            f"{pair_report.settings['target_min_covers']} covers in the data)",
                            _table(pair_report.rows(), ["pair", "covers_in_data", "top_two", "real_top_two", "ratio",
                                                        "msssim_generated", "msssim_real"])))
    elif pairs_not_measured:
        sections.insert(2, ("Genre pairs", f"<p>Not measured: {html.escape(pairs_not_measured)}.</p>"))
    path = out / "report.html"
    figures = [*([realism_figure(realism)] if realism else []), *([pairs_figure(pair_report)] if pair_report else []),
               diversity_boxplot(diversity), *colour_figures(colour)]
    path.write_text(figures_html(f"CoverGAN report: {generator.checkpoint}", figures, sections))
    say(1.0, "done")
    return path
