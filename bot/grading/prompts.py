"""Prompt files: every prompt lives in ``prompts/NAME.md`` with a small front matter.

```
---
name: grader.user
version: grader-2026-11-23
variables: [question, answer]
---
template text with {question} and {answer}
```

Loading validates that the placeholders in the text are exactly the declared variables, and
formatting fails loudly on a missing or unexpected variable. No prompt text lives in code.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["Prompt", "PromptError", "default_prompts_dir", "load_prompt", "prompt_set_version"]

_FRONT = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.S)


class PromptError(ValueError):
    """A prompt file is missing, malformed, or was formatted with the wrong variables."""


def default_prompts_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "prompts"


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    variables: tuple[str, ...]
    template: str
    digest: str = ""  # sha256 of the file's text: any edit, front matter included, changes it

    def format(self, **values: str) -> str:
        given, declared = set(values), set(self.variables)
        if given != declared:
            missing, extra = sorted(declared - given), sorted(given - declared)
            raise PromptError(f"prompt {self.name!r}: missing variables {missing}, unexpected {extra}")
        return self.template.format(**values)


def _placeholders(template: str) -> set[str]:
    names = set()
    for _, field, _, _ in string.Formatter().parse(template):
        if field is None:
            continue
        if not field.isidentifier():
            raise PromptError(f"placeholder {{{field}}} is not a plain name (escape literal braces as {{{{ }}}})")
        names.add(field)
    return names


def parse_prompt(text: str, source: str) -> Prompt:
    m = _FRONT.match(text.replace("\r\n", "\n"))
    if not m:
        raise PromptError(f"{source}: missing '---' front matter")
    meta: dict[str, str] = {}
    for line in m.group(1).splitlines():
        if line.strip():
            key, sep, value = line.partition(":")
            if not sep:
                raise PromptError(f"{source}: bad front matter line {line!r}")
            meta[key.strip()] = value.strip()
    for key in ("name", "version", "variables"):
        if key not in meta:
            raise PromptError(f"{source}: front matter needs '{key}'")
    raw_vars = meta["variables"].strip()
    if not (raw_vars.startswith("[") and raw_vars.endswith("]")):
        raise PromptError(f"{source}: variables must be a [list]")
    variables = tuple(v.strip() for v in raw_vars[1:-1].split(",") if v.strip())
    template = m.group(2).strip("\n")
    try:
        found = _placeholders(template)
    except (ValueError, PromptError) as exc:
        raise PromptError(f"{source}: {exc}") from exc
    if found != set(variables):
        raise PromptError(f"{source}: declared variables {sorted(variables)} but the text uses {sorted(found)}")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Prompt(name=meta["name"], version=meta["version"], variables=variables, template=template, digest=digest)


@lru_cache(maxsize=64)
def load_prompt(name: str, directory: Path | None = None) -> Prompt:
    """Load and validate ``prompts/NAME.md`` (cached)."""
    path = (directory or default_prompts_dir()) / f"{name}.md"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PromptError(f"prompt file {path} cannot be read: {exc.strerror or exc}") from exc
    prompt = parse_prompt(text, str(path))
    if prompt.name != name:
        raise PromptError(f"{path}: front matter name {prompt.name!r} does not match the file name")
    return prompt


def prompt_set_version(prefix: str, prompts: Iterable[Prompt]) -> str:
    """``PREFIX-`` and 12 hex digits of a hash over the named prompt files' contents: the version a
    grade carries changes whenever any file its grader can use changes, and only then."""
    h = hashlib.sha256()
    for prompt in sorted(prompts, key=lambda p: p.name):
        h.update(f"{prompt.name}\0{prompt.digest}\0".encode())
    return f"{prefix}-{h.hexdigest()[:12]}"
