"""Docs drift: every error code and every setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

from kudos import errors
from kudos.config import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def documented_codes() -> set[int]:
    table = (DOCS / "errors.md").read_text()
    return {int(code) for code in re.findall(r"^\| (\d{4}) \|", table, flags=re.MULTILINE)}


def test_every_error_code_is_documented() -> None:
    codes = {cls.code for cls in errors.all_error_classes()}
    assert codes - documented_codes() == set()


def test_the_document_lists_no_code_kudos_does_not_have() -> None:
    codes = {cls.code for cls in errors.all_error_classes()}
    assert documented_codes() - codes == set()


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [name for name in Settings.model_fields if f"KUDOS_{name.upper()}" not in text]
    assert missing == []
