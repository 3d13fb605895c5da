"""The dashboard opens in a browser only at a desktop, never under CI or --no-browser; the
tests replace ``webbrowser.open`` so that no browser can start here whatever they find."""

from __future__ import annotations

import webbrowser

import pytest

from edge.demo.browser import open_dashboard, should_open

URL = "http://127.0.0.1:8080/"


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def fake_open(url: str, new: int = 0, autoraise: bool = True) -> bool:
        calls.append(url)
        return True

    monkeypatch.setattr(webbrowser, "open", fake_open)
    return calls


@pytest.mark.parametrize(
    ("env", "no_browser", "platform", "want"),
    [
        ({}, False, "linux", False),  # a headless box or an SSH session
        ({"DISPLAY": ""}, False, "linux", False),
        ({"DISPLAY": ":0"}, False, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, False, "linux", True),
        ({"DISPLAY": ":0"}, True, "linux", False),
        ({"DISPLAY": ":0", "CI": "true"}, False, "linux", False),
        ({"DISPLAY": ":0", "CI": "1"}, False, "linux", False),
        ({"DISPLAY": ":0", "CI": "0"}, False, "linux", True),
        ({"DISPLAY": ":0", "CI": "false"}, False, "linux", True),
        ({}, False, "darwin", True),
        ({"CI": "true"}, False, "darwin", False),
        ({}, True, "win32", False),
        ({}, False, "win32", True),
    ],
)
def test_should_open(env: dict[str, str], no_browser: bool, platform: str, want: bool) -> None:
    assert should_open(env, no_browser=no_browser, platform=platform) is want


@pytest.mark.parametrize(
    "env",
    [{}, {"CI": "true", "DISPLAY": ":0"}, {"CI": "yes", "WAYLAND_DISPLAY": "w"}],
)
def test_no_display_or_ci_never_calls_the_browser(env: dict[str, str], opened: list[str]) -> None:
    assert open_dashboard(URL, env, no_browser=False, platform="linux") is False
    assert opened == []


def test_no_browser_flag_never_calls_it(opened: list[str]) -> None:
    assert open_dashboard(URL, {"DISPLAY": ":0"}, no_browser=True, platform="linux") is False
    assert opened == []


def test_a_desktop_opens_the_dashboard(opened: list[str]) -> None:
    assert open_dashboard(URL, {"DISPLAY": ":0"}, no_browser=False, platform="linux") is True
    assert opened == [URL]


def test_a_browser_that_fails_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(url: str, new: int = 0, autoraise: bool = True) -> bool:
        raise webbrowser.Error("could not locate runnable browser")

    monkeypatch.setattr(webbrowser, "open", broken)
    assert open_dashboard(URL, {"DISPLAY": ":0"}, no_browser=False, platform="linux") is False
