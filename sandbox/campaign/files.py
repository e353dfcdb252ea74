"""The sandbox's SFTP area: a local folder that the test sshd serves, with Campaign's import and export folders in it.

Every file name that comes from outside (a signal parameter, a control call) is checked before it touches the disk:
one plain name, no folder part, no `..`, no control characters. Files the sandbox writes appear complete or not at
all: written under `<name>.tmp`, flushed, then renamed (readers skip `.tmp` and `.part` names).
"""

from __future__ import annotations

import gzip
import os
import pathlib
import unicodedata
import zlib

TEMPORARY_SUFFIXES = (".tmp", ".part")
MAX_NAME = 255


class FileProblem(Exception):
    """A file cannot be used; the message names the file (never its content) and says why."""


def check_name(name: str) -> str:
    """`name` if it is one safe file name, else FileProblem."""
    if not isinstance(name, str) or not name:
        raise FileProblem("an empty file name")
    if len(name) > MAX_NAME:
        raise FileProblem(f"a file name longer than {MAX_NAME} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name):
        raise FileProblem(f"the file name {name!r} contains control characters")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise FileProblem(f"the file name {name!r} is not a plain name in the folder")
    if name.endswith(TEMPORARY_SUFFIXES):
        raise FileProblem(f"the file name {name!r} is a temporary name (still being written)")
    return name


def check_folder(folder: str) -> str:
    """A folder relative to the SFTP root, e.g. `d365_loads/imports`."""
    parts = pathlib.PurePosixPath(folder).parts
    if not parts or folder.startswith("/") or any(p in ("..", ".") for p in parts):
        raise ValueError(f"folder {folder!r} must be a relative path inside the SFTP root, without '..'")
    if any(unicodedata.category(ch) == "Cc" for ch in folder):
        raise ValueError(f"folder {folder!r} contains control characters")
    return folder


class SftpArea:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = pathlib.Path(root).resolve()
        if not self.root.is_dir():
            raise ValueError(f"sftp_root {str(self.root)!r} is not a folder")

    def folder(self, relative: str) -> pathlib.Path:
        path = (self.root / check_folder(relative)).resolve()
        if self.root not in (path, *path.parents):
            raise ValueError(f"folder {relative!r} leaves the SFTP root")
        return path

    def read(self, folder: str, name: str) -> bytes:
        """The file's content, gunzipped when its name ends in `.gz`."""
        path = self.folder(folder) / check_name(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise FileProblem(f"'{name}' was not found in {folder}") from None
        except OSError as error:
            raise FileProblem(f"'{name}' in {folder} cannot be read ({error.strerror})") from None
        if name.endswith(".gz"):
            try:
                return gzip.decompress(data)
            except (OSError, EOFError, zlib.error):
                raise FileProblem(f"'{name}' is not a complete gzip file") from None
        return data

    def matching(self, folder: str, prefix: str) -> list[str]:
        """Names in the folder that start with `prefix`, temporary names left out, in name order."""
        path = self.folder(folder)
        if not path.is_dir():
            return []
        return sorted(
            entry.name
            for entry in path.iterdir()
            if entry.is_file() and entry.name.startswith(prefix) and not entry.name.endswith(TEMPORARY_SUFFIXES)
        )

    def write(self, folder: str, name: str, data: bytes) -> pathlib.Path:
        """Write a complete file: `<name>.tmp` first, flushed to disk, then renamed. Refuses to replace a file."""
        target_folder = self.folder(folder)
        target_folder.mkdir(parents=True, exist_ok=True)
        target = target_folder / check_name(name)
        if target.exists():
            raise FileProblem(f"'{name}' already exists in {folder}")
        temporary = target_folder / (name + ".tmp")
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        return target
