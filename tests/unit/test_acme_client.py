"""scripts/acme_client.py's own logic, without Docker: lego's command line, the renewal window,
the reason a failure reports, and the health check."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from certs import write_self_signed

from scripts import acme_client

SERVER = "https://acme.example.com/directory"


@pytest.fixture
def sidecar_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name, value in {
        "ACME_DOMAIN": "catalog.example.com",
        "ACME_EMAIL": "ops@example.com",
        "ACME_SERVER": SERVER,
        "ACME_PATH": str(tmp_path / "data"),
        "ACME_CERTS": str(tmp_path / "certs"),
        "ACME_WEBROOT": "/var/www/acme",
        "ACME_RENEW_DAYS": "30",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ACME_RANDOM_SLEEP", raising=False)
    monkeypatch.delenv("ACME_CA_BUNDLE_PEM", raising=False)
    monkeypatch.setattr(acme_client, "STATUS_FILE", str(tmp_path / "status.json"))
    return tmp_path


def test_lego_command_lines(sidecar_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lego_path, _, _ = acme_client.paths()
    common = [
        "lego",
        "--accept-tos",
        "--email",
        "ops@example.com",
        "--server",
        SERVER,
        "--path",
        str(lego_path),
        "--domains",
        "catalog.example.com",
        "--key-type",
        "ec256",
        "--http",
        "--http.webroot",
        "/var/www/acme",
    ]
    assert acme_client.lego_argv("run", None) == [*common, "run"]
    assert acme_client.lego_argv("renew", 30) == [*common, "renew", "--days", "30", "--no-random-sleep"]
    # The scheduled loop keeps lego's random delay, which spreads renewals over the CA.
    monkeypatch.setenv("ACME_RANDOM_SLEEP", "true")
    assert acme_client.lego_argv("renew", 30) == [*common, "renew", "--days", "30"]


def test_each_acme_server_has_its_own_lego_folder(sidecar_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, certs, domain = acme_client.paths()
    monkeypatch.setenv("ACME_SERVER", "https://acme-staging-v02.api.letsencrypt.org/directory")
    second, _, _ = acme_client.paths()
    assert first != second and first.parent == second.parent == sidecar_env / "data"
    assert certs == sidecar_env / "certs" and domain == "catalog.example.com"


def test_ca_bundle_reaches_lego_as_a_file(sidecar_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "LEGO_CA_CERTIFICATES" not in acme_client.lego_env()
    bundle = write_self_signed(sidecar_env / "ca").cert_pem
    monkeypatch.setenv("ACME_CA_BUNDLE_PEM", bundle)
    written = Path(acme_client.lego_env()["LEGO_CA_CERTIFICATES"])
    assert written.read_text() == bundle


def test_failure_reports_lego_s_error_lines(sidecar_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = sidecar_env / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "lego"
    # What lego prints for a refused challenge: progress, then the ACME problem.
    fake.write_text(
        "#!/bin/sh\n"
        "echo '[INFO] [catalog.example.com] acme: Obtaining bundled SAN certificate' >&2\n"
        "echo '[INFO] [catalog.example.com] acme: Trying to solve HTTP-01' >&2\n"
        "echo 'Could not obtain certificates:' >&2\n"
        "echo '  error: one or more domains had a problem:' >&2\n"
        "echo '[catalog.example.com] acme: error: 403 :: urn:ietf:params:acme:error:unauthorized :: 404' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(acme_client.AcmeError) as caught:
        acme_client.run_lego(force=False)
    message = str(caught.value)
    assert message.startswith("the ACME server did not issue a certificate for catalog.example.com:\n")
    assert "urn:ietf:params:acme:error:unauthorized" in message and "Could not obtain certificates:" in message
    assert "Trying to solve HTTP-01" not in message


def test_renewal_window(sidecar_env: Path) -> None:
    soon = write_self_signed(sidecar_env / "soon", valid_days=29).cert_pem
    later = write_self_signed(sidecar_env / "later", valid_days=31).cert_pem
    assert acme_client.due(soon) is True
    assert acme_client.due(later) is False


def test_leaf_is_the_first_certificate_of_the_chain(sidecar_env: Path) -> None:
    first = write_self_signed(sidecar_env / "leaf").cert_pem
    second = write_self_signed(sidecar_env / "issuer").cert_pem
    assert acme_client.leaf(first + second) == first
    assert acme_client.fingerprint(first + second) == acme_client.fingerprint(first)
    with pytest.raises(acme_client.AcmeError):
        acme_client.leaf("no certificate here")


def test_health_check_follows_the_last_attempt(sidecar_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = Path(acme_client.STATUS_FILE)
    assert acme_client.check() == 0  # no attempt yet (a fresh container): healthy
    acme_client.record({"status": "failed", "reason": "the ACME server did not issue a certificate"})
    assert acme_client.check() == 1
    assert "last ACME attempt failed" in capsys.readouterr().out
    acme_client.record({"status": "ok", "renewed": True, "certificate": "-----BEGIN CERTIFICATE-----"})
    assert acme_client.check() == 0
    # The certificate itself is not kept in the status file.
    assert "certificate" not in json.loads(status.read_text())
