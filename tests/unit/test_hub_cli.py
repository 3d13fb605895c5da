"""``edge-hub serve``'s broker flags, checked before anything starts: one line naming the
flag, and a password never taken from (nor echoed back from) the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from cloud_sync.hub.cli import broker_password, build_parser, check_exposure, main
from cloud_sync.hub.errors import HubError
from tests.support.certs import make_pki


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


@pytest.mark.parametrize("argv", [["--mqtt-password", "hunter2"], ["--mqtt-password=hunter2"]])
def test_a_password_flag_is_refused_without_echoing_it(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ex:
        parse("--mqtt-username", "hub", *argv)
    assert ex.value.code == 2
    err = capsys.readouterr().err
    assert "--mqtt-password is not accepted" in err and "--mqtt-password-file" in err
    assert "hunter2" not in err


def test_no_abbreviations(capsys: pytest.CaptureFixture[str]) -> None:
    # with argparse's abbreviations, --mqtt-password-f would be --mqtt-password-file
    with pytest.raises(SystemExit):
        parse("--mqtt-password-f", "x")
    assert "unrecognized arguments" in capsys.readouterr().err


def test_password_from_a_file_or_the_environment_not_both(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("from-file\n")
    user = ["--mqtt-username", "hub"]
    assert broker_password(parse(*user, "--mqtt-password-file", str(f)), {}) == "from-file"
    assert broker_password(parse(*user), {"EDGE_HUB_MQTT_PASSWORD": "from-env"}) == "from-env"
    assert broker_password(parse(*user), {}) is None
    with pytest.raises(HubError, match="both set"):
        broker_password(
            parse(*user, "--mqtt-password-file", str(f)), {"EDGE_HUB_MQTT_PASSWORD": "x"}
        )
    with pytest.raises(HubError, match=r"^EDGE_HUB_MQTT_PASSWORD: a password needs --mqtt-user"):
        broker_password(parse(), {"EDGE_HUB_MQTT_PASSWORD": "x"})
    with pytest.raises(HubError, match=r"^--mqtt-password-file: a password needs --mqtt-username"):
        broker_password(parse("--mqtt-password-file", str(f)), {})


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--mqtt-tls-ca", "{d}/nope.crt"], "--mqtt-tls-ca {d}/nope.crt: cannot read"),
        (["--mqtt-tls-cert", "{d}/hub.crt"], "--mqtt-tls-cert needs --mqtt-tls-key"),
        (
            ["--mqtt-tls-ca", "{d}/ca.crt", "--mqtt-tls-cert", "{d}/hub.crt",
             "--mqtt-tls-key", "{d}/ca.key"],
            "--mqtt-tls-key {d}/ca.key: not the private key of --mqtt-tls-cert",
        ),
        (["--mqtt-username", "hub", "--mqtt-password-file", "{d}/none"],
         "--mqtt-password-file {d}/none: cannot read"),
        (["--token", "a", "--token-file", "{d}/ca.crt"], "--token and --token-file are both"),
        (["--snapshot-dir", "{d}/nope"], "--snapshot-dir {d}/nope: no such folder"),
        (["--snapshot-max-bytes", "0"], "--snapshot-max-bytes: 0 must be"),
        (["--snapshot-max-age-days", "-1"], "--snapshot-max-age-days: -1.0 must be"),
        (["--snapshot-max-age-days", "nan"], "--snapshot-max-age-days: nan must be"),
        (["--snapshot-pending-s", "0"], "--snapshot-pending-s: 0.0 must be"),
        (["--snapshot-sweep-s", "inf"], "--snapshot-sweep-s: inf must be"),
    ],
)  # fmt: skip
def test_serve_stops_at_a_bad_flag_with_one_line(
    tmp_path: Path, flags: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    d = make_pki(tmp_path / "pki", ["hub"])
    db = tmp_path / "hub.db"
    argv = ["serve", "--db", f"sqlite:///{db}", *(f.format(d=d) for f in flags)]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith(f"edge-hub: error: {expected.format(d=d)}"), lines
    assert not db.exists()  # checked before the database is opened


@pytest.mark.parametrize(
    "host",
    ["0.0.0.0", "::", "192.168.1.20", "hub.example.com"],  # noqa: S104  refused, never bound
)
def test_an_api_without_a_token_is_refused_where_other_hosts_reach_it(
    tmp_path: Path, host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a token the API hands out every event and snapshot and takes commands; on a
    reachable address that needs a token or an explicit --no-token (issue 11)."""
    db = tmp_path / "hub.db"
    assert main(["serve", "--db", f"sqlite:///{db}", "--http-host", host]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"edge-hub: error: --http-host {host}: other hosts can reach"), err
    assert "--token-file" in err and "--no-token" in err
    assert not db.exists()
    check_exposure(host, "a-token", False)  # with a token, or said explicitly: allowed
    check_exposure(host, None, True)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"])
def test_loopback_needs_no_token(host: str) -> None:
    check_exposure(host, None, False)


@pytest.mark.parametrize(
    ("given", "kept"),
    [("", ""), ("/", ""), ("/edgewise", "/edgewise"), ("/edgewise/", "/edgewise"),
     ("/a/b-c.d~e_f", "/a/b-c.d~e_f")],
)  # fmt: skip
def test_root_path_is_kept_without_its_trailing_slash(given: str, kept: str) -> None:
    from cloud_sync.hub.cli import build_parser

    assert build_parser().parse_args(["serve", "--root-path", given]).root_path == kept


@pytest.mark.parametrize(
    "bad", ["edgewise", "/a/../b", "/a//b", "/./a", "/a b", "/a?x=1", "/a;x", "/ä", "//evil.com"]
)
def test_a_root_path_that_is_not_a_plain_path_is_refused(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from cloud_sync.hub.cli import build_parser

    with pytest.raises(SystemExit) as got:
        build_parser().parse_args(["serve", "--root-path", bad])
    assert got.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--root-path" in err and "like /edgewise" in err, err
