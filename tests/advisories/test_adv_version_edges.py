"""Edges of the version parser: every qualifier word and its slot, the key length limit,
release trains, ABB revisions (issue 23: survivors of the mutation run of versions.py)."""

from __future__ import annotations

import pytest

from otaudit.server.advisories.ranges import parse_expression, position
from otaudit.server.advisories.versions import KEYLEN, compare, parse_version


def _same(a: str, b: str) -> bool:
    va, vb = parse_version(a), parse_version(b)
    assert va is not None and vb is not None, (a, b)
    return compare(va, vb) == 0


# slots after major.minor: SP, Update, hotfix, build -> 7.5.<sp>.<upd>.<hf>.<build>
@pytest.mark.parametrize(("text", "dotted"), [
    ("V7.5 SP3", "7.5.3"),
    ("V7.5 Service Pack 3", "7.5.3"),
    ("V7.5 ServicePack 3", "7.5.3"),
    ("V7.5 Update 3", "7.5.0.3"),
    ("V7.5 Upd3", "7.5.0.3"),
    ("V7.5 UC3", "7.5.0.3"),
    ("V7.5 CU3", "7.5.0.3"),
    ("V7.5 QU3", "7.5.0.3"),
    ("V7.5 MP3", "7.5.0.3"),
    ("V7.5 u3", "7.5.0.3"),
    ("V7.5 Hotfix 3", "7.5.0.0.3"),
    ("V7.5 Hotfix Rev 3", "7.5.0.0.3"),
    ("V7.5 HF3", "7.5.0.0.3"),
    ("V7.5 Patch 3", "7.5.0.0.3"),
    ("V7.5 FP3", "7.5.0.0.3"),
    ("V7.5 p3", "7.5.0.0.3"),
    ("V7.5 Build 3", "7.5.0.0.0.3"),
    ("V7.5 b3", "7.5.0.0.0.3"),
    ("V7.5 IR3", "7.5.0.0.0.3"),
    ("V7.5 kit3", "7.5.0.0.0.3"),
    ("V7.5 Rev 3", "7.5.0.0.0.3"),
    ("V7.5 r3", "7.5.0.0.0.3"),
    ("V7.5-3", "7.5.0.0.0.3"),
])
def test_every_qualifier_word_fills_its_own_slot(text: str, dotted: str) -> None:
    assert _same(text, dotted)
    # and no other: one more in the next slot is newer, one less in the slot is older
    assert not _same(text, dotted + ".1")
    assert not _same(text, dotted[:-1] + "2")


@pytest.mark.parametrize(("text", "train"), [
    ("15.2(6)E2a", (15, 2, "E")),
    ("12.4(24)T8", (12, 4, "T")),
    ("32.011", (32,)),
    ("V16 Update 4", (16,)),
])
def test_release_train(text: str, train: tuple) -> None:
    version = parse_version(text)
    assert version is not None
    assert version.release_train() == train


def test_keys_hold_exactly_keylen_components() -> None:
    at_limit = ".".join(str(i + 1) for i in range(KEYLEN))
    over = at_limit + ".13"
    version = parse_version(at_limit)
    assert version is not None and version.key[-1] == (KEYLEN, "")
    assert parse_version(over) is None
    # with service-pack slots: major.minor + 4 slots; 8 components + 4 slots = 12
    assert parse_version("1.2.3.4.5.6.7.8 SP1") is not None
    assert parse_version("1.2.3.4.5.6.7.8.9 SP1") is None


def test_abb_relion_revision_has_three_written_components() -> None:
    version = parse_version("1p1r26")
    assert version is not None and version.n == 3
    assert _same("1p1r26", "1.1.26")
    # "<= 1.1" names release 1.1, which revision 26 of it belongs to
    hit = position(parse_expression("<= 1.1"), version)
    assert hit.where == "in" and hit.by_prefix
    assert position(parse_expression("<= 1.0"), version).where == "above"
