"""Genre grid: the same noise across every genre, and chosen genres side by side."""

import streamlit as st

from gan.studio import current_generator, genre_grid_html, genre_picker, png_bytes

st.title("Genre grid")
generator = current_generator()
if generator is None:
    st.stop()
if not generator.genres:
    st.info("This checkpoint is unconditional (pre-training only): it has no genres to compare.")
    st.stop()

controls = st.columns(3)
seed = int(controls[0].number_input("First seed (row k is seed + k)", 0, 2**31 - 1, 0, key="grid_seed",
                                    persist_state="session"))
rows = controls[1].slider("Rows (noise vectors)", 1, 12, 6, key="grid_rows", persist_state="session")
zoom = controls[2].slider("Zoom (at most; the grid always fits the page)", 1, 4, 2, key="grid_zoom",
                          persist_state="session")
genres = genre_picker(generator, "grid_genres")
if not genres:
    st.error("Choose at least one genre.")
    st.stop()
page, grid = genre_grid_html(generator, seed, rows, genres, zoom)
st.html(page)
st.caption("Each row is one noise vector, the cover the Latent explorer shows for that seed; each column a genre.")
st.download_button("Download the grid (PNG)", lambda: png_bytes(grid, grid.shape[1] * zoom),
                   file_name=f"genre-grid-seed{seed}-{rows}x{len(genres)}.png", mime="image/png")

st.subheader("Side by side")
chosen = genre_picker(generator, "compare_genres", "Compare genres", default_count=2, max_count=6)
count = st.slider("Covers per genre", 1, 8, 4, key="compare_count", persist_state="session")
if len(chosen) < 2:
    st.warning("Pick two or more genres to compare.")
else:
    side, _ = genre_grid_html(generator, seed, count, chosen, zoom=3, genres_as_rows=True)
    st.html(side)
