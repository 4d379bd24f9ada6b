"""A checkpoint uploaded through the app: stored privately, checked, and deleted if it does not load.

Each upload gets its own folder from `tempfile.mkdtemp` (a fresh name only this user can open), and
files are created new, never through a link, so nothing planted in the temporary folder can redirect
a write. Only JSON and safetensors are read, so an upload cannot run code.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from gan.checkpoint import CONFIG_FILE, GENERATOR_FILE
from gan.errors import GanError
from gan.sampling import load_generator

UPLOAD_PREFIX = "covergan-upload-"
EXPECTED = {CONFIG_FILE: ".json", GENERATOR_FILE: ".safetensors"}


def upload_problems(names: dict[str, str | None]) -> list[str]:
    """What is wrong with the chosen files' names: expected file -> the name the user picked (or None)."""
    problems = []
    for expected, name in names.items():
        if name is not None and not name.lower().endswith(EXPECTED[expected]):
            problems.append(f"{name} is not a {EXPECTED[expected]} file: choose the checkpoint's {expected}")
    return problems


def _write_new_file(path: Path, data: bytes) -> None:
    # O_EXCL: fail rather than reuse a file already there; O_NOFOLLOW: never write through a link.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def save_upload(config_bytes: bytes, weights_bytes: bytes) -> Path:
    """Store an uploaded checkpoint (config.json + generator.safetensors) in a private folder and check
    that it loads; a rejected upload leaves nothing behind. Returns the folder."""
    try:
        json.loads(config_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise GanError("the uploaded config.json is not valid JSON") from None
    folder = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX))
    try:
        _write_new_file(folder / CONFIG_FILE, config_bytes)
        _write_new_file(folder / GENERATOR_FILE, weights_bytes)
        load_generator(folder)  # raises GanError with the reason if it does not load
    except GanError as error:
        shutil.rmtree(folder, ignore_errors=True)
        # The folder's name means nothing to the user: name the uploaded file instead.
        raise GanError(str(error).replace(f"{folder}{os.sep}", "uploaded ").replace(str(folder), "the upload")) \
            from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def discard_upload(folder: str | os.PathLike | None) -> None:
    """Delete an upload folder this module made (and nothing else)."""
    if folder is None:
        return
    folder = Path(folder)
    if folder.parent == Path(tempfile.gettempdir()) and folder.name.startswith(UPLOAD_PREFIX) \
            and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)
