"""Genre grid: the same noise across every genre (and a mix of genres), a blend from one genre to
another, and chosen genres side by side. The mix and the blend are kept in the URL."""

import streamlit as st

from gan.studio import blend_grid_html, current_generator, genre_grid_html, genre_picker, png_bytes, tag_mixer

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
mix = tag_mixer(generator, "grid_mix", "Mix genres into one more column") if len(generator.genres) > 1 else None
columns = genres + ([mix] if mix else [])
if not columns:
    st.error("Choose at least one genre.")
    st.stop()
page, grid = genre_grid_html(generator, seed, rows, columns, zoom)
st.html(page)
st.caption("Each row is one noise vector, the cover the Latent explorer shows for that seed; each column a genre "
           "(or the mix).")
st.download_button("Download the grid (PNG)", lambda: png_bytes(grid, grid.shape[1] * zoom),
                   file_name=f"genre-grid-seed{seed}-{rows}x{len(columns)}.png", mime="image/png")

if len(generator.genres) > 1:
    st.subheader("Blend")
    st.caption("The same noise from one genre to another through their mixes: the weighted mean of the two "
               "genres' embeddings (a model trained with --tag-sets has seen covers of two genres; otherwise a mix "
               "is a guess between them).")
    picks = st.columns(3)
    start = picks[0].selectbox("From", generator.genres, key="blend_from", bind="query-params")
    end = picks[1].selectbox("To", [g for g in generator.genres if g != start], key="blend_to", bind="query-params")
    steps = picks[2].slider("Steps", 3, 9, 5, key="blend_steps", bind="query-params")
    st.html(blend_grid_html(generator, seed, min(rows, 3), start, end, steps, zoom))

st.subheader("Side by side")
chosen = genre_picker(generator, "compare_genres", "Compare genres", default_count=2, max_count=6)
count = st.slider("Covers per genre", 1, 8, 4, key="compare_count", persist_state="session")
if len(chosen) < 2:
    st.warning("Pick two or more genres to compare.")
else:
    side, _ = genre_grid_html(generator, seed, count, chosen, zoom=3, genres_as_rows=True)
    st.html(side)
