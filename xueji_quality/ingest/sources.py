"""The export files of a run: which files a list of inputs names, and the name each is given in
messages (unique across the run)."""

from __future__ import annotations

from pathlib import Path

from xueji_quality.errors import InputError

FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".parquet": "parquet"}
# Bytes read from a file at a time when it is scanned (hashing, decoding, searching a sheet).
CHUNK_BYTES = 8 << 20


def find_exports(inputs: list[Path]) -> list[Path]:
    """Export files named by ``inputs``: files as given, folders expanded (recursively) to the
    csv/xlsx/parquet files inside, sorted. Hidden files and Excel lock files are skipped."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if not item.exists():
            raise InputError(str(item), "路径不存在")
        if item.is_dir():
            inside = sorted(
                p
                for p in item.rglob("*")
                if p.is_file()
                and p.suffix.lower() in FORMATS
                and not any(part.startswith((".", "~$")) for part in p.relative_to(item).parts)
            )
            if not inside:
                raise InputError(str(item), "文件夹中没有可读取的导出文件（csv、xlsx、parquet）")
            found.extend(inside)
        else:
            found.append(item)
    unique: list[Path] = []
    seen: set[Path] = set()
    for path in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def source_name(path: Path, used: set[str]) -> str:
    """The file's name, made unique in the run by its parent folder when two files share it."""
    for candidate in (path.name, f"{path.parent.name}/{path.name}", str(path)):
        if candidate not in used:
            used.add(candidate)
            return candidate
    used.add(str(path.resolve()))
    return str(path.resolve())
