"""Latent explorer: move one cover along its main directions of variation, truncate, interpolate."""

import streamlit as st

from gan.latent import edit_noise, genre_interpolation, seed_interpolation
from gan.studio import cached_directions, cached_generator, choose_checkpoint, png_bytes

st.set_page_config(page_title="Latent explorer · CoverGAN Studio", layout="wide")
st.title("Latent explorer")
generator = choose_checkpoint()
if generator is None:
    st.stop()

COMPONENTS, COORDINATES = 8, 4
params = st.query_params


def initial(key: str, default, cast=float):
    """A widget's first value comes from the URL, so a shared link restores the view."""
    if key in st.session_state:
        return st.session_state[key]
    try:
        return cast(params[key]) if key in params else default
    except ValueError:
        return default


genres = generator.genres or ["(unconditional)"]
wanted_genre = initial("genre", genres[0], str)
left, right = st.columns([2, 3])
with left:
    genre = st.selectbox("Genre", genres, index=genres.index(wanted_genre) if wanted_genre in genres else 0, key="genre")
    seed = st.number_input("Seed", 0, 2**31 - 1, int(initial("seed", 0, int)), key="seed")
    psi = st.slider("Truncation ψ (lower: more typical, less varied)", 0.0, 1.5, float(initial("psi", 1.0)), 0.05,
                    key="psi")
    st.markdown("**Principal directions** (GANSpace: PCA of the first layer, mapped back to noise)")
    conditional_genre = genre if generator.genres else None
    directions = cached_directions(st.session_state["checkpoint_path"], conditional_genre, COMPONENTS)
    steps = [st.slider(f"Direction {k + 1} ({directions.explained_variance_ratio[k]:.0%} of variance)", -3.0, 3.0,
                       float(initial(f"pc{k}", 0.0)), 0.1, key=f"pc{k}") for k in range(len(directions.scales))]
    with st.expander("Raw noise coordinates"):
        offsets = {k: st.slider(f"z[{k}] offset", -3.0, 3.0, float(initial(f"z{k}", 0.0)), 0.1, key=f"z{k}")
                   for k in range(min(COORDINATES, generator.latent_dim))}

noise = edit_noise(generator.sample_noise(1, int(seed)), directions, steps, offsets, psi)
image = generator.generate(noise, conditional_genre)[0]
with right:
    # The browser scales the small PNG up; the 512 px file is only made when the button is pressed.
    st.image(png_bytes(image), caption=f"{genre}, seed {seed}", width=512, output_format="PNG")
    st.download_button("Download PNG (512 px)", lambda: png_bytes(image, 512), file_name=f"cover-{genre}-{seed}.png",
                       mime="image/png")

st.query_params.from_dict({
    "checkpoint": st.session_state["checkpoint_path"], "genre": genre, "seed": str(seed), "psi": f"{psi:g}",
    **{f"pc{k}": f"{v:g}" for k, v in enumerate(steps) if v},
    **{f"z{k}": f"{v:g}" for k, v in offsets.items() if v},
})

st.subheader("Interpolation")


@st.cache_data(show_spinner=False, max_entries=64)
def interpolation(checkpoint: str, mode: str, genre, seed: int, other, positions: tuple[float, ...]):
    # Cached: moving the sliders above re-runs the page but leaves this strip as it was.
    g = cached_generator(checkpoint)
    if mode == "seeds":
        return seed_interpolation(g, genre, seed, other, list(positions))
    return genre_interpolation(g, seed, genre, other, list(positions))


mode_options = ["between two seeds"] + (["between two genres"] if len(generator.genres) > 1 else [])
mode = st.radio("Interpolate", mode_options, horizontal=True, key="interp_mode")
t = st.slider("Position t", 0.0, 1.0, 0.5, 0.05, key="interp_t")
frames = tuple(round(k / 6, 4) for k in range(7))
checkpoint = st.session_state["checkpoint_path"]
if mode == "between two seeds":
    other = int(st.number_input("Second seed", 0, 2**31 - 1, int(seed) + 1, key="other_seed"))
    kind, first = "seeds", conditional_genre
else:
    other = st.selectbox("Second genre", [g for g in generator.genres if g != genre], key="other_genre")
    kind, first = "genres", genre
strip = interpolation(checkpoint, kind, first, int(seed), other, frames)
single = interpolation(checkpoint, kind, first, int(seed), other, (t,))[0]
st.image([png_bytes(f) for f in strip], width=128, caption=[f"t={p:.2f}" for p in frames], output_format="PNG")
st.image(png_bytes(single), caption=f"t = {t:.2f}", width=256, output_format="PNG")
