"""``tools/dev.py serve``, the README's quickstart: it keeps to this machine unless told."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

DEV = Path(__file__).resolve().parents[2] / "tools" / "dev.py"


@pytest.fixture(scope="module")
def dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_tool", DEV)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _listen(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--listen-address"]


def test_the_quickstart_listens_on_loopback_by_default(dev: ModuleType) -> None:
    argv, warning = dev.serve_argv([])
    assert argv[0] == "serve"
    assert _listen(argv) == ["127.0.0.1:9099"]
    assert "--data-dir" in argv
    assert warning == ""


@pytest.mark.parametrize(
    "flag", [["--listen-address", "0.0.0.0:9099"], ["--listen-address=:9099"]]
)
def test_an_open_address_is_kept_and_warned_about(dev: ModuleType, flag: list[str]) -> None:
    argv, warning = dev.serve_argv(flag)
    assert "127.0.0.1:9099" not in argv
    assert argv[-len(flag) :] == flag
    assert warning.startswith("WARNING") and "anyone who can reach this machine" in warning
    assert "query.auth_token" in warning


def test_a_config_file_chooses_its_own_address_and_data(dev: ModuleType) -> None:
    argv, warning = dev.serve_argv(["--config", "bridge.yaml"])
    assert argv == ["serve", "--config", "bridge.yaml"]
    assert warning == ""


def test_a_loopback_address_given_by_the_user_is_not_warned_about(dev: ModuleType) -> None:
    _, warning = dev.serve_argv(["--listen-address", "127.0.0.1:9100"])
    assert warning == ""
