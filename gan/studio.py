"""Shared pieces of the Streamlit app: the checkpoint choice, cached models, real baselines, grids.

The pages call these and lay out the results; the computing lives in the rest of `gan/`. Widgets
that a person sets keep their values for the whole session (`persist_state="session"`), so leaving
a page and coming back finds it as it was.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import streamlit as st
from PIL import Image

from gan.checkpoint import CONFIG_FILE, list_checkpoints
from gan.data.demo import DEMO_GENRES, demo_origin, held_out_covers, held_out_seed
from gan.errors import GanError
from gan.eval.figures import labelled_grid_html
from gan.latent import LatentDirections, blend_grid, principal_directions, seed_rows_grid
from gan.sampling import DEFAULT_CHECKPOINT, CoverGenerator, load_generator
from gan.tags import mix_text, normalise_mix
from gan.train.options import TrainOption, resolve_user_path
from gan.uploads import UPLOAD_PREFIX, discard_upload, save_upload, upload_problems

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUNS_DIR = Path(os.environ.get("COVERGAN_RUNS_DIR", PROJECT_ROOT / "runs"))  # tests point this elsewhere
EXPLORER_PAGE = "app_pages/latent_explorer.py"
CHOICE = "checkpoint"  # the sidebar picker's key, and its query parameter
DEMO, UPLOADED = "demo", "uploaded"
_PENDING, _UPLOADED_PATH, _NOTICE = "checkpoint_pending", "uploaded_checkpoint", "checkpoint_notice"
# However many genres a checkpoint has, a page draws a bounded number at once (a 10,000-genre config
# made the home grid take 3 GB): the first few by default, others by choice.
DEFAULT_GENRES_SHOWN, MAX_GENRES_SHOWN = 8, 16
MAX_MIXED = 3  # genres in one mix on the pages: a mixer of more would be harder to read than to use
T = TypeVar("T")


@dataclass(frozen=True)
class CheckpointOption:
    detail: str  # what the key alone does not say, e.g. which checkpoint of the run is the newest
    path: str  # the checkpoint folder (a run's newest checkpoint at the time of listing)


def checkpoint_options(runs_dir: Path | None = None) -> dict[str, CheckpointOption]:
    """Key -> option: the bundled demo, then each run's newest checkpoint (runs in sweeps included).

    Keys name a run, not a checkpoint, so a choice survives the run writing newer checkpoints.
    """
    runs_dir = RUNS_DIR if runs_dir is None else runs_dir
    found = {}
    if (DEFAULT_CHECKPOINT / CONFIG_FILE).is_file():
        found[DEMO] = CheckpointOption("the bundled checkpoint, trained on demo covers", str(DEFAULT_CHECKPOINT))
    if runs_dir.is_dir():
        folders = [d for d in sorted(runs_dir.iterdir()) if d.is_dir()]
        # A sweep folder holds one run per value.
        folders += [d for f in folders if not (f / CONFIG_FILE).exists() for d in sorted(f.iterdir()) if d.is_dir()]
        for run in sorted(folders):
            checkpoints = list_checkpoints(run)
            if checkpoints:
                key = "runs/" + run.relative_to(runs_dir).as_posix()
                found[key] = CheckpointOption(f"its newest checkpoint, {checkpoints[-1].name}", str(checkpoints[-1]))
    return found


@st.cache_resource(show_spinner="Loading the generator...", max_entries=8)
def cached_generator(path: str) -> CoverGenerator:
    return load_generator(path)


@st.cache_resource(show_spinner="Finding the main directions of variation (PCA)...", max_entries=32)
def cached_directions(path: str, genre: str | None, components: int = 8) -> LatentDirections:
    return principal_directions(cached_generator(path), genre, components)


def choose_checkpoint() -> None:
    """The sidebar's checkpoint picker, drawn once for every page by the app's entry point.

    The choice lives in the session and in the URL (`?checkpoint=runs/NAME`), so it holds on every
    page and a link restores it. Pages read it with `current_generator()`.
    """
    options = checkpoint_options()
    uploaded = st.session_state.get(_UPLOADED_PATH)
    if uploaded:  # last: the first option is the default, which the URL leaves out
        options[UPLOADED] = CheckpointOption("the checkpoint uploaded below", uploaded)
    pending = st.session_state.pop(_PENDING, None)  # set before a rerun: the picker is drawn by then
    if pending in options:
        st.session_state[CHOICE] = pending
    elif st.session_state.get(CHOICE, DEMO) not in options:
        st.session_state.pop(CHOICE, None)  # e.g. its run was deleted
    with st.sidebar:
        st.header("Checkpoint")
        if not options:
            st.error(f"No checkpoint found: {DEFAULT_CHECKPOINT} is missing and {RUNS_DIR} has no runs.")
            st.session_state["checkpoint_path"] = None
            return
        # The keys themselves are shown (and put in the URL): a run's key stays the same as it trains on.
        choice = st.selectbox("Generator", list(options), key=CHOICE, bind="query-params")
        st.caption(options[choice].detail)
        st.session_state["checkpoint_path"] = options[choice].path
        st.session_state["checkpoint_label"] = {DEMO: "demo (bundled)", UPLOADED: UPLOADED}.get(
            choice, f"{choice} ({Path(options[choice].path).name})")
        notice = st.session_state.pop(_NOTICE, None)
        if notice:
            st.success(notice)
        _upload_form()


def _upload_form() -> None:
    with st.expander("Upload a checkpoint"):
        st.caption("Its `config.json` and `generator.safetensors` (as `python -m gan export` writes them). "
                   "Nothing is unpickled.")
        config_file = st.file_uploader("config.json", key="upload_config")
        weights_file = st.file_uploader("generator.safetensors", key="upload_weights")
        problems = upload_problems({"config.json": config_file.name if config_file else None,
                                    "generator.safetensors": weights_file.name if weights_file else None})
        for problem in problems:
            st.error(problem)
        if config_file and weights_file and not problems and st.button("Use this checkpoint", key="upload_use"):
            try:
                folder = save_upload(config_file.getvalue(), weights_file.getvalue())
            except GanError as error:
                st.error(str(error))
                return
            discard_upload(st.session_state.get(_UPLOADED_PATH))
            generator = cached_generator(str(folder))
            st.session_state[_UPLOADED_PATH] = str(folder)
            st.session_state[_PENDING] = UPLOADED
            st.session_state[_NOTICE] = (f"Using the uploaded checkpoint: {len(generator.genres)} genre(s), "
                                         f"{generator.resolution} px.")
            st.rerun()


def current_generator() -> CoverGenerator | None:
    """The generator chosen in the sidebar, with a line saying which; None (and a message) if it fails."""
    path = st.session_state.get("checkpoint_path")
    if not path:
        st.info("Choose a checkpoint in the sidebar.")
        return None
    try:
        generator = cached_generator(path)
    except GanError as error:
        st.error(str(error))
        return None
    st.caption(f"Checkpoint: **{st.session_state.get('checkpoint_label', path)}**")
    return generator


def open_in_explorer(run_dir: Path) -> None:
    """Choose a run's newest checkpoint in the sidebar and go to the Latent explorer."""
    st.session_state[_PENDING] = "runs/" + run_dir.relative_to(RUNS_DIR).as_posix()
    st.switch_page(EXPLORER_PAGE)


def png_bytes(image: np.ndarray, size: int | None = None) -> bytes:
    """PNG bytes of a uint8 (H, W, 3) image, optionally resized (Lanczos)."""
    picture = Image.fromarray(image)
    if size and size != picture.width:
        picture = picture.resize((size, size * picture.height // picture.width), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)  # fast: this runs on every slider move
    return buffer.getvalue()


# --- genres and grids ------------------------------------------------------------------------------


def genre_picker(generator: CoverGenerator, key: str, label: str = "Genres (columns, in this order)",
                 default_count: int = DEFAULT_GENRES_SHOWN, max_count: int = MAX_GENRES_SHOWN,
                 container=st) -> list[str]:
    """Which of a checkpoint's genres a page draws: the first `default_count`, at most `max_count`."""
    if key in st.session_state and any(g not in generator.genres for g in st.session_state[key]):
        del st.session_state[key]  # chosen for another checkpoint
    more = f" (at most {max_count} at once; this checkpoint has {len(generator.genres)})" \
        if len(generator.genres) > max_count else ""
    return container.multiselect(label + more, generator.genres, default=generator.genres[:default_count],
                                 max_selections=max_count, key=key, persist_state="session", wrap=True)


def tag_mixer(generator: CoverGenerator, key: str, label: str, fixed: str | None = None) -> str | None:
    """An expander (open while a mix is picked, also from a link) to pick up to MAX_MIXED genres
    (beside `fixed`, when given) and their weights, all kept in the URL. Returns the mix as text
    `generate` reads (`jazz:0.7,electronic:0.3`), or None while fewer than two genres are picked."""
    others = [g for g in generator.genres if g != fixed]
    chosen_key = f"{key}_genres"
    if chosen_key in st.session_state and any(g not in others for g in st.session_state[chosen_key]):
        st.session_state[chosen_key] = [g for g in st.session_state[chosen_key] if g in others]  # the main genre moved
    picked = st.session_state.get(chosen_key) if chosen_key in st.session_state else st.query_params.get_all(chosen_key)
    container = st.expander(label, expanded=bool(picked))
    room = MAX_MIXED - (fixed is not None)
    chosen = container.multiselect(f"Mix with (up to {room})" if fixed else f"Genres to mix (up to {room})", others,
                                   max_selections=room, key=chosen_key, bind="query-params")
    genres = ([fixed] if fixed else []) + list(chosen)
    if len(genres) < 2:
        return None
    weights = {genre: container.slider(f"Weight of {genre}", 0.1, 1.0, 1.0, 0.05, key=f"{key}_w{i}",
                                       bind="query-params")
               for i, genre in enumerate(genres)}
    return mix_text(normalise_mix(weights, generator.genres))


def genre_grid_html(generator: CoverGenerator, first_seed: int, rows: int, genres: list[str],
                    zoom: float = 2.0, genres_as_rows: bool = False) -> tuple[str, np.ndarray]:
    """A grid of covers (rows: seeds first_seed, first_seed + 1, ...; columns: genres, or the other way
    round) as HTML with the names above their columns and beside their rows, fitted to the page; and
    the grid image."""
    grid = seed_rows_grid(generator, first_seed, rows, genres, genres_as_rows=genres_as_rows)
    seeds = [f"seed {first_seed + k}" for k in range(rows)]
    genre_names = [generator.genre_label(g) for g in genres] if generator.genres else ["unconditional"]
    columns, row_names = (seeds, genre_names) if genres_as_rows else (genre_names, seeds)
    return labelled_grid_html(png_bytes(grid), int(grid.shape[1] * zoom), columns, row_names), grid


def blend_grid_html(generator: CoverGenerator, first_seed: int, rows: int, genre_a: str, genre_b: str, steps: int,
                    zoom: float = 2.0) -> str:
    """Rows of seeds from genre A through their mixes to genre B (`gan.latent.blend_grid`), labelled, as HTML."""
    grid, names = blend_grid(generator, first_seed, rows, genre_a, genre_b, steps)
    return labelled_grid_html(png_bytes(grid), int(grid.shape[1] * zoom), names,
                              [f"seed {first_seed + k}" for k in range(rows)])


# --- real covers to compare with ---------------------------------------------------------------------


@dataclass(frozen=True)
class RealBaseline:
    """Which real covers a page compares generated ones with."""

    kind: str  # "demo" (a held-out draw of the training demo covers), "folder" or "none"
    folder: str = ""
    training_seed: int = 0  # demo: the seed of the training covers, and their size
    size: int = 64

    def describe(self) -> str:
        if self.kind == "demo":
            return (f"real: held-out demo covers (seed {held_out_seed(self.training_seed)}"
                    f", drawn like the training covers of seed {self.training_seed}, which they never include)")
        if self.kind == "folder":
            return f"real: covers from {self.folder}"
        return "generated covers only: no real baseline"


def real_baseline_input(generator: CoverGenerator, prefix: str) -> RealBaseline:
    """The real-cover choice of a form: by default the held-out demo covers for a checkpoint trained on
    demo covers, nothing otherwise; or a folder (or CSV) the user names."""
    origin = demo_origin(generator.info.get("data"))
    labels = {"demo": "held-out demo covers (the default for this checkpoint)", "folder": "a folder or CSV",
              "none": "none"}
    options = ["demo", "folder", "none"] if origin else ["none", "folder"]
    key = f"{prefix}_baseline"
    if st.session_state.get(key, options[0]) not in options:
        del st.session_state[key]  # "demo" chosen for a demo checkpoint, now another one
    kind = st.radio("Real covers to compare with", options, format_func=labels.get, horizontal=True, key=key,
                    persist_state="session")
    folder = st.text_input("Folder or CSV of real covers, one sub-folder (or CSV genre) per genre, "
                           "for 'a folder or CSV'", key=f"{prefix}_real", persist_state="session",
                           placeholder="e.g. data/spotify/manifest.csv").strip()
    if kind == "demo" and origin:
        return RealBaseline("demo", training_seed=origin.seed, size=origin.size)
    return RealBaseline(kind, folder=folder if kind == "folder" else "")


def explain_baseline(generator: CoverGenerator, baseline: RealBaseline) -> None:
    """Say plainly when no real covers are compared with, and how to add them."""
    if baseline.kind != "none":
        return
    if demo_origin(generator.info.get("data")) is None:
        st.info("No real baseline is shown: this checkpoint was not trained on demo covers, so the app cannot "
                "draw real covers like its training data. To compare, choose 'a folder or CSV' and give a "
                "folder with one sub-folder of covers per genre (or a CSV with path,genre).")
    else:
        st.info("Generated covers only: choose 'held-out demo covers' to compare with real ones.")


@st.cache_data(show_spinner="Drawing held-out demo covers...", max_entries=4)
def _held_out(genres: tuple[str, ...], per_genre: int, size: int, training_seed: int, resolution: int):
    return held_out_covers(genres, per_genre, size, training_seed, resolution)


def real_covers(baseline: RealBaseline, resolution: int, genres: list[str], max_per_genre: int,
                seed: int) -> dict[str, np.ndarray] | None:
    """The baseline's covers per genre at the model's resolution (at most `max_per_genre` each)."""
    from gan.data.real import real_images_by_genre

    if baseline.kind == "demo":
        return dict(_held_out(tuple(g for g in genres if g in DEMO_GENRES), max_per_genre, baseline.size,
                              baseline.training_seed, resolution))
    if baseline.kind == "folder":
        if not baseline.folder:
            raise GanError("give the folder (or CSV) of real covers, or choose another baseline")
        real = real_images_by_genre(resolve_user_path(baseline.folder), resolution, max_per_genre, seed)
        return {g: images for g, images in real.items() if g in genres}
    return None


def result_for_settings(state_key: str, settings: tuple, submitted: bool, compute: Callable[..., T]) -> T | None:
    """A form's result: computed (by a cached `compute(*settings)`) once the form was submitted with
    these settings, and kept while they stay the same. A user error is shown, not raised."""
    if submitted:
        st.session_state[state_key] = settings
    if st.session_state.get(state_key) != settings:
        st.info("Choose the settings and press Compute. Results are cached per checkpoint and settings.")
        return None
    try:
        return compute(*settings)
    except GanError as error:
        st.error(str(error))
        return None


def checkpoint_facts(generator: CoverGenerator) -> dict[str, str]:
    """What a person wants to know about a checkpoint, with a long genre list cut short."""
    facts = generator.describe()
    if generator.checkpoint is not None and generator.checkpoint.name.startswith(UPLOAD_PREFIX):
        facts["checkpoint"] = "uploaded (stored in a private temporary folder)"
    genres = generator.genres
    if len(genres) > MAX_GENRES_SHOWN:
        shown = ", ".join(genres[:DEFAULT_GENRES_SHOWN])
        facts["genres"] = f"{len(genres)}: {shown} and {len(genres) - DEFAULT_GENRES_SHOWN} more"
    origin = demo_origin(generator.info.get("data"))
    if origin is not None:
        how = "recorded" if origin.recorded else "inferred from its data path"
        facts["data"] += f" (demo covers of seed {origin.seed}, {origin.size} px; {how})"
    return facts


def option_input(option: TrainOption, container=st):
    """A form widget for a training option, chosen by its type, with the dataclass default and the CLI's
    help; the session keeps what the user set."""
    key = f"train_{option.name}"
    common = dict(key=key, help=option.help or None, persist_state="session")
    if option.choices:
        choices = list(option.choices)
        index = choices.index(option.default) if option.default in choices else 0
        return container.selectbox(option.label, choices, index=index, **common)
    if option.kind is bool:
        return container.checkbox(option.label, bool(option.default), **common)
    if option.kind is int:
        return int(container.number_input(option.label, value=int(option.default), step=1, **common))
    if option.kind is float:
        value = float(option.default)
        step = 10 ** (math.floor(math.log10(abs(value))) - 1) if value else 0.01
        return float(container.number_input(option.label, value=value, step=step, format="%g", **common))
    return container.text_input(option.label, str(option.default), **common)
