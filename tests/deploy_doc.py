"""docs/deploy.md as data: the command lines of its ``sh`` blocks, by section.

Shared by the guide's consistency check (``tests/snap/test_deploy_doc.py``), the test that
follows its non-Juju path for real (``tests/e2e/test_deploy_doc_snap_path.py``) and the one that
follows its Juju path against a controller (``tests/integration/test_deploy_doc.py``), so all
three read the guide the same way. Standard library only: the integration environment has
neither the bridge nor pytest plugins beyond pytest-operator.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "deploy.md"
JUJU_SECTION = "## With Juju"
SNAP_SECTION = "## Without Juju"


def placeholder(text: str) -> bool:
    """A ``<name in angle brackets>`` the reader chooses (spaces in it became ``_``)."""
    return "<" in text and ">" in text


def section(text: str, heading: str) -> str:
    """The part of the document from the ``##`` heading starting with ``heading`` to the next
    ``##`` heading (or the end)."""
    start = text.index("\n" + heading) + 1
    end = text.find("\n## ", start + len(heading))
    return text[start:] if end < 0 else text[start:end]


def command_lines(text: str) -> list[list[str]]:
    """Every command line of the text's ``sh`` blocks, as argv lists (comments dropped, spaces
    inside ``<placeholders>`` turned into ``_`` so each stays one word)."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for raw in block.splitlines():
            line = re.sub(r"\s+#.*$", "", raw).strip()
            if not line:
                continue
            line = re.sub(r"<[^>]*>", lambda m: m.group(0).replace(" ", "_"), line)
            out.append(shlex.split(line))
    return out


def commands(text: str) -> list[list[str]]:
    """The ``juju``/``snap`` command lines of the text's ``sh`` blocks, as argv lists."""
    return [argv for argv in command_lines(text) if argv[0] in ("juju", "snap")]
