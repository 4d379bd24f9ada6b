"""Shared pieces of the Streamlit app: checkpoint choice, cached models, image helpers.

The pages call these and lay out the results; the computing lives in the rest of `gan/`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import streamlit as st
from PIL import Image

from gan.checkpoint import CONFIG_FILE, GENERATOR_FILE, list_checkpoints
from gan.errors import GanError
from gan.latent import LatentDirections, principal_directions
from gan.sampling import DEFAULT_CHECKPOINT, CoverGenerator, load_generator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUNS_DIR = Path(os.environ.get("COVERGAN_RUNS_DIR", PROJECT_ROOT / "runs"))  # tests point this elsewhere
UPLOADS_DIR = Path(tempfile.gettempdir()) / "covergan-uploads"
T = TypeVar("T")


def available_checkpoints(runs_dir: Path = RUNS_DIR) -> dict[str, str]:
    """Label -> checkpoint folder: the bundled demo, then each run's newest checkpoint."""
    found = {}
    if (DEFAULT_CHECKPOINT / CONFIG_FILE).is_file():
        found["demo (bundled)"] = str(DEFAULT_CHECKPOINT)
    if runs_dir.is_dir():
        for run in sorted(runs_dir.iterdir()):
            checkpoints = list_checkpoints(run) if run.is_dir() else []
            if checkpoints:
                found[f"runs/{run.name} ({checkpoints[-1].name})"] = str(checkpoints[-1])
    return found


def save_upload(config_bytes: bytes, weights_bytes: bytes) -> Path:
    """Store an uploaded checkpoint (config.json + generator.safetensors) and check that it loads.

    Only JSON and safetensors are accepted, so an upload cannot run code.
    """
    try:
        json.loads(config_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise GanError("the uploaded config.json is not valid JSON") from None
    digest = hashlib.sha256(config_bytes + weights_bytes).hexdigest()[:16]
    folder = UPLOADS_DIR / digest
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_bytes(config_bytes)
    (folder / GENERATOR_FILE).write_bytes(weights_bytes)
    load_generator(folder)  # raises GanError with the reason if it does not load
    return folder


@st.cache_resource(show_spinner="Loading the generator...")
def cached_generator(path: str) -> CoverGenerator:
    return load_generator(path)


@st.cache_resource(show_spinner="Finding the main directions of variation (PCA)...")
def cached_directions(path: str, genre: str | None, components: int = 8) -> LatentDirections:
    return principal_directions(cached_generator(path), genre, components)


def choose_checkpoint() -> CoverGenerator | None:
    """The sidebar checkpoint picker shared by every page; shows an error and returns None on failure."""
    options = available_checkpoints()
    with st.sidebar:
        st.header("Checkpoint")
        uploaded_path = st.session_state.get("uploaded_checkpoint")
        if uploaded_path:
            options = {"uploaded": uploaded_path, **options}
        if not options:
            st.error(f"No checkpoint found: {DEFAULT_CHECKPOINT} is missing and runs/ has none.")
            return None
        wanted = st.query_params.get("checkpoint")
        labels = list(options)
        index = next((k for k, label in enumerate(labels) if options[label] == wanted), 0)
        label = st.selectbox("Generator", labels, index=index, key="checkpoint_label")
        with st.expander("Upload a checkpoint"):
            config_file = st.file_uploader("config.json", type=["json"], key="upload_config")
            weights_file = st.file_uploader("generator.safetensors", type=["safetensors"], key="upload_weights")
            if config_file and weights_file and st.button("Use this checkpoint"):
                try:
                    st.session_state["uploaded_checkpoint"] = str(save_upload(config_file.getvalue(),
                                                                              weights_file.getvalue()))
                    st.rerun()
                except GanError as error:
                    st.error(str(error))
    path = options[label]
    st.session_state["checkpoint_path"] = path
    try:
        return cached_generator(path)
    except GanError as error:
        st.error(str(error))
        return None


def png_bytes(image: np.ndarray, size: int | None = None) -> bytes:
    """PNG bytes of a uint8 (H, W, 3) image, optionally resized (Lanczos)."""
    picture = Image.fromarray(image)
    if size and size != picture.width:
        picture = picture.resize((size, size * picture.height // picture.width), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)  # fast: this runs on every slider move
    return buffer.getvalue()


DEMO_REAL_DIR = PROJECT_ROOT / "demo-data" / "labelled"


def real_data_input(key: str) -> str:
    """A text box for a folder (or CSV) of real covers by genre; empty means generated only."""
    default = str(DEMO_REAL_DIR.relative_to(PROJECT_ROOT)) if DEMO_REAL_DIR.is_dir() else ""
    return st.text_input("Real covers to compare with (a folder with one sub-folder per genre, or a CSV; "
                         "empty: generated only)", default, key=key).strip()


def resolve_user_path(text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


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
