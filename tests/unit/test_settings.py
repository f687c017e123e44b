"""Every bad input stops the program before a single resource is declared, with a usable message."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from certs import write_self_signed
from workspace import Workspace

from settings import ConfigError

BAD_INPUTS = [
    # (stack, overrides, fragments the message must contain)
    ("dev", {"appEnv": "prodution"}, ["catalogizer:appEnv", "'prodution'", "production, staging, development"]),
    (
        "dev",
        {"tls": {"mode": "letsencrypt"}},
        ["catalogizer:tls.mode", "'letsencrypt'", "selfSigned, files, acme, off"],
    ),
    ("dev", {"api": {"replicas": 0}}, ["catalogizer:api.replicas", "0", "1 to 16"]),
    ("dev", {"api": {"replicas": "two"}}, ["catalogizer:api.replicas", "whole number"]),
    ("dev", {"proxy": {"httpsPort": 70000}}, ["catalogizer:proxy.httpsPort", "70000", "1-65535"]),
    ("dev", {"proxy": {"httpPort": 0}}, ["catalogizer:proxy.httpPort", "outside 1-65535"]),
    ("dev", {"postgres": {"hostPort": 8443}}, ["catalogizer:postgres.hostPort", "8443", "catalogizer:proxy.httpsPort"]),
    ("dev", {"redis": {"hostPort": 8080}}, ["catalogizer:redis.hostPort", "catalogizer:proxy.httpPort"]),
    ("prod", {"monitoring": {"grafanaPort": 443}}, ["catalogizer:monitoring.grafanaPort", "443"]),
    ("dev", {"api": {"image": "catalogizer/api:1.2"}}, ["catalogizer:api", "exactly one of 'source'", "both are set"]),
    ("dev", {"api": {"source": None}}, ["catalogizer:api", "exactly one", "neither is set"]),
    ("dev", {"api": {"dockerfile": "api/Dockerfile"}}, ["catalogizer:api.source", "no api/Dockerfile", "ROOT"]),
    ("dev", {"api": {"source": "../nowhere"}}, ["catalogizer:api.source", "no catalog-api/Dockerfile"]),
    (
        "dev",
        {"api": {"source": "../no-submodules"}},
        ["catalogizer:api.source", "no submodules/ folder", "git -C", "submodule update --init --recursive"],
    ),
    (
        "dev",
        {"api": {"source": "../empty-submodules"}},
        ["catalogizer:api.source", "submodules assets, config are empty", "submodule update --init --recursive"],
    ),
    ("prod", {"tls": {"certFile": "ssl/missing.pem"}}, ["catalogizer:tls.certFile", "cannot read", "missing.pem"]),
    ("prod", {"tls": {"keyFile": None}}, ["catalogizer:tls.keyFile", "required with mode=files"]),
    (
        "prod",
        {"tls": {"mode": "off", "certFile": None, "keyFile": None}},
        ["catalogizer:tls.mode", "refused", "production"],
    ),
    ("dev", {"tls": {"certFile": "ssl/cert.pem"}}, ["catalogizer:tls.certFile", "only used with mode=files"]),
    ("dev", {"api": {"memoryMb": 128}}, ["catalogizer:api.memoryMb", "128 MB", "floor of 256 MB"]),
    ("dev", {"redis": {"memoryMb": 32}}, ["catalogizer:redis.memoryMb", "floor of 64 MB"]),
    ("dev", {"postgres": {"memoryMb": 100}}, ["catalogizer:postgres.memoryMb", "floor of 256 MB"]),
    ("dev", {"api": {"replica": 2}}, ["catalogizer:api", "unknown key 'replica'", "Did you mean 'replicas'?"]),
    ("dev", {"postgres": {"hostport": 5432}}, ["unknown key 'hostport'", "'hostPort'"]),
    ("dev", {"monitoring": {"enable": True}}, ["catalogizer:monitoring", "unknown key 'enable'"]),
    ("dev", {"replicas": 2}, ["catalogizer:replicas: unknown key", "pulumi config rm catalogizer:replicas"]),
    ("dev", {"restorefrom": "x"}, ["catalogizer:restorefrom: unknown key", "Did you mean 'catalogizer:restoreFrom'?"]),
    ("dev", {"api": "just-a-string"}, ["catalogizer:api", "expected an object"]),
    ("dev", {"api": {"corsOrigins": "catalog.example.com"}}, ["catalogizer:api.corsOrigins", "not an origin"]),
    ("dev", {"api": {"logLevel": "verbose"}}, ["catalogizer:api.logLevel", "debug, info, warn, error"]),
    ("dev", {"domain": "bad domain;"}, ["catalogizer:domain", "not a DNS name"]),
    ("dev", {"namePrefix": "Bad Prefix"}, ["catalogizer:namePrefix", "not a valid Docker name"]),
    ("dev", {"postgres": {"user": "drop table"}}, ["catalogizer:postgres.user", "identifier"]),
    ("dev", {"health": {"timeoutSeconds": 10, "intervalSeconds": 10}}, ["catalogizer:health.intervalSeconds"]),
    ("dev", {"backup": {"schedule": "0 25 * * *"}}, ["catalogizer:backup.schedule", "hour", "0 2 * * *"]),
    ("dev", {"backup": {"schedule": "daily"}}, ["catalogizer:backup.schedule", "5 fields"]),
    ("dev", {"backup": {"schedule": "0 0 31 2 *"}}, ["catalogizer:backup.schedule", "never fires"]),
    ("dev", {"backup": {"keep": 0}}, ["catalogizer:backup.keep", "outside 1-1000"]),
    ("dev", {"maintenance": "yes"}, ["catalogizer:maintenance", "true or false", "'yes'"]),
    ("dev", {"api": {"keepImages": 0}}, ["catalogizer:api.keepImages", "outside 1-100"]),
    ("dev", {"api": {"platform": "amd64"}}, ["catalogizer:api.platform", "'amd64'", "linux/arm64"]),
    ("dev", {"api": {"platform": "windows/amd64"}}, ["catalogizer:api.platform", "not a Linux platform"]),
    ("dev", {"health": {"waitTimeoutSeconds": 5}}, ["catalogizer:health.waitTimeoutSeconds", "outside 10-3600"]),
    ("dev", {"restoreFrom": "backups/none.dump"}, ["catalogizer:restoreFrom", "cannot read", "none.dump"]),
    # Issue 10 outcome 8: hostile or absurd values.
    *[
        ("dev", {"api": {"mediaRoot": path}}, ["catalogizer:api.mediaRoot", "system folder", "dedicated folder"])
        for path in ("/", "/etc", "/var/run", "/proc", "/sys", "/boot", "/usr", "/var/lib/docker", "/var", "/etc/x")
    ],
    *[
        ("dev", {"backup": {"dir": path}}, ["catalogizer:backup.dir", "system folder"])
        for path in ("/", "/etc", "/var/run/x", "/usr/local", "/var/lib/docker/volumes")
    ],
    ("dev", {"postgres": {"image": "--volume=/:/host"}}, ["catalogizer:postgres.image", "not a valid image reference"]),
    ("dev", {"proxy": {"image": "nginx;id"}}, ["catalogizer:proxy.image", "not a valid image reference"]),
    ("dev", {"redis": {"image": "redis 7"}}, ["catalogizer:redis.image", "not a valid image reference"]),
    ("prod", {"monitoring": {"grafanaImage": "-it"}}, ["catalogizer:monitoring.grafanaImage", "image reference"]),
    (
        "dev",
        {"api": {"dockerfile": "../../../etc/passwd"}},
        ["catalogizer:api.dockerfile", "outside the build context"],
    ),
    ("dev", {"health": {"probeAddress": "127.0.0.1; id"}}, ["catalogizer:health.probeAddress", "neither an IP"]),
    ("dev", {"health": {"probeAddress": "http://x"}}, ["catalogizer:health.probeAddress", "neither an IP"]),
    ("prod", {"api": {"corsOrigins": "http://*"}}, ["catalogizer:api.corsOrigins", "refused in production"]),
    ("prod", {"api": {"corsOrigins": "https://*.example.com"}}, ["catalogizer:api.corsOrigins", "refused"]),
    ("prod", {"api": {"corsOrigins": "http://catalog.example.com"}}, ["catalogizer:api.corsOrigins", "https://"]),
    ("dev", {"domain": "localhost\n"}, ["catalogizer:domain", "whitespace or a newline"]),
    ("dev", {"api": {"adminUsername": "admin "}}, ["catalogizer:api.adminUsername", "whitespace"]),
    ("dev", {"proxy": {"httpPort": "\u0668\u0660"}}, ["catalogizer:proxy.httpPort", "whole number"]),
    ("dev", {"api": {"replicas": "\uff12"}}, ["catalogizer:api.replicas", "whole number"]),
    ("dev", {"preflight": {"minFreeGb": 0}}, ["catalogizer:preflight.minFreeGb", "outside 1-100000"]),
    ("dev", {"api": {"memoryMb": 1048576}}, ["catalogizer:api.memoryMb", "more than this host's"]),
    # Off-host backups (issue 11).
    ("dev", {"backup": {"repository": "b2:bucket/x"}}, ["catalogizer:backup.repository", "'b2'", "sftp:user@host"]),
    ("dev", {"backup": {"repository": "sftp:"}}, ["catalogizer:backup.repository", "not a repository kind"]),
    (
        "dev",
        {"backup": {"repository": "rest:https://u:pw@host/"}},
        ["catalogizer:backup.repository", "password in its URL", "backupRepositoryEnv"],
    ),
    ("dev", {"backup": {"keepDaily": 7}}, ["catalogizer:backup.keepDaily", "only used with an off-host repository"]),
    (
        "dev",
        {"backup": {"repository": "/srv/r", "keepWeekly": -1}},
        ["catalogizer:backup.keepWeekly", "outside 0-1000"],
    ),
    (
        "dev",
        {"backup": {"repository": "/srv/r", "drillSchedule": "weekly"}},
        ["catalogizer:backup.drillSchedule", "5 fields", "0 4 * * 0"],
    ),
    ("dev", {"restoreFrom": "restic:latest"}, ["catalogizer:restoreFrom", "catalogizer:backup.repository is not set"]),
    (
        "dev",
        {"backup": {"repository": "/srv/r"}, "restoreFrom": "restic:../x"},
        ["catalogizer:restoreFrom", "not a snapshot", "restic:latest"],
    ),
    ("dev", {"backupRepositoryPasword": "x"}, ["unknown key", "Did you mean 'catalogizer:backupRepositoryPassword'?"]),
    (
        "prod",
        {"alerts": {"webhookUrls": ["https://ok.example.com/a", "hooks.slack.com/services/x"]}},
        ["catalogizer:alerts.webhookUrls[1]", "'hooks.slack.com/services/x'", "http(s) URL"],
    ),
    ("prod", {"alerts": {"webhookUrls": "ftp://x.example.com"}}, ["catalogizer:alerts.webhookUrls[0]", "ftp://"]),
    ("prod", {"alerts": {"webhookUrls": {"a": 1}}}, ["catalogizer:alerts.webhookUrls", "list of URLs"]),
    (
        "prod",
        {"alerts": {"email": {"to": "ops.example.com", "from": "a@example.com", "smarthost": "smtp.example.com:25"}}},
        ["catalogizer:alerts.email.to", "'ops.example.com'", "not an e-mail address"],
    ),
    (
        "prod",
        {"alerts": {"email": {"to": "a@example.com, b@example.com", "from": "a@x.io", "smarthost": "smtp.x.io:25"}}},
        ["catalogizer:alerts.email.to", "one address"],
    ),
    (
        "prod",
        {"alerts": {"email": {"to": "a@example.com", "from": "a@example.com", "smarthost": "smtp.example.com"}}},
        ["catalogizer:alerts.email.smarthost", "host:port", "smtp.example.com:587"],
    ),
    ("prod", {"alerts": {"email": {"to": "a@example.com"}}}, ["catalogizer:alerts.email.from", "is required"]),
    (
        "prod",
        {"alerts": {"email": {"to": "a@x.io", "from": "b@x.io", "smarthost": "s.x.io:587", "username": "u"}}},
        ["catalogizer:alerts.email.username", "catalogizer:alertsSmtpPassword", "--secret"],
    ),
    ("prod", {"alerts": {"email": {"too": "a@x.io"}}}, ["catalogizer:alerts.email", "unknown key 'too'", "'to'"]),
    ("prod", {"alerts": {"repeatIntervalHours": 0}}, ["catalogizer:alerts.repeatIntervalHours", "outside 1-168"]),
    (
        "dev",
        {"alerts": {"webhookUrls": ["https://alerts.example.com/hook"]}},
        ["catalogizer:alerts", "monitoring.enabled is false"],
    ),
    ("prod", {"monitoring": {"alertmanagerPort": 3000}}, ["catalogizer:monitoring.alertmanagerPort", "grafanaPort"]),
    ("prod", {"monitoring": {"scrapeIntervalSeconds": 0}}, ["catalogizer:monitoring.scrapeIntervalSeconds", "1-300"]),
]


@pytest.mark.parametrize(("stack", "overrides", "fragments"), BAD_INPUTS, ids=[str(o) for _, o, _ in BAD_INPUTS])
def test_bad_input_fails_before_any_resource(
    workspace: Workspace, stack: str, overrides: dict, fragments: list[str]
) -> None:
    failure = workspace.fails(stack, overrides)
    assert isinstance(failure.error, ConfigError), failure.error
    for fragment in fragments:
        assert fragment in str(failure.error)
    assert failure.declared == [], "resources were declared before validation finished"


def test_jwt_secret_shorter_than_32_is_refused_without_echoing_it(workspace: Workspace) -> None:
    with pytest.raises(Exception) as caught:
        workspace.deploy("dev", secrets={"jwtSecret": "short-but-secret-value"})
    message = str(caught.value)
    assert "catalogizer:jwtSecret" in message and "at least 32" in message
    assert "short-but-secret-value" not in message


def test_secret_set_in_plain_text_is_refused(workspace: Workspace) -> None:
    failure = workspace.fails("dev", {"postgresPassword": "plain-text-password-1234"})
    message = str(failure.error)
    assert "catalogizer:postgresPassword" in message and "plain text" in message and "--secret" in message
    assert "plain-text-password-1234" not in message
    assert failure.declared == []


def test_files_mode_key_that_does_not_match_the_certificate(workspace: Workspace, tmp_path: Path) -> None:
    other = write_self_signed(tmp_path / "other")
    failure = workspace.fails("prod", {"tls": {"keyFile": str(other.key_file)}})
    assert "catalogizer:tls.keyFile" in str(failure.error) and "does not match the certificate" in str(failure.error)


def test_files_mode_expired_certificate(workspace: Workspace, tmp_path: Path) -> None:
    expired = write_self_signed(tmp_path / "expired", valid_days=-1, not_before_days_ago=30)
    failure = workspace.fails("prod", {"tls": {"certFile": str(expired.cert_file), "keyFile": str(expired.key_file)}})
    assert "catalogizer:tls.certFile" in str(failure.error) and "expired" in str(failure.error)


def test_files_mode_unreadable_key_is_named(workspace: Workspace) -> None:
    workspace.certs.key_file.write_text("not a key")
    failure = workspace.fails("prod")
    assert "catalogizer:tls.keyFile" in str(failure.error) and "not an unencrypted PEM private key" in str(
        failure.error
    )


def test_restore_from_a_corrupt_dump_is_refused(workspace: Workspace) -> None:
    dump = workspace.project / "backups" / "catalogizer-dev_20261128T000000000Z.dump"
    dump.parent.mkdir()
    dump.write_bytes(b"PGDMP whole dump")
    (dump.parent / (dump.name + ".sha256")).write_text(hashlib.sha256(b"PGDMP whole dump").hexdigest() + "  x\n")
    dump.write_bytes(b"PGDMP who")  # truncated after the checksum was written
    failure = workspace.fails("dev", {"restoreFrom": str(dump)})
    assert "catalogizer:restoreFrom" in str(failure.error) and "does not match its sha256" in str(failure.error)


def test_restore_from_without_checksum_is_refused(workspace: Workspace) -> None:
    dump = workspace.project / "lonely.dump"
    dump.write_bytes(b"PGDMP")
    failure = workspace.fails("dev", {"restoreFrom": str(dump)})
    assert "lonely.dump.sha256 is missing" in str(failure.error)


def test_defaults_when_only_the_source_is_set(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {"proxy": None, "tls": None, "backup": None, "appEnv": None, "domain": None})
    assert deployment.outputs["url"] == "https://localhost"
    nginx = deployment.container("nginx")
    assert {(p["internal"], p["external"]) for p in nginx.inputs["ports"]} == {(80, 80), (443, 443)}
    assert deployment.container("postgres").inputs["memory"] == 2048
    assert deployment.container("redis").inputs["memory"] == 512
    assert len(deployment.containers("api")) == 1
    assert deployment.env(deployment.container("api"))["GIN_MODE"] == "debug"  # appEnv defaults to development


def test_secret_with_a_trailing_newline_is_refused_without_echoing_it(workspace: Workspace) -> None:
    with pytest.raises(Exception) as caught:
        workspace.deploy("dev", secrets={"redisPassword": "a-long-redis-password\n"})
    message = str(caught.value)
    assert "catalogizer:redisPassword" in message and "newline" in message
    assert "a-long-redis-password" not in message


def test_smtp_password_without_email_is_refused_without_echoing_it(workspace: Workspace) -> None:
    with pytest.raises(Exception) as caught:
        workspace.deploy("prod", secrets={"alertsSmtpPassword": "smtp-secret-value"})
    message = str(caught.value)
    assert "catalogizer:alertsSmtpPassword" in message and "catalogizer:alerts.email" in message
    assert "smtp-secret-value" not in message
