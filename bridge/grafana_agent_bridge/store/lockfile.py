"""The data directory's lock: one writer per directory, and who holds it when it is taken.

Two writers would interleave WAL segments and corrupt them, so the store takes an exclusive
``flock`` on ``<data dir>/lock``. The holder writes its PID into the file, so a second daemon
can say which process to stop rather than just "in use" (flock itself does not tell).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from ..redact import one_line, redact_url

MAX_COMMAND_CHARS = 300
"""The holder's command line is shown up to this length (it is for recognising, not auditing)."""


class StoreLockedError(Exception):
    """Another process (or another open ``Store``) already uses this data directory."""


def acquire(path: Path) -> int:
    """Lock ``path`` (created if needed) and record this process's PID in it; the descriptor
    holds the lock until it is closed.

    Raises:
        StoreLockedError: another process holds it; the message names that process.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = _describe_holder(fd)
        os.close(fd)
        raise StoreLockedError(
            f"the data directory {path.parent.absolute()} is in use by {holder}; stop it, or give "
            "this one another data directory"
        ) from None
    with contextlib.suppress(OSError):  # the PID is a courtesy: the lock works without it
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _describe_holder(fd: int) -> str:
    """``PID 123 (python -m grafana_agent_bridge serve ...)`` as far as it can be known."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    if not text.isdigit():
        return "another process (an older version, which did not record its PID)"
    pid = int(text)
    if pid == os.getpid():
        return f"this process (PID {pid}: the store is already open)"
    command = _command_line(pid)
    return f"PID {pid} ({command})" if command else f"PID {pid}"


def _command_line(pid: int) -> str:
    """The process's command line, single-line, URL credentials masked, shortened; "" when
    unreadable (another user's process, or gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    args = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
    shown = one_line(" ".join(_shown_arg(a) for a in args))
    if len(shown) > MAX_COMMAND_CHARS:
        shown = shown[: MAX_COMMAND_CHARS - 3] + "..."
    return shown


def _shown_arg(arg: str) -> str:
    """A command-line argument with the credentials of a URL in it masked."""
    flag, eq, value = arg.partition("=")
    if eq and flag.startswith("-"):  # --forward-url=URL
        return f"{flag}={_shown_arg(value)}"
    return redact_url(arg) if "@" in arg or "://" in arg else arg
