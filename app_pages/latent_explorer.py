"""Latent explorer: move one cover along its main directions of variation, truncate, interpolate.

Every control is bound to the URL's query parameters, so a link restores the view.
"""

import streamlit as st

from gan.latent import LatentEdit, direction_previews, genre_interpolation, noise_interpolation
from gan.studio import cached_directions, cached_generator, current_generator, png_bytes, tag_mixer

st.title("Latent explorer")
generator = current_generator()
if generator is None:
    st.stop()

COMPONENTS, COORDINATES, PREVIEW_STEP = 8, 4, 2.0
checkpoint = st.session_state["checkpoint_path"]
genres = generator.genres or ["(unconditional)"]
edit_keys = {"psi": 1.0, **{f"pc{k}": 0.0 for k in range(COMPONENTS)}, **{f"z{k}": 0.0 for k in range(COORDINATES)}}


def reset_edits():
    for key, value in edit_keys.items():
        st.session_state[key] = value


left, right = st.columns([1, 1], gap="large")
with left:
    genre = st.selectbox("Genre", genres, key="genre", bind="query-params")
    mix = tag_mixer(generator, "mix", "Mix in other genres", fixed=genre) if len(generator.genres) > 1 else None
    seed = int(st.number_input("Seed", 0, 2**31 - 1, 0, key="seed", bind="query-params"))
    psi = st.slider("Truncation ψ (lower: more typical, less varied)", 0.0, 1.5, 1.0, 0.05, key="psi",
                    bind="query-params")
    st.markdown("**Principal directions** (GANSpace: PCA of the first layer, mapped back to noise). "
                f"Beside each: the cover {PREVIEW_STEP:g} steps down and up that direction.")
    main_genre = genre if generator.genres else None
    # The cover's genre, or its mix; the principal directions are its main genre's.
    conditional_genre = mix or main_genre
    directions = cached_directions(checkpoint, main_genre, COMPONENTS)
    steps, previews = [], []
    for k in range(len(directions.scales)):
        minus, slider, plus = st.columns([1, 5, 1], vertical_alignment="center")
        steps.append(slider.slider(f"Direction {k + 1} ({directions.explained_variance_ratio[k]:.0%} of variance)",
                                   -3.0, 3.0, 0.0, 0.1, key=f"pc{k}", bind="query-params"))
        previews.append((minus.empty(), plus.empty()))
    with st.expander("Raw noise coordinates"):
        offsets = {k: st.slider(f"z[{k}] offset", -3.0, 3.0, 0.0, 0.1, key=f"z{k}", bind="query-params")
                   for k in range(min(COORDINATES, generator.latent_dim))}

edit = LatentEdit(seed, float(psi), tuple(float(s) for s in steps), tuple(offsets.items()))
image = generator.generate(edit.noise(generator, directions), conditional_genre)[0]
for (minus, plus), pair in zip(previews, direction_previews(generator, edit, directions, conditional_genre,
                                                            PREVIEW_STEP)):
    minus.image(png_bytes(pair[0]), width=64, output_format="PNG")
    plus.image(png_bytes(pair[1]), width=64, output_format="PNG")
with right:
    # The browser scales the small PNG up; the 512 px file is only made when the button is pressed.
    label = generator.genre_label(conditional_genre) if conditional_genre else None
    st.image(png_bytes(image), caption=edit.describe(label), width="stretch", output_format="PNG")
    with st.container(horizontal=True):
        st.download_button("Download PNG (512 px)", lambda: png_bytes(image, 512),
                           file_name=edit.file_name(label), mime="image/png")
        st.button("Reset", on_click=reset_edits, key="reset",
                  help="Back to the seed's own cover: ψ 1, every direction and coordinate at 0 (genre and seed stay)")

st.subheader("Interpolation")
st.caption("From the cover above (t = 0, with its edits) to another seed with the same edits, or to another genre.")


@st.cache_data(show_spinner=False, max_entries=64)
def interpolation(checkpoint: str, mode: str, genre, main_genre, edit: LatentEdit, other,
                  positions: tuple[float, ...]):
    # Cached: a strip is recomputed only when what it shows changes.
    g = cached_generator(checkpoint)
    found = cached_directions(checkpoint, main_genre, COMPONENTS)
    start = edit.noise(g, found)
    if mode == "seeds":
        return noise_interpolation(g, genre, start, edit.noise(g, found, seed=other), list(positions))
    return genre_interpolation(g, start, genre, other, list(positions))


controls = st.columns(3)
# Options shown as they are: a bound widget puts what it shows into the URL.
mode = controls[0].radio("Interpolate between two", ["seeds", "genres"] if len(generator.genres) > 1 else ["seeds"],
                         horizontal=True, key="interp_mode", bind="query-params")
t = controls[1].slider("Position t", 0.0, 1.0, 0.5, 0.05, key="interp_t", bind="query-params")
if mode == "seeds":
    other = int(controls[2].number_input("Second seed", 0, 2**31 - 1, seed + 1, key="other_seed",
                                         bind="query-params"))
else:
    other = controls[2].selectbox("Second genre", [g for g in generator.genres if g != genre], key="other_genre",
                                  bind="query-params")
frames = tuple(round(k / 6, 4) for k in range(7))
strip = interpolation(checkpoint, mode, conditional_genre, main_genre, edit, other, frames)
single = interpolation(checkpoint, mode, conditional_genre, main_genre, edit, other, (t,))[0]
st.image([png_bytes(f) for f in strip], width=128, caption=[f"t={p:.2f}" for p in frames], output_format="PNG")
st.image(png_bytes(single), caption=f"t = {t:.2f}", width=256, output_format="PNG")
