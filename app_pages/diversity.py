"""Diversity: within-genre MS-SSIM boxplots, generated beside real."""

import pandas as pd
import streamlit as st

from gan.eval.diversity import SIMILARITY_THRESHOLD, evaluate_diversity
from gan.eval.figures import diversity_boxplot
from gan.studio import (
    RealBaseline,
    cached_generator,
    current_generator,
    explain_baseline,
    genre_picker,
    png_bytes,
    real_baseline_input,
    real_covers,
    result_for_settings,
)

st.title("Diversity: within-genre MS-SSIM")
st.caption("Each box: MS-SSIM of random distinct pairs of covers of one genre. Higher means more alike; "
           "generated covers scoring above real ones hint at mode collapse.")
generator = current_generator()
if generator is None:
    st.stop()

with st.form("diversity"):
    columns = st.columns(4)
    n = columns[0].number_input("Generated covers per genre (N)", 2, 5000, 200, key="div_n", persist_state="session")
    pairs = columns[1].number_input("Pairs per genre", 1, 100000, 500, key="div_pairs", persist_state="session")
    seed = columns[2].number_input("Seed", 0, 2**31 - 1, 0, key="div_seed", persist_state="session")
    max_real = columns[3].number_input("Real covers per genre at most", 2, 10000, 500, key="div_max_real",
                                       persist_state="session")
    genres = genre_picker(generator, "div_genres", "Genres") if generator.genres else []
    baseline = real_baseline_input(generator, "div")
    submitted = st.form_submit_button("Compute", type="primary")
explain_baseline(generator, baseline)


@st.cache_data(show_spinner=False, max_entries=16)
def compute(checkpoint: str, n: int, pairs: int, seed: int, baseline: RealBaseline, max_real: int,
            genres: tuple[str, ...]):
    generator = cached_generator(checkpoint)
    bar = st.progress(0.0, "Starting...")
    try:
        real = real_covers(baseline, generator.resolution, list(genres), max_real, seed)
        return evaluate_diversity(generator, n, pairs, seed, real, list(genres) or None,
                                  progress=lambda f, text: bar.progress(f, text))
    finally:
        bar.empty()  # also when it fails: the error stands alone


settings = (st.session_state["checkpoint_path"], int(n), int(pairs), int(seed), baseline, int(max_real),
            tuple(genres))
result = result_for_settings("diversity_settings", settings, submitted, compute)
if result is None:
    st.stop()

summaries = result.summaries()
outliers = {f"{s['genre']}|{s['source']}|{o['i']}|{o['j']}": (s["genre"], s["source"], o["i"], o["j"], o["score"])
            for s in summaries for o in s["outliers"]}


def pick_clicked_pair():
    points = st.session_state["div_chart"].selection.points
    if points:
        genre, source, i, j, _ = points[0]["customdata"]
        st.session_state["div_outlier"] = f"{genre}|{source}|{i}|{j}"


st.plotly_chart(diversity_boxplot(result), width="stretch", key="div_chart", on_select=pick_clicked_pair,
                selection_mode="points")
st.caption(baseline.describe() + f". MS-SSIM settings: {result.settings['msssim']}")
columns = ["genre", "source", "images", "pairs", "mean", "median", "iqr", "share_above_threshold"]
table = pd.DataFrame([{k: s[k] for k in columns} | {"outliers": len(s["outliers"])} for s in summaries])
st.dataframe(table, hide_index=True, width="stretch", column_config={
    name: st.column_config.NumberColumn(format="%.3f") for name in ("mean", "median", "iqr")} | {
    "share_above_threshold": st.column_config.NumberColumn(f"share above {SIMILARITY_THRESHOLD}", format="%.2f")})

st.subheader("Look at a pair")
if st.session_state.get("div_outlier") not in outliers:
    st.session_state.pop("div_outlier", None)
choice = st.selectbox(f"Outlier pairs (1.5 IQR rule: the {len(outliers)} points on the chart; click one there), "
                      "most alike first", [None] + sorted(outliers, key=lambda k: -outliers[k][4]),
                      format_func=lambda k: "choose a pair" if k is None else
                      "{} ({}): covers {} and {}, MS-SSIM {:.3f}".format(*outliers[k]), key="div_outlier")
if choice is not None:
    genre, source, i, j, score = outliers[choice]
    group = result.group(genre, source)
    left, right = st.columns(2)
    for column, index, partner in ((left, i, j), (right, j, i)):
        column.image(png_bytes(group.images[index]), width=256, output_format="PNG",
                     caption=f"{genre}, {source} cover {index} of {len(group.images)}: "
                             f"MS-SSIM {score:.3f} with cover {partner}")
