"""docs/security.md names the keys that bound each attack; a renamed or dropped key must not
leave the page pointing operators at a setting that no longer exists."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
KEY = re.compile(r"`((?:web|ingest|storage|query|tls|forward)\.[a-z_]+)`")


def test_every_key_the_security_page_names_is_a_documented_config_key() -> None:
    named = set(KEY.findall((DOCS / "security.md").read_text()))
    reference = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_.\[\]]+)` \|", reference, flags=re.M))
    assert len(named) >= 15, sorted(named)
    assert named <= documented, sorted(named - documented)
