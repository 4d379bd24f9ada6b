"""Diversity: within-genre MS-SSIM boxplots, generated beside real."""

import pandas as pd
import streamlit as st

from gan.eval.diversity import evaluate_diversity, real_images_by_genre
from gan.eval.figures import diversity_boxplot
from gan.studio import (
    cached_generator,
    choose_checkpoint,
    png_bytes,
    real_data_input,
    resolve_user_path,
    result_for_settings,
)

st.set_page_config(page_title="Diversity · CoverGAN Studio", layout="wide")
st.title("Diversity: within-genre MS-SSIM")
st.caption("Each box: MS-SSIM of random distinct pairs of covers of one genre. Higher means more alike; "
           "generated covers scoring above real ones hint at mode collapse.")
generator = choose_checkpoint()
if generator is None:
    st.stop()

with st.form("diversity"):
    columns = st.columns(3)
    n = columns[0].number_input("Generated covers per genre (N)", 2, 5000, 200, key="div_n")
    pairs = columns[1].number_input("Pairs per genre", 1, 100000, 500, key="div_pairs")
    seed = columns[2].number_input("Seed", 0, 2**31 - 1, 0, key="div_seed")
    real_text = real_data_input("div_real")
    max_real = st.number_input("Real covers per genre at most", 2, 10000, 500, key="div_max_real")
    submitted = st.form_submit_button("Compute")


@st.cache_data(show_spinner=False, max_entries=16)
def compute(checkpoint: str, n: int, pairs: int, seed: int, real_dir: str, max_real: int):
    generator = cached_generator(checkpoint)
    bar = st.progress(0.0, "Starting...")
    real = real_images_by_genre(real_dir, generator.resolution, max_real, seed) if real_dir else None
    result = evaluate_diversity(generator, n, pairs, seed, real, progress=lambda f, text: bar.progress(f, text))
    bar.empty()
    return result


settings = (st.session_state["checkpoint_path"], int(n), int(pairs), int(seed),
            str(resolve_user_path(real_text)) if real_text else "", int(max_real))
result = result_for_settings("diversity_settings", settings, submitted, compute)
if result is None:
    st.stop()

st.plotly_chart(diversity_boxplot(result), width="stretch")
summaries = result.summaries()
table = pd.DataFrame([{k: v for k, v in s.items() if k != "outliers"} | {"outliers": len(s["outliers"])}
                      for s in summaries])
st.dataframe(table, hide_index=True, width="stretch")
st.caption(f"MS-SSIM settings: {result.settings['msssim']}")

st.subheader("Look at a pair")
outliers = [(s["genre"], s["source"], o["i"], o["j"], o["score"]) for s in summaries for o in s["outliers"]]
choice = st.selectbox("Outlier pairs (1.5 IQR rule), most alike first",
                      [None] + sorted(outliers, key=lambda o: -o[4]),
                      format_func=lambda o: "choose a pair" if o is None else
                      f"{o[0]} ({o[1]}): covers {o[2]} and {o[3]}, MS-SSIM {o[4]:.3f}", key="div_outlier")
if choice is not None:
    group = result.group(choice[0], choice[1])
    left, right = st.columns(2)
    left.image(png_bytes(group.images[choice[2]]), caption=f"#{choice[2]}", width=256, output_format="PNG")
    right.image(png_bytes(group.images[choice[3]]), caption=f"#{choice[3]}", width=256, output_format="PNG")
