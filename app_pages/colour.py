"""Colour statistics per genre: brightness, contrast, saturation, colourfulness, hue and palettes."""

import pandas as pd
import streamlit as st

from gan.eval.colour import METRICS, evaluate_colour
from gan.eval.figures import colour_statistics_figure, hue_figure, palette_figure
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

REAL_PER_GENRE = 500
st.title("Colour statistics")
generator = current_generator()
if generator is None:
    st.stop()

with st.form("colour"):
    columns = st.columns(2)
    n = columns[0].number_input("Generated covers per genre", 2, 5000, 200, key="col_n", persist_state="session")
    seed = columns[1].number_input("Seed", 0, 2**31 - 1, 0, key="col_seed", persist_state="session")
    genres = genre_picker(generator, "col_genres", "Genres") if generator.genres else []
    baseline = real_baseline_input(generator, "col")
    submitted = st.form_submit_button("Compute", type="primary")
explain_baseline(generator, baseline)


@st.cache_data(show_spinner="Computing colour statistics...", max_entries=16)
def compute(checkpoint: str, n: int, seed: int, baseline: RealBaseline, genres: tuple[str, ...]):
    generator = cached_generator(checkpoint)
    real = real_covers(baseline, generator.resolution, list(genres), REAL_PER_GENRE, seed)
    return evaluate_colour(generator, n, seed, real, list(genres) or None)


settings = (st.session_state["checkpoint_path"], int(n), int(seed), baseline, tuple(genres))
groups = result_for_settings("colour_settings", settings, submitted, compute)
if groups is None:
    st.stop()
st.caption(baseline.describe() + (f" (up to {REAL_PER_GENRE} per genre)" if baseline.kind != "none" else ""))
st.plotly_chart(colour_statistics_figure(groups), width="stretch")
st.plotly_chart(hue_figure(groups), width="stretch")
st.plotly_chart(palette_figure(groups), width="stretch")
st.dataframe(pd.DataFrame([{"genre": g.genre, "source": g.source, "images": len(g.stats[METRICS[0]])}
                           | {m: f"{g.stats[m].mean():.3f} ± {g.stats[m].std():.3f}" for m in METRICS}
                           for g in groups]), hide_index=True, width="stretch")
st.caption("Mean ± standard deviation over the covers of each genre and source.")
