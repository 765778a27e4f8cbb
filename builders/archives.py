"""Upstream archives: where they are published, finding them, downloading and verifying them.

An `Archive` is one published file (name, official URL, SHA-256, and the top folder it extracts
to). `locate` returns a readable `Tree` for it:

- with `--data-dir DIR` (`dl_manager.manual_dir`): the archive as published (`DIR/**/<name>`) or
  its extracted tree (`DIR/**/<folder>/` holding the archive's `holds` or `contains` folders), or, where the archive's name is not published, the one
  folder or zip below DIR that holds its `contains` folders; no network;
- otherwise the official URL through the `datasets` DownloadManager (cached between runs).

A published file is checked against its SHA-256: a mismatch is an error naming the file and both
hashes, or a warning with `--no-verify`. Archives are read in place, never extracted, and members
whose path would escape the archive (`..`, absolute paths, symlinks) are refused.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from typing import Callable
from pathlib import Path, PurePosixPath

from .errors import BuildError, check_or_warn, warn


@dataclass(frozen=True)
class Archive:
    name: str  # file name as published, e.g. "training_nuclei.zip"
    url: str  # official direct download URL ("" where none is known)
    sha256: str | None  # as published or recorded by a trusted third party; None where unknown
    folder: str  # the folder the archive extracts to, e.g. "training_nuclei"
    manual: str = ""  # where to download by hand when `url` fails or is unknown
    # Folder names that identify a copy under another name (for archives whose name is not
    # published): with --data-dir, any folder holding all of them, or zip containing them, is taken.
    contains: tuple = ()
    identify: Callable[[Tree], bool] | None = None  # for such a copy: is it this archive (not another version)?
    # Folder names an extracted copy holds (at any depth), where `contains` is not given: a folder of the
    # archive's folder name without them (another source's `images/`, a staged output) is not taken for it.
    holds: tuple = ()


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(tree: "Tree") -> str:
    """Identity of an archive copy: its file's SHA-256, or for an extracted folder a hash of its member
    names and sizes (a copy of another archive's folder has the same)."""
    if not tree.is_dir:
        return tree.sha256 or sha256_of(tree.path)
    listing = "\n".join(f"{name}\t{os.path.getsize(os.path.join(tree.path, name))}" for name in tree.files)
    return "folder:" + hashlib.sha256(listing.encode()).hexdigest()


def same_copies(used: dict) -> str | None:
    """An error message if two archives were built from identical copies ({archive name: (path, fingerprint)}),
    as when one file was copied in under the other's name: their splits or configs would be the same data."""
    first = {}
    for name, (path, mark) in sorted(used.items()):
        if mark in first and first[mark][0] != name:
            other, other_path = first[mark]
            return (f"{path}: identical to {other_path}, but {name} and {other} are different archives "
                    f"(one was probably copied in under the other's name)")
        first.setdefault(mark, (name, path))
    return None


def _safe_member(name: str, container: str) -> str:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and path.parts[0].endswith(":")):
        raise BuildError(f"{container}: member {name!r} has a path outside the archive; refusing to read it")
    return str(path)


def _is_metadata(name: str) -> bool:
    """Archiver/OS metadata such as `__MACOSX/` resource forks, `._x.png` or `.DS_Store`."""
    return any(part == "__MACOSX" or part.startswith(".") for part in name.split("/"))


class Tree:
    """Read-only view of the files of a zip archive or an extracted folder, by relative POSIX path.

    OS metadata entries (`__MACOSX/`, dot files) are not listed.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self.sha256 = None  # of the archive file, set by `locate` (None for an extracted folder)
        self.label = os.path.basename(self.path.rstrip("/")) or self.path
        self._zip = None
        self.is_dir = os.path.isdir(self.path)
        if self.is_dir:
            names = (Path(root, f).relative_to(self.path).as_posix() for root, _, files in os.walk(self.path) for f in files)
        else:
            names = self._open_zip().keys()
        self.files = sorted(n for n in names if not _is_metadata(n))

    def _open_zip(self) -> dict:
        if self._zip is None:
            try:
                archive = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise BuildError(f"{self.label}: not a readable zip archive ({exc})") from exc
            members = {}
            for info in archive.infolist():
                if info.is_dir():
                    continue
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise BuildError(f"{self.label}: member {info.filename!r} is a symbolic link; refusing to read it")
                members[_safe_member(info.filename, self.label)] = info
            self._zip = (archive, members)
        return self._zip[1]

    def read(self, name: str) -> bytes:
        if self.is_dir:
            try:
                with open(os.path.join(self.path, name), "rb") as handle:
                    return handle.read()
            except OSError as exc:
                raise BuildError(f"{os.path.join(self.path, name)}: cannot read ({exc})") from exc
        members = self._open_zip()
        try:
            return self._zip[0].read(members[name])
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError) as exc:  # zlib: corrupt compressed data
            raise BuildError(f"{self.label}: cannot read member {name!r} ({exc})") from exc

    def __getstate__(self):  # picklable for --num-proc: workers reopen the zip
        return {**self.__dict__, "_zip": None}

    def where(self, name: str) -> str:
        return os.path.join(self.path, name) if self.is_dir else f"{self.label}:{name}"


def _search(root: str, name: str, want_dir: bool, holding: tuple = ()) -> str | None:
    """The file, or extracted folder holding all of `holding` at any depth, named `name` below `root`. Of several
    copies, the shallowest (then first in sorted order) if they are identical, else an error listing them: a
    build never picks one of two different copies silently."""
    found = []
    for current, dirs, files in os.walk(root):
        dirs.sort()
        if want_dir and name in dirs and _holds(os.path.join(current, name), holding):
            found.append(os.path.join(current, name))
            dirs.remove(name)  # a copy's own sub-folders are not other copies
        if not want_dir and name in files:
            found.append(os.path.join(current, name))
    if len(found) > 1 and len({fingerprint(Tree(p)) if want_dir else (os.path.getsize(p), sha256_of(p))
                               for p in found}) > 1:
        what = "folders" if want_dir else "files"
        raise BuildError(f"--data-dir {root}: {len(found)} different {what} named {name} ({', '.join(found)}); "
                         f"keep the one to build from")
    found.sort(key=lambda p: p.count(os.sep))  # the shallowest first (stable: sorted order among equals)
    return found[0] if found else None


def _holds(folder: str, names: tuple) -> bool:
    """Whether folders of all these names lie somewhere below `folder` (a same-named folder, such as a
    staged output, is not taken for an extracted archive)."""
    missing = set(names)
    for _, dirs, _ in os.walk(folder):
        missing -= set(dirs)
        if not missing:
            return True
    return not missing


def _zip_holds(path: str, folders: tuple) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            parts = {part for name in archive.namelist() for part in name.replace("\\", "/").split("/")[:-1]}
    except (zipfile.BadZipFile, OSError) as exc:
        warn(f"{path}: not a readable zip archive ({exc}); skipped")
        return False
    return set(folders) <= parts


def _search_contents(root: str, archive: Archive, exclude: set) -> str | None:
    """The one folder or zip below `root` holding all of `archive.contains`, named like no other archive
    and accepted by `archive.identify` (which tells versions of the same layout apart)."""
    found = []
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not _is_metadata(d))
        found += [os.path.join(current, f) for f in sorted(files)
                  if f.lower().endswith(".zip") and f not in exclude and _zip_holds(os.path.join(current, f), archive.contains)]
        if set(archive.contains) <= set(dirs):
            dirs[:] = []  # the copy itself: do not descend into it
            if os.path.basename(current) not in exclude:
                found.append(current)
    if archive.identify:
        found = [path for path in found if archive.identify(Tree(path))]
    if len(found) > 1:
        raise BuildError(
            f"--data-dir {root}: {len(found)} copies could be {archive.name} ({', '.join(found)}); "
            f"rename the right one to '{archive.name}' (or its folder to '{archive.folder}')"
        )
    return found[0] if found else None


def verify_checksum(path: str, archive: Archive) -> str:
    """SHA-256 of `path` against the recorded one; returns the actual hash."""
    actual = sha256_of(path)
    label = archive.name if os.path.basename(path) == archive.name else f"{os.path.basename(path)} (as {archive.name})"
    if archive.sha256 is None:
        warn(f"{label}: no published SHA-256 to check against; sha256 of this copy is {actual}")
    else:
        check_or_warn(
            actual == archive.sha256,
            f"{archive.name}: checksum mismatch: expected sha256 {archive.sha256}, got {actual}",
        )
    return actual


def locate(dl_manager, archive: Archive, exclude: set = frozenset()) -> Tree:
    """A `Tree` over `archive`, from `--data-dir` if given, else downloaded from its official URL.

    `exclude`: file and folder names of the source's other archives, never taken for this one.
    """
    data_dir = getattr(dl_manager, "manual_dir", None)
    if data_dir:
        return _from_data_dir(os.path.abspath(os.path.expanduser(data_dir)), archive, exclude)
    return _download(dl_manager, archive)


def _from_data_dir(data_dir: str, archive: Archive, exclude: set) -> Tree:
    """The archive as published, else its extracted folder, else (archives of unpublished name) the one copy
    holding its `contains` folders."""
    if not os.path.isdir(data_dir):
        raise BuildError(f"--data-dir {data_dir}: no such folder")
    found = (
        _search(data_dir, archive.name, want_dir=False)
        or _search(data_dir, archive.folder, want_dir=True, holding=archive.contains or archive.holds)
        or (_search_contents(data_dir, archive, exclude) if archive.contains else None)
    )
    if not found:
        raise BuildError(
            f"--data-dir {data_dir}: neither {archive.name} nor an extracted {archive.folder}/ folder was found"
            + (f" (nor another folder or zip of it holding {'/, '.join(archive.contains)}/)" if archive.contains else "")
            + (f"; download it from {archive.url or archive.manual}" if (archive.url or archive.manual) else "")
        )
    tree = Tree(found)
    if not tree.is_dir:  # an extracted tree has no published checksum to compare
        tree.sha256 = verify_checksum(found, archive)
    return tree


def _download(dl_manager, archive: Archive) -> Tree:
    """The archive from its official URL (cached by `datasets`), checked; a bad download is not kept."""
    if not archive.url:
        raise BuildError(
            f"{archive.name}: no direct download URL is known. Download it by hand from {archive.manual} "
            f"and pass the folder that holds it with --data-dir"
        )
    try:
        path = dl_manager.download(archive.url)
    except Exception as exc:
        raise BuildError(
            f"{archive.name}: download from {archive.url} failed ({type(exc).__name__}: {exc}). "
            f"Download it by hand from {archive.manual or archive.url} and pass its folder with --data-dir"
        ) from exc
    try:
        actual = verify_checksum(path, archive)
        tree = Tree(path)
    except BuildError as exc:
        os.remove(path)  # never keep a corrupt download in the cache: a re-run fetches it again
        if archive.sha256 is not None:
            raise
        # No checksum to catch it: a guessed URL may answer with a web page instead of the archive.
        raise BuildError(
            f"{archive.name}: the download from {archive.url} is not the archive ({exc}). "
            f"Download it by hand from {archive.manual or archive.url} and pass its folder with --data-dir"
        ) from exc
    tree.sha256 = actual
    return tree
