"""Settings: one typed object; every field documented and listed in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def env_names() -> list[str]:
    names = []
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.append(alias.choices[0])  # type: ignore[union-attr]
    return names


def test_every_setting_is_documented_in_code_and_readme() -> None:
    readme = README.read_text(encoding="utf-8")
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
    missing = [n for n in env_names() if f"`{n}`" not in readme]
    assert missing == []


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INTERVIEW_DATA_DIR", str(tmp_path / "x"))
    monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("CHROMA_PORT", "9999")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    s = Settings()
    assert s.chroma_path == tmp_path / "x" / "chroma"
    assert (s.chroma_host, s.chroma_port) == ("127.0.0.1", 9999)
    assert "sk-secret" not in repr(s)


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("INTERVIEW_RELATED_K=7\nINTERVIEW_EMBEDDINGS=openai\n")
    s = Settings()  # cwd is tmp_path (autouse fixture)
    assert s.related_k == 7 and s.embeddings == "openai"


def test_invalid_values_fail_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERVIEW_EMBEDDINGS", "word2vec")
    with pytest.raises(ValueError, match=r"(?i)embeddings"):
        Settings()
