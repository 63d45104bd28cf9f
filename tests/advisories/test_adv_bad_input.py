"""Bad input that used to hurt an advisory import (issue 16 point 4): each is rejected alone.

- a deeply nested JSON document aborted the whole import with RecursionError;
- a gzip bomb inside a .tar.gz (a small archive whose member decompresses to hundreds of MB)
  was read into memory;
- a huge local JSON file was stored as one row.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import otaudit.server.advisories.db  # noqa: F401  (tables on Base before init_db)
from otaudit.server.advisories.db import AdvisoryRow
from otaudit.server.advisories.importer import MAX_DEPTH, import_source
from otaudit.server.advisories.sources import MAX_DOCUMENT_BYTES, iter_source
from otaudit.server.db import init_db, make_engine, session_factory

FIXTURES = Path(__file__).parent.parent / "fixtures" / "csaf"
GOOD = "icsa-21-152-01.json"


@pytest.fixture
def sessions(sqlite_url: str) -> Any:
    engine = make_engine(sqlite_url)
    init_db(engine)
    yield session_factory(engine)
    engine.dispose()


def _good() -> bytes:
    return (FIXTURES / GOOD).read_bytes()


def test_deeply_nested_json_is_rejected_and_the_rest_imports(tmp_path: Path,
                                                             sessions: Any) -> None:
    (tmp_path / GOOD).write_bytes(_good())
    (tmp_path / "deep.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    shallow_but_deep = {"document": {}}
    node = shallow_but_deep["document"]
    for _ in range(MAX_DEPTH + 5):  # parses, but no advisory nests like this
        node["x"] = {}
        node = node["x"]
    (tmp_path / "deep2.json").write_text(json.dumps(shallow_but_deep))
    with sessions.begin() as session:
        report = import_source(session, str(tmp_path))
    reasons = dict(report.rejected)
    assert report.imported == 1
    assert "nested too deeply" in reasons["deep.json"]
    assert f"nested more than {MAX_DEPTH} levels" in reasons["deep2.json"]


class _Zeros(io.RawIOBase):
    """A file of ``size`` zero bytes, produced on the fly (never held in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def _bomb(path: Path, size: int) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        good = _good()
        info = tarfile.TarInfo("cisa-ot-csaf/" + GOOD)
        info.size = len(good)
        tar.addfile(info, io.BytesIO(good))
        info = tarfile.TarInfo("cisa-ot-csaf/bomb.json")
        info.size = size
        tar.addfile(info, io.BufferedReader(_Zeros(size), 1 << 20))
    return path


def test_gzip_bomb_in_a_tar_is_rejected_with_bounded_memory(tmp_path: Path) -> None:
    size = 400 * 1024 * 1024
    archive = _bomb(tmp_path / "bomb.tar.gz", size)
    assert archive.stat().st_size < 5 * 1024 * 1024  # a small archive …
    # VmHWM is the peak of this process's own memory map; ru_maxrss would also count the
    # parent's RSS at the fork (Linux keeps the old map's high-water mark across exec), so
    # it grew with the pytest process that ran the test (214 MiB late in a full run)
    script = (
        "import sys\n"
        "from otaudit.server.advisories.sources import iter_source\n"
        "items = {i.name: i for i in iter_source(sys.argv[1])}\n"
        "bomb = items['cisa-ot-csaf/bomb.json']\n"
        "good = items['cisa-ot-csaf/" + GOOD + "']\n"
        "print(bomb.error)\n"
        "print(good.data is not None and good.error is None)\n"
        "hwm = next(line for line in open('/proc/self/status') if line.startswith('VmHWM'))\n"
        "print(int(hwm.split()[1]) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", script, str(archive)], capture_output=True,
                         text=True, timeout=120, check=True).stdout.splitlines()
    error, good_ok, peak_mib = out[0], out[1], int(out[2])
    assert f"{size:,} bytes, larger than the limit of {MAX_DOCUMENT_BYTES:,}" in error
    assert good_ok == "True"
    assert peak_mib < 200, f"peak RSS {peak_mib} MiB while reading a {size >> 20} MiB member"


def test_huge_local_json_is_rejected_by_the_size_limit(tmp_path: Path, sessions: Any) -> None:
    doc = _good()
    padded = doc[:-1] + b" " * (MAX_DOCUMENT_BYTES + 1 - len(doc)) + doc[-1:]  # still valid
    path = tmp_path / "huge.json"
    path.write_bytes(padded)
    items = list(iter_source(str(path)))
    assert items[0].data is None and "larger than the limit" in (items[0].error or "")
    with sessions.begin() as session:
        report = import_source(session, str(path))
    assert report.imported == 0 and "larger than the limit" in report.rejected[0][1]
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AdvisoryRow)) == 0
