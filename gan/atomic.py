"""Atomic writes: a reader, or the next run after a crash or `kill -9`, sees the old or the new, never half.

A file is written under a hidden temporary name, flushed to disk and renamed over its final name;
a folder is written whole under a hidden temporary name and then renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from safetensors.torch import save_file


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write a file atomically (temporary file, fsync, rename): readers see the old or the new."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""
    write_bytes_atomically(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def _fsync_tree(folder: Path) -> None:
    for file in folder.iterdir():
        with open(file, "rb") as f:
            os.fsync(f.fileno())


def write_folder_atomically(final: Path, files: dict[str, Any]) -> None:
    """Write a folder of files (dict name -> tensors dict or JSON-able object) and rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".tmp-{final.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, content in files.items():
        if name.endswith(".safetensors"):
            save_file({k: v.detach().contiguous().cpu() for k, v in content.items()}, str(tmp / name))
        else:
            with open(tmp / name, "w", encoding="utf-8") as f:
                json.dump(content, f, indent=2)
                f.write("\n")
    _fsync_tree(tmp)
    rename_folder_into_place(tmp, final)


def rename_folder_into_place(tmp: Path, final: Path) -> None:
    """Rename a finished folder to its final name, replacing (swap, then delete) one already there."""
    if final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old)
    else:
        os.rename(tmp, final)
