"""Atomic writes: a reader, or the next run after a crash or `kill -9`, sees the old or the new, never half.

A file is written under a hidden temporary name, flushed to disk and renamed over its final name.
A folder is written whole under `.tmp-NAME-PID` and then renamed into place; replacing a folder
takes two renames (the old one aside to `.old-NAME-PID`, the new one in), so a crash between them
leaves the old one under its hidden name: `recover_interrupted_writes` puts it back and deletes
the temporaries. A folder is deleted by renaming it to `.trash-NAME-PID` first, so a crash while
deleting never leaves a half-deleted folder under its real name.

Every temporary name starts with a dot, so listings of checkpoints and runs skip them.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

log = logging.getLogger(__name__)
TMP, OLD, TRASH = ".tmp-", ".old-", ".trash-"
# safetensors creates its files readable by their owner only (0600); ours get the mode any new file
# gets (0644 under the usual umask), so a checkpoint can be shared like the JSON beside it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


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


def write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Write a CSV (a header, then one row per dict) atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomically(path, buffer.getvalue().encode("utf-8"))


def _fsync_tree(folder: Path) -> None:
    for file in folder.iterdir():
        with open(file, "rb") as f:
            os.fsync(f.fileno())


def write_folder_atomically(final: Path, files: dict[str, Any], keep_other_files: bool = False) -> None:
    """Write a folder of files (dict name -> tensors dict or JSON-able object) and rename it into place.

    With `keep_other_files`, what a folder already at `final` holds besides `files` (a README, say)
    is copied into the new one.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{TMP}{final.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    if keep_other_files and final.is_dir():
        for entry in sorted(set(os.listdir(final)) - set(files)):
            source = final / entry
            if source.is_dir() and not source.is_symlink():
                shutil.copytree(source, tmp / entry, symlinks=True)
            else:
                shutil.copy2(source, tmp / entry, follow_symlinks=False)
    for name, content in files.items():
        if name.endswith(".safetensors"):
            save_file({k: v.detach().contiguous().cpu() for k, v in content.items()}, str(tmp / name))
            os.chmod(tmp / name, 0o666 & ~_UMASK)
        else:
            with open(tmp / name, "w", encoding="utf-8") as f:
                json.dump(content, f, indent=2)
                f.write("\n")
    _fsync_tree(tmp)
    rename_folder_into_place(tmp, final)


def rename_folder_into_place(tmp: Path, final: Path) -> None:
    """Rename a finished folder to its final name, replacing (swap, then delete) one already there.

    A crash between the two renames leaves the old folder as `.old-NAME-PID` beside the new one's
    temporary: `recover_interrupted_writes` renames it back.
    """
    if final.exists():
        old = final.with_name(f"{OLD}{final.name}-{os.getpid()}")
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old)
    else:
        os.rename(tmp, final)


def remove_folder(folder: Path) -> None:
    """Delete a folder so that a crash part-way leaves it whole or hidden, never half-deleted in place."""
    trash = folder.with_name(f"{TRASH}{folder.name}-{os.getpid()}")
    os.rename(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _hidden_name(entry: str, prefix: str) -> str | None:
    """`.old-finetune-0000006-1234` -> `finetune-0000006` (for prefix `.old-`), else None."""
    if not entry.startswith(prefix):
        return None
    name, _, pid = entry[len(prefix):].rpartition("-")
    return name if name and pid.isdigit() else None


def recover_interrupted_writes(folder: Path) -> list[str]:
    """Undo what a crash in the middle of a write left in `folder`; return what was done, for the log.

    An old folder set aside for a replacement that never finished goes back under its name;
    temporaries (of files and folders) and folders being deleted are removed. Call it only where
    no other process writes at the same time (a run folder under its lock).
    """
    if not folder.is_dir():
        return []
    done = []
    for entry in sorted(os.listdir(folder)):
        path = folder / entry
        old_name = _hidden_name(entry, OLD)
        if old_name is not None and path.is_dir():
            if (folder / old_name).exists():  # the new folder made it into place: the old one is spare
                shutil.rmtree(path, ignore_errors=True)
                done.append(f"removed {path}")
            else:
                os.rename(path, folder / old_name)
                done.append(f"restored {folder / old_name} from an interrupted replacement")
        elif _hidden_name(entry, TRASH) is not None or (entry.startswith(".") and TMP in entry):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            done.append(f"removed {path}")
    return done
