"""Genre grid: the same noise across every genre, and chosen genres side by side."""

import streamlit as st

from gan.sampling import genre_grid
from gan.studio import choose_checkpoint, png_bytes

st.set_page_config(page_title="Genre grid · CoverGAN Studio", layout="wide")
st.title("Genre grid")
generator = choose_checkpoint()
if generator is None:
    st.stop()
if not generator.genres:
    st.info("This checkpoint is unconditional (pre-training only): it has no genres to compare.")
    st.stop()

controls = st.columns(3)
seed = controls[0].number_input("Seed", 0, 2**31 - 1, 0, key="grid_seed")
rows = controls[1].slider("Rows (noise vectors)", 1, 12, 6, key="grid_rows")
scale = controls[2].slider("Zoom", 1, 4, 2, key="grid_zoom")
genres = st.multiselect("Genres and their order (columns)", generator.genres, default=generator.genres,
                        key="grid_genres")
if not genres:
    st.error("Choose at least one genre.")
    st.stop()
grid = genre_grid(generator, rows=rows, seed=int(seed), genres=genres)
st.image(png_bytes(grid), width=grid.shape[1] * scale, caption="Each row is one noise vector; each column a genre: "
         + ", ".join(genres), output_format="PNG")
st.download_button("Download the grid (PNG)", lambda: png_bytes(grid, grid.shape[1] * scale),
                   file_name=f"genre-grid-seed{seed}.png", mime="image/png")

st.subheader("Side by side")
chosen = st.multiselect("Compare genres", generator.genres, default=generator.genres[:2], key="compare_genres")
count = st.slider("Covers per genre", 1, 8, 4, key="compare_count")
if len(chosen) < 2:
    st.warning("Pick two or more genres to compare.")
else:
    noise = generator.sample_noise(count, int(seed))
    columns = st.columns(len(chosen))
    for column, genre in zip(columns, chosen):
        with column:
            st.markdown(f"**{genre}**")
            for image in generator.generate(noise, genre):
                st.image(png_bytes(image), width=256, output_format="PNG")
