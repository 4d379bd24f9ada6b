"""Quality: how far generated covers lie from real ones (realism), per genre and over all genres, and
for checkpoints trained on covers of several genres, how covers of two genres at once fare."""

import pandas as pd
import streamlit as st

from gan.eval.figures import pairs_figure, realism_figure
from gan.eval.pairs import data_pairs, evaluate_pairs
from gan.eval.realism import realism_against_real
from gan.studio import (
    RealBaseline,
    cached_generator,
    current_generator,
    explain_baseline,
    genre_picker,
    real_baseline_input,
    real_covers,
    result_for_settings,
)
from gan.train.options import resolve_user_path

st.title("Quality: realism")
st.caption("A small CNN (the judge) is trained once on real covers to tell their genres apart; in its features, "
           "the Frechet distance from generated covers to real ones is divided by the same distance between two "
           "draws of real covers (the floor). 1 means as close to real covers as other real covers are; KID "
           "(unbiased, about 0 at the floor) beside it. The spread is the generated covers' feature variance over "
           "the real covers' (below 1: less varied than real covers in the judge's eyes). The judge's accuracy "
           "says how often it files a generated cover under the genre asked for.")
generator = current_generator()
if generator is None:
    st.stop()
if not generator.genres:
    st.info("Realism is measured per genre: this checkpoint is unconditional (pre-training only).")
    st.stop()

with st.form("quality"):
    columns = st.columns(3)
    n = columns[0].number_input("Covers per genre (generated, and each real draw)", 10, 2000, 200, key="q_n",
                                persist_state="session")
    seed = columns[1].number_input("Seed", 0, 2**31 - 1, 0, key="q_seed", persist_state="session")
    max_real = columns[2].number_input("Real covers per genre at most (from a folder)", 30, 10000, 1000,
                                       key="q_max_real", persist_state="session")
    genres = genre_picker(generator, "q_genres", "Genres")
    baseline = real_baseline_input(generator, "q")
    submitted = st.form_submit_button("Compute", type="primary")
explain_baseline(generator, baseline)


@st.cache_data(show_spinner="Training or loading the judge, then scoring covers...", max_entries=16)
def compute(checkpoint: str, n: int, seed: int, baseline: RealBaseline, max_real: int, genres: tuple[str, ...]):
    generator = cached_generator(checkpoint)
    # Demo covers: the judge and both real draws come from their own held-out seeds (gan.eval.realism).
    real = real_covers(baseline, generator.resolution, list(genres), max_real, seed) if baseline.kind == "folder" \
        else None
    return realism_against_real(generator, real, n, seed, list(genres) or None)


@st.cache_data(show_spinner="Training or loading the judge of tag sets, then scoring covers of each pair...",
               max_entries=8)
def compute_pairs(checkpoint: str, n: int, seed: int, real_folder: str):
    real = resolve_user_path(real_folder) if real_folder else None
    return evaluate_pairs(cached_generator(checkpoint), n, seed, real)


def show_pairs() -> None:
    """Covers asked for two genres at once, when the checkpoint's data had covers of two genres."""
    if not data_pairs(generator):
        return
    st.subheader("Genre pairs")
    st.caption("For each pair of genres that training covers carried together: covers of the equal mix against "
               "real covers of both genres (held-out demo covers, or the folder or CSV given above, whose covers "
               "need their tag sets). Top-two accuracy: how often a judge trained on real covers "
               "with their tag sets rates exactly the pair highest (the real covers' share is its ceiling); "
               "realism as above, per pair; within-pair MS-SSIM. * marks pairs with fewer covers in the data "
               "than the targets count.")
    pressed = st.button("Measure genre pairs", key="pairs_compute")
    folder = baseline.folder if baseline.kind == "folder" else ""
    report = result_for_settings("pairs_settings", (st.session_state["checkpoint_path"], int(n), int(seed), folder),
                                 pressed, compute_pairs)
    if report is None:
        return
    st.plotly_chart(pairs_figure(report), width="stretch")
    st.dataframe(pd.DataFrame(report.rows()), hide_index=True, width="stretch", column_config={
        "top_two": st.column_config.NumberColumn("top two", format="%.2f"),
        "real_top_two": st.column_config.NumberColumn("top two (real)", format="%.2f"),
        "ratio": st.column_config.NumberColumn("realism (lower is better)", format="%.2f"),
        "frechet": st.column_config.NumberColumn(format="%.3f"),
        "frechet_floor": st.column_config.NumberColumn("floor", format="%.3f"),
        "msssim_generated": st.column_config.NumberColumn("MS-SSIM", format="%.3f"),
        "msssim_real": st.column_config.NumberColumn("MS-SSIM (real)", format="%.3f")})


def show_realism() -> None:
    if baseline.kind == "none":
        return
    settings = (st.session_state["checkpoint_path"], int(n), int(seed), baseline, int(max_real), tuple(genres))
    report = result_for_settings("quality_settings", settings, submitted, compute)
    if report is None:
        return
    overall, worst = report.overall, report.worst
    columns = st.columns(3)
    columns[0].metric("Realism over all genres", f"{overall.ratio:.2f} x the floor")
    columns[1].metric("Worst genre", f"{worst.ratio:.2f} x ({worst.genre})")
    columns[2].metric("Judge's accuracy on generated covers",
                      f"{sum(s.judge_accuracy for s in report.genres) / len(report.genres):.0%}")
    st.plotly_chart(realism_figure(report), width="stretch")
    st.caption(f"Real covers: {report.settings['real']}; {report.settings['n_per_genre']} per genre in each set. "
               f"Judge: {report.settings['judge'].get('held_out_accuracy', float('nan')):.1%} right on held-out real "
               "covers. The Frechet distance grows with fewer covers, which is why it is read against the floor.")
    st.dataframe(pd.DataFrame(report.rows()), hide_index=True, width="stretch", column_config={
        "ratio": st.column_config.NumberColumn("ratio (lower is better)", format="%.2f"),
        "frechet": st.column_config.NumberColumn(format="%.3f"),
        "frechet_floor": st.column_config.NumberColumn("floor", format="%.3f"),
        "kid": st.column_config.NumberColumn("KID", format="%.4f"),
        "kid_floor": st.column_config.NumberColumn("KID floor", format="%.4f"),
        "spread": st.column_config.NumberColumn("spread (generated / real variance)", format="%.2f"),
        "judge_accuracy": st.column_config.NumberColumn("judge's accuracy", format="%.2f")})


show_realism()
show_pairs()
