"""A zipped Obsidian vault in the browser: extracted safely, ingested through the Obsidian importer."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bot.knowledge import archive
from bot.knowledge.archive import UnsafeArchive, extract_notes
from bot.knowledge.importers import SUFFIXES

NOTE = "---\ntags: [ml]\n---\n## What is dropout?\nRandomly zeroing activations, see [[Regularisation|regularising]].\n"


def make_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def link(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("member", "why"),
    [
        ("/etc/cron.d/evil.md", "absolute path"),
        ("C:\\Windows\\evil.md", "absolute path"),
        ("vault/../../evil.md", "leaves its folder"),
        ("..\\evil.md", "leaves its folder"),
        (link("vault/notes.md"), "symbolic link"),
    ],
)
def test_hostile_members_refuse_the_whole_zip(tmp_path: Path, member: str | zipfile.ZipInfo, why: str) -> None:
    bad = make_zip(tmp_path / "v.zip", [("vault/ok.md", NOTE.encode()), (member, b"/etc/passwd")])
    dest = tmp_path / "stage" / "v.zip"
    with pytest.raises(UnsafeArchive, match=why):
        extract_notes(bad, dest, SUFFIXES)
    assert not dest.exists() and not (tmp_path / "evil.md").exists()
    assert not list(tmp_path.rglob("evil.md"))


def test_bombs_are_refused_by_size_and_by_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 1_000_000)
    bomb = make_zip(tmp_path / "bomb.zip", [("vault/big.md", b"a" * 2_000_000)])  # a few KB compressed
    assert bomb.stat().st_size < 20_000
    with pytest.raises(UnsafeArchive, match="inflates to more than"):
        extract_notes(bomb, tmp_path / "s1", SUFFIXES)
    assert not (tmp_path / "s1").exists()

    liar = tmp_path / "liar.zip"  # a header that understates the size: refused too (what is inflated is checked)
    make_zip(liar, [("vault/big.md", b"a" * 2_000_000)])
    with zipfile.ZipFile(liar) as zf:
        (info,) = zf.infolist()
    monkeypatch.setattr(zipfile.ZipFile, "infolist", lambda self: [_shrunk(info)])
    with pytest.raises(UnsafeArchive):
        extract_notes(liar, tmp_path / "s2", SUFFIXES)
    assert not (tmp_path / "s2").exists()
    monkeypatch.undo()

    monkeypatch.setattr(archive, "MAX_MEMBERS", 10)
    many = make_zip(tmp_path / "many.zip", [(f"vault/n{i}.md", NOTE.encode()) for i in range(11)])
    with pytest.raises(UnsafeArchive, match="11 entries"):
        extract_notes(many, tmp_path / "s3", SUFFIXES)


def _shrunk(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    info.file_size = 10
    return info


def test_not_a_zip(tmp_path: Path) -> None:
    fake = tmp_path / "v.zip"
    fake.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(UnsafeArchive, match="not a readable zip"):
        extract_notes(fake, tmp_path / "s", SUFFIXES)


def test_a_zipped_vault_is_extracted_as_a_vault(tmp_path: Path) -> None:
    z = make_zip(
        tmp_path / "v.zip",
        [
            ("My Vault/.obsidian/app.json", b"{}"),
            ("My Vault/ML/dropout.md", NOTE.encode()),
            ("My Vault/img/plot.png", b"\x89PNG..."),
            ("My Vault/.trash/old.md", b"## What is old?\nGone.\n"),
        ],
    )
    root = extract_notes(z, tmp_path / "stage", SUFFIXES)
    assert root == tmp_path / "stage" / "My Vault" and (root / ".obsidian").is_dir()
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == ["ML/dropout.md"]


def test_upload_a_zipped_vault_then_remove_it(settings: Any, local_embedder: Any, tmp_path: Path) -> None:
    from bot.knowledge.library import Library, Upload
    from bot.retrieval.store import open_store

    z = make_zip(
        tmp_path / "in.zip",
        [
            ("vault/.obsidian/app.json", b"{}"),
            ("vault/dropout.md", NOTE.encode()),
            ("vault/deep/bpe.md", b"## What is BPE?\nByte-pair encoding merges frequent pairs.\n"),
            ("vault/img.png", b"\x89PNG"),
        ],
    )
    library = Library(settings.data_dir, open_store(settings, local_embedder))
    result = library.add("alice", [Upload("My vault.zip", z)])
    assert result.rejected == [] and result.summary is not None and result.summary.cards == 2
    cards = {c.display_question: c for c in library.store.all_cards({"alice"})}
    assert cards["What is dropout?"].answer == "Randomly zeroing activations, see regularising."  # Obsidian cleaned
    assert cards["What is dropout?"].source.path == "uploads/alice/My vault.zip/vault/dropout.md"
    assert [(f.name, f.cards) for f in library.files("alice") if not f.shipped] == [("My vault.zip", 2)]
    again = library.add(
        "alice", [Upload("My vault.zip", make_zip(tmp_path / "v2.zip", [("vault/dropout.md", NOTE.encode())]))]
    )
    assert again.summary is not None and again.summary.removed == 1  # bpe.md is gone from the new zip
    assert library.remove("alice", "My vault.zip") == 1
    assert library.store.all_cards({"alice"}) == [] and not (library.user_dir("alice") / "My vault.zip").exists()

    hostile = make_zip(tmp_path / "h.zip", [("vault/a.md", NOTE.encode()), ("../../x.md", b"x")])
    refused = library.add("alice", [Upload("h.zip", hostile)])
    assert refused.summary is None and refused.rejected == [
        "h.zip: the zip holds a path that leaves its folder ('../../x.md')"
    ]
    assert not (library.user_dir("alice") / "h.zip").exists()
