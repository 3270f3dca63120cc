"""Building a ``tangrnn-corpus/1`` file from chinese-poetry data or plain text.

:func:`build_corpus` accepts

* a chinese-poetry checkout, its ``dist/`` folder, or an extracted npm ``package/`` folder;
* the npm tarball itself (``chinese-poetry-2.0.1.tgz``), read member by member with :mod:`tarfile`
  (nothing is extracted to disk);
* a single chinese-poetry JSON file (a JSON array of poems; no strains), a ``.txt`` file with one poem per
  line, or an existing ``.jsonl``/``.jsonl.xz`` corpus (re-encoded).

From a folder or tarball it takes every ``poet.tang.<N>.json`` directly inside a ``quantangshi/`` folder
(``全唐诗/`` in newer checkouts) in numeric order of ``N``, each file's poems in their own order, and joins
strains by poem id from ``strains/json/poet.tang.<N>.json`` beside that folder, keeping them only where
they align (:func:`~tangrnn_core.data.corpus.strains_align`). ``quantangshi/error/`` and the Song files are
ignored. The output is written atomically together with ``<stem>.provenance.json``; the same source always
gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import re
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tangrnn_core.data.corpus import (
    FORMAT,
    RawPoem,
    bundled_corpus_path,
    encode_jsonl,
    poem_from_object,
    provenance_path,
    read_corpus,
    strains_align,
)
from tangrnn_core.errors import CorpusError

__all__ = ["build_corpus", "XZ_PRESET"]

#: Compression used for ``.xz`` outputs: the smallest file xz can make.
XZ_PRESET = 9 | lzma.PRESET_EXTREME

_POEM_FILE = re.compile(r"poet\.tang\.(\d+)\.json")
_POEM_DIRS = ("quantangshi", "全唐诗")
_META_FILES = ("package.json", "LICENSE", "LICENSE.txt", "LICENSE.md")
_TAR_SUFFIXES = (".tgz", ".tar.gz", ".tar", ".tar.xz", ".txz", ".tar.bz2")
_SOURCE_HINT = (
    "pass a chinese-poetry checkout, its dist/ folder, an extracted npm package/ folder, "
    "the chinese-poetry-2.0.1.tgz tarball, a chinese-poetry JSON file or a .txt file with one poem per line"
)


@dataclass
class _Collected:
    """What a source yielded: the poems plus what is known about where they came from."""

    poems: list[RawPoem]
    source: dict[str, Any]
    license: dict[str, Any] | None = None
    extra_counts: dict[str, int] = field(default_factory=dict)


def build_corpus(source: str | os.PathLike[str], output: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Build a corpus file from ``source`` and write it to ``output`` (default: the bundled location).

    ``output`` ending in ``.jsonl.xz`` is xz-compressed (preset 9 | extreme), ``.jsonl`` is written plain.
    Writes ``<stem>.provenance.json`` beside it and returns the same provenance record as a dict.
    Raises :class:`CorpusError` when the source is missing, holds no Tang poems, holds malformed JSON,
    or the output cannot be written; an existing output is then left as it was.
    """
    source = Path(source)
    output = bundled_corpus_path() if output is None else Path(output)
    compress = _check_output(output)
    if not source.exists():
        raise CorpusError(f"source {source} does not exist; {_SOURCE_HINT}")

    if source.is_dir():
        collected = _collect_tree(_FolderTree(source), kind="folder")
    elif source.name.lower().endswith(_TAR_SUFFIXES):
        collected = _collect_tarball(source)
    else:
        collected = _collect_file(source)
    poems = collected.poems
    if not poems:
        raise CorpusError(f"source {source} holds no poems; {_SOURCE_HINT}")

    data = encode_jsonl(poems)
    if compress:
        data = lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=XZ_PRESET)

    with_strains = sum(1 for p in poems if p.strains is not None)
    counts = {
        "poems": len(poems),
        "poems_with_strains": with_strains,
        "characters": sum(len(line) for p in poems for line in p.paragraphs),
        "poems_without_paragraphs": sum(1 for p in poems if not p.paragraphs),
        "duplicate_ids": len(poems) - len({p.id for p in poems}),
    }
    counts.update(collected.extra_counts)
    provenance: dict[str, Any] = {
        "format": FORMAT,
        "file": output.name,
        "compression": "xz" if compress else None,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "source": collected.source,
        "license": collected.license,
        "counts": counts,
        "kept": (
            "id, title, author and paragraphs exactly as published (traditional characters, punctuation "
            "and editorial marks untouched); strains only where they align with the paragraphs "
            "(same number of lines, each line the same length); other fields dropped"
        ),
    }
    prov_bytes = (json.dumps(provenance, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    _write_atomically([(output, data), (provenance_path(output), prov_bytes)])
    return provenance


def _check_output(output: Path) -> bool:
    """Validate the output name; return whether it is to be xz-compressed."""
    name = output.name.lower()
    if output.is_dir():
        raise CorpusError(f"output {output} is a folder; pass a file name ending in .jsonl.xz or .jsonl")
    if name.endswith(".jsonl.xz"):
        return True
    if name.endswith(".jsonl"):
        return False
    raise CorpusError(f"output {output} must end in .jsonl.xz (xz-compressed) or .jsonl (plain); rename it")


# ---------------------------------------------------------------------------------------------- sources


class _Tree:
    """A read-only view of a folder or tarball: relative POSIX paths and a way to read them."""

    name: str
    files: dict[PurePosixPath, Callable[[], bytes]]


class _FolderTree(_Tree):
    def __init__(self, root: Path):
        self.name = str(root)
        self.files = {}
        # A dist/ folder's package.json and LICENSE sit one level up, in the package/ folder.
        base = root
        if root.name == "dist" and (root.parent / "package.json").is_file():
            base = root.parent
            for name in _META_FILES:
                if (base / name).is_file():
                    self.files[PurePosixPath(name)] = (base / name).read_bytes
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            rel_folder = PurePosixPath(Path(folder).relative_to(base).as_posix())
            for name in names:
                rel = rel_folder / name
                if _wanted(rel):
                    full = Path(folder) / name
                    self.files[rel] = full.read_bytes


class _TarTree(_Tree):
    def __init__(self, path: Path):
        self.name = str(path)
        self.files = {}
        try:
            with tarfile.open(path, mode="r:*") as archive:
                for member in archive:
                    if not member.isfile():
                        continue
                    rel = PurePosixPath(member.name.lstrip("/"))
                    if rel.parts and rel.parts[0] == ".":
                        rel = PurePosixPath(*rel.parts[1:])
                    if not _wanted(rel):
                        continue
                    handle = archive.extractfile(member)
                    data = handle.read() if handle is not None else b""
                    self.files[rel] = lambda d=data: d
        except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, ValueError) as exc:
            raise CorpusError(
                f"source {path} is not a readable tar archive ({_one_line(exc)}); re-download it "
                f"(npm pack chinese-poetry@2.0.1) or pass the extracted folder"
            ) from None


def _wanted(rel: PurePosixPath) -> bool:
    """Whether a file could matter: a Tang poem or strains file, or package metadata."""
    if _POEM_FILE.fullmatch(rel.name):
        return _is_poem_file(rel) or _is_strains_file(rel)
    return rel.name in _META_FILES


def _is_poem_file(rel: PurePosixPath) -> bool:
    return bool(_POEM_FILE.fullmatch(rel.name)) and rel.parent.name in _POEM_DIRS


def _is_strains_file(rel: PurePosixPath) -> bool:
    return bool(_POEM_FILE.fullmatch(rel.name)) and rel.parent.name == "json" and rel.parent.parent.name == "strains"


def _numeric_order(rel: PurePosixPath) -> int:
    match = _POEM_FILE.fullmatch(rel.name)
    assert match is not None
    return int(match.group(1))


def _collect_tarball(path: Path) -> _Collected:
    return _collect_tree(_TarTree(path), kind="npm tarball")


def _collect_tree(tree: _Tree, kind: str) -> _Collected:
    poem_files = [rel for rel in tree.files if _is_poem_file(rel)]
    folders = sorted({str(rel.parent) for rel in poem_files})
    if not folders:
        raise CorpusError(
            f"no poet.tang.*.json files inside a quantangshi/ folder were found in {tree.name}; {_SOURCE_HINT}"
        )
    if len(folders) > 1:
        raise CorpusError(
            f"{tree.name} holds more than one set of Tang poem files ({', '.join(folders)}); "
            f"pass the folder of just one of them"
        )
    poem_dir = PurePosixPath(folders[0])
    poem_files.sort(key=_numeric_order)
    strains_dir = poem_dir.parent / "strains" / "json"
    strain_files = sorted(
        (rel for rel in tree.files if _is_strains_file(rel) and rel.parent == strains_dir), key=_numeric_order
    )

    strains_by_id: dict[str, list[str]] = {}
    for rel in strain_files:
        for index, item in enumerate(_load_json_list(tree, rel)):
            where = f"{tree.name}: {rel} item {index}"
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or "strains" not in item:
                raise CorpusError(f"{where} is not an object with 'id' and 'strains'; re-download the source")
            strains = item["strains"]
            if not isinstance(strains, list) or not all(isinstance(s, str) for s in strains):
                raise CorpusError(f"{where}: 'strains' is not a list of strings; re-download the source")
            strains_by_id.setdefault(item["id"], strains)

    poems: list[RawPoem] = []
    dropped_strains = 0
    for rel in poem_files:
        for index, item in enumerate(_load_json_list(tree, rel)):
            poem = poem_from_object(item, f"{tree.name}: {rel} item {index}", "re-download the source")
            strains = strains_by_id.get(poem.id)
            if strains_align(poem.paragraphs, strains):
                poem = RawPoem(poem.id, poem.title, poem.author, poem.paragraphs, tuple(strains))
            elif strains is not None:
                dropped_strains += 1
            poems.append(poem)

    package = _package_json(tree, poem_dir)
    license_info = _license(tree, poem_dir, package)
    name = package.get("name") if isinstance(package.get("name"), str) else "chinese-poetry"
    version = package.get("version") if isinstance(package.get("version"), str) else None
    if package and version:
        description = f"{name} {version}, npm package {name}@{version}"
    else:
        description = f"{name} (version unknown), {kind} {Path(tree.name).name}"
    source = {
        "name": name,
        "version": version,
        "kind": kind,
        "file": Path(tree.name).name,
        "description": description,
        "poem_folder": str(poem_dir),
        "poem_files": len(poem_files),
        "strain_files": len(strain_files),
    }
    return _Collected(poems, source, license_info, {"misaligned_strains_dropped": dropped_strains})


def _load_json_list(tree: _Tree, rel: PurePosixPath) -> list[Any]:
    try:
        raw = tree.files[rel]()
    except OSError as exc:
        raise CorpusError(f"cannot read {tree.name}: {rel} ({exc.strerror}); check its permissions") from None
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise CorpusError(f"{tree.name}: {rel} is not UTF-8; re-download the source") from None
    except json.JSONDecodeError as exc:
        raise CorpusError(
            f"{tree.name}: {rel} is not valid JSON (line {exc.lineno}: {exc.msg}); re-download the source"
        ) from None
    if not isinstance(data, list):
        raise CorpusError(f"{tree.name}: {rel} is not a JSON array of poems; re-download the source")
    return data


def _nearby(tree: _Tree, poem_dir: PurePosixPath, names: tuple[str, ...]) -> tuple[PurePosixPath, bytes] | None:
    """The first of ``names`` found in the poem folder's parent or grandparent (nearest first)."""
    for folder in (poem_dir.parent, poem_dir.parent.parent):
        for name in names:
            rel = folder / name
            if rel in tree.files:
                try:
                    return rel, tree.files[rel]()
                except OSError:
                    return None
        if folder == folder.parent:
            break
    return None


def _package_json(tree: _Tree, poem_dir: PurePosixPath) -> dict[str, Any]:
    found = _nearby(tree, poem_dir, ("package.json",))
    if found is None:
        return {}
    try:
        data = json.loads(found[1].decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CorpusError(f"{tree.name}: {found[0]} is not valid JSON; re-download the source") from None
    return data if isinstance(data, dict) else {}


def _license(tree: _Tree, poem_dir: PurePosixPath, package: dict[str, Any]) -> dict[str, Any] | None:
    name = package.get("license") if isinstance(package.get("license"), str) else None
    copyright_line = None
    found = _nearby(tree, poem_dir, _META_FILES[1:])
    if found is not None:
        text = found[1].decode("utf-8", errors="replace")
        for line in text.splitlines():
            if line.strip().lower().startswith("copyright"):
                copyright_line = " ".join(line.split())
                break
        if name is None and "MIT License" in text:
            name = "MIT"
    if name is None and copyright_line is None:
        return None
    return {"name": name, "copyright": copyright_line}


def _collect_file(path: Path) -> _Collected:
    corpus = read_corpus(path)
    kinds = {"text": "text file", "chinese-poetry-json": "chinese-poetry JSON file", FORMAT: "tangrnn corpus file"}
    kind = kinds.get(corpus.format, corpus.format)
    source = {
        "name": path.name,
        "version": None,
        "kind": kind,
        "file": path.name,
        "description": f"{kind} {path.name}",
    }
    return _Collected(list(corpus.poems), source, None)


# ---------------------------------------------------------------------------------------------- writing


def _write_atomically(files: list[tuple[Path, bytes]]) -> None:
    """Write every file to a temporary sibling, fsync it, then move them all into place.

    Nothing at the final paths changes unless every temporary file was written completely.
    """
    temps: list[tuple[str, Path]] = []
    try:
        for path, data in files:
            folder = path.parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CorpusError(
                    f"cannot create output folder {folder} ({exc.strerror}); choose another --output"
                ) from None
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
            except OSError as exc:
                raise CorpusError(
                    f"output folder {folder} is not writable ({exc.strerror}); choose another --output"
                ) from None
            temps.append((tmp, path))
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp, 0o644)
            except OSError as exc:
                raise CorpusError(
                    f"could not write {path} ({exc.strerror or _one_line(exc)}); free some space or choose another --output"
                ) from None
        for tmp, path in temps:
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise CorpusError(
                    f"could not move the new corpus into {path} ({exc.strerror}); choose another --output"
                ) from None
        temps = []
        for folder in {path.parent for path, _ in files}:
            _fsync_folder(folder)
    finally:
        for tmp, _ in temps:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
