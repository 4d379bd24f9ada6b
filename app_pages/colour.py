"""Colour statistics per genre: brightness, contrast, saturation, colourfulness, hue and palettes."""

import pandas as pd
import streamlit as st

from gan.eval.colour import evaluate_colour
from gan.eval.diversity import real_images_by_genre
from gan.eval.figures import colour_figures
from gan.studio import cached_generator, choose_checkpoint, real_data_input, resolve_user_path, result_for_settings

st.set_page_config(page_title="Colour · CoverGAN Studio", layout="wide")
st.title("Colour statistics")
generator = choose_checkpoint()
if generator is None:
    st.stop()

with st.form("colour"):
    columns = st.columns(2)
    n = columns[0].number_input("Generated covers per genre", 2, 5000, 200, key="col_n")
    seed = columns[1].number_input("Seed", 0, 2**31 - 1, 0, key="col_seed")
    real_text = real_data_input("col_real")
    submitted = st.form_submit_button("Compute")


@st.cache_data(show_spinner="Computing colour statistics...", max_entries=16)
def compute(checkpoint: str, n: int, seed: int, real_dir: str):
    generator = cached_generator(checkpoint)
    real = real_images_by_genre(real_dir, generator.resolution, 500, seed) if real_dir else None
    return evaluate_colour(generator, n, seed, real)


settings = (st.session_state["checkpoint_path"], int(n), int(seed),
            str(resolve_user_path(real_text)) if real_text else "")
groups = result_for_settings("colour_settings", settings, submitted, compute)
if groups is None:
    st.stop()
for figure in colour_figures(groups):
    st.plotly_chart(figure, width="stretch")
st.dataframe(pd.DataFrame([{k: v for k, v in g.summary().items() if k not in ("hue_histogram", "palette_shares")}
                           for g in groups]), hide_index=True, width="stretch")
