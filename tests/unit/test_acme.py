"""Issue 13: tls.mode=acme, its validation and its wiring, under Pulumi's mocks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from program import Deployment
from workspace import Workspace

from components.acme import CERTS_DIR, CHECK_SECONDS, DATA_DIR, RENEW_DAYS, WEBROOT
from components.monitoring import PROMETHEUS_RULES
from settings.edge import LETSENCRYPT_PRODUCTION, LETSENCRYPT_STAGING

EMAIL = "ops@example.com"
ISSUED = {
    "status": "ok",
    "renewed": True,
    "asked": True,
    "notAfter": "2027-02-27T09:00:00Z",
    "serial": "0a1b",
    "sha256": "f" * 64,
    "certificate": "-----BEGIN CERTIFICATE-----\nissued\n-----END CERTIFICATE-----\n",
}
ACME_PROD: dict[str, Any] = {"tls": {"mode": "acme", "acmeEmail": EMAIL, "certFile": None, "keyFile": None}}


def deploy_acme(workspace: Workspace, tls: dict[str, Any] | None = None) -> Deployment:
    overrides = {"tls": {**ACME_PROD["tls"], **(tls or {})}}
    return workspace.deploy("prod", overrides, command_stdout={"acme-issue": json.dumps(ISSUED)})


@pytest.fixture
def acme(workspace: Workspace) -> Deployment:
    return deploy_acme(workspace)


def error(workspace: Workspace, stack: str, tls: dict[str, Any]) -> str:
    failed = workspace.fails(stack, {"tls": tls})
    assert not failed.declared, "a bad config declared resources"
    return str(failed)


def test_missing_email_names_the_key_and_the_fix(workspace: Workspace) -> None:
    message = error(workspace, "dev", {"mode": "acme"})
    assert message == (
        "catalogizer:tls.acmeEmail: required with mode=acme (the ACME account's contact for expiry notices); "
        "e.g. `pulumi config set --path 'catalogizer:tls.acmeEmail' ops@example.com`."
    )


@pytest.mark.parametrize("email", ["ops", "ops@localhost", "a b@example.com"])
def test_bad_email_is_refused(workspace: Workspace, email: str) -> None:
    message = error(workspace, "dev", {"mode": "acme", "acmeEmail": email})
    assert message == f"catalogizer:tls.acmeEmail: {email!r} is not an e-mail address; use e.g. ops@example.com."


@pytest.mark.parametrize(
    "server", ["http://acme.example.com/directory", "letsencrypt", "https://", "https://user@acme.example.com/dir"]
)
def test_bad_server_url_is_refused(workspace: Workspace, server: str) -> None:
    message = error(workspace, "dev", {"mode": "acme", "acmeEmail": EMAIL, "acmeServer": server})
    assert message == (
        f"catalogizer:tls.acmeServer: {server!r} is not an ACME directory URL; use an https:// URL "
        f"(e.g. {LETSENCRYPT_PRODUCTION}), 'staging' for Let's Encrypt's staging, or remove it for production."
    )


@pytest.mark.parametrize("domain", ["localhost", "192.0.2.10", "catalog.localhost"])
def test_lets_encrypt_needs_a_public_name(workspace: Workspace, domain: str) -> None:
    failed = workspace.fails("dev", {"domain": domain, "tls": {"mode": "acme", "acmeEmail": EMAIL}})
    assert not failed.declared
    assert str(failed) == (
        f"catalogizer:domain: {domain!r} cannot get a certificate from Let's Encrypt, which needs a public DNS "
        "name pointing at this host (e.g. catalog.example.com); set catalogizer:domain, or point "
        "tls.acmeServer at a private ACME server."
    )
    # A private ACME server decides for itself (Pebble issues for any name).
    private = {"mode": "acme", "acmeEmail": EMAIL, "acmeServer": "https://pebble:14000/dir"}
    assert workspace.deploy(
        "dev", {"domain": domain, "tls": private}, command_stdout={"acme-issue": json.dumps(ISSUED)}
    )


def test_ca_bundle_must_be_readable_pem(workspace: Workspace) -> None:
    missing = error(workspace, "dev", {"mode": "acme", "acmeEmail": EMAIL, "acmeCaBundle": "nope.pem"})
    assert missing.startswith("catalogizer:tls.acmeCaBundle: cannot read ")
    assert "nope.pem" in missing and "Check the path" in missing
    (workspace.project / "junk.pem").write_text("not a certificate\n")
    junk = error(workspace, "dev", {"mode": "acme", "acmeEmail": EMAIL, "acmeCaBundle": "junk.pem"})
    assert junk.startswith("catalogizer:tls.acmeCaBundle: ")
    assert "is not a PEM certificate bundle" in junk


def test_acme_keys_belong_to_acme_mode(workspace: Workspace) -> None:
    message = error(workspace, "dev", {"mode": "selfSigned", "acmeEmail": EMAIL})
    assert message == "catalogizer:tls.acmeEmail: only used with mode=acme; remove it or set mode=acme."
    message = error(workspace, "dev", {"mode": "acme", "acmeEmail": EMAIL, "certFile": "ssl/cert.pem"})
    assert message == "catalogizer:tls.certFile: only used with mode=files; remove it or set mode=files."


def test_production_accepts_acme_or_files_only(workspace: Workspace) -> None:
    message = error(workspace, "prod", {"mode": "selfSigned", "certFile": None, "keyFile": None})
    assert message.startswith("catalogizer:tls.mode: 'selfSigned' is refused for appEnv=production")
    assert "use 'acme'" in message and "'files'" in message


def test_servers(workspace: Workspace) -> None:
    default = deploy_acme(workspace)
    assert default.env(default.container("acme"))["ACME_SERVER"] == LETSENCRYPT_PRODUCTION
    staging = deploy_acme(workspace, {"acmeServer": "staging"})
    assert staging.env(staging.container("acme"))["ACME_SERVER"] == LETSENCRYPT_STAGING
    private = deploy_acme(workspace, {"acmeServer": "https://acme.internal:14000/dir"})
    assert private.env(private.container("acme"))["ACME_SERVER"] == "https://acme.internal:14000/dir"


def test_sidecar_shares_nginx_namespaces_and_owns_the_volumes(acme: Deployment) -> None:
    sidecar, nginx = acme.container("acme"), acme.container("nginx")
    nginx_id = acme.by_urn(nginx.urn).state.get("id") or f"{nginx.name}-id"
    assert sidecar.inputs["networkMode"] == f"container:{nginx_id}"
    assert sidecar.inputs["pidMode"] == f"container:{nginx_id}"
    assert acme.waits_for(sidecar, nginx)
    mounts = {m["target"]: (m["source"], m.get("readOnly", False)) for m in sidecar.inputs["mounts"]}
    assert mounts == {
        DATA_DIR: ("catalogizer-acme-data", False),
        CERTS_DIR: ("catalogizer-acme-certs", False),
        WEBROOT: ("catalogizer-acme-challenge", False),
    }
    # nginx reads the served certificate and the challenge files, and writes neither.
    nginx_mounts = {m["target"]: (m["source"], m.get("readOnly", False)) for m in nginx.inputs["mounts"]}
    assert nginx_mounts[CERTS_DIR] == ("catalogizer-acme-certs", True)
    assert nginx_mounts[WEBROOT] == ("catalogizer-acme-challenge", True)
    assert DATA_DIR not in nginx_mounts
    assert sidecar.inputs["healthcheck"]["tests"] == ["CMD", "python3", "/app/acme_client.py", "--check"]
    assert "user" not in sidecar.inputs  # root without capabilities: see container_defaults HARDENING["acme"]
    assert sidecar.inputs["capabilities"] == {"drops": ["ALL"], "adds": []}


def test_sidecar_environment_holds_no_secret(acme: Deployment) -> None:
    env = acme.env(acme.container("acme"))
    assert env == {
        "ACME_DOMAIN": "catalogizer.example.com",
        "ACME_EMAIL": EMAIL,
        "ACME_SERVER": LETSENCRYPT_PRODUCTION,
        "ACME_PATH": DATA_DIR,
        "ACME_CERTS": CERTS_DIR,
        "ACME_WEBROOT": WEBROOT,
        "ACME_RENEW_DAYS": str(RENEW_DAYS),
        "ACME_CHECK_SECONDS": str(CHECK_SECONDS),
        "ACME_HTTPS_PORT": "443",
    }
    assert CHECK_SECONDS == 12 * 3600 and RENEW_DAYS == 30


def test_image_is_built_from_the_stack_nginx(acme: Deployment) -> None:
    (image,) = [r for r in acme.of_type("docker:index/image:Image") if r.name == "acme-image"]
    assert image.inputs["build"]["args"] == {"BASE_IMAGE": "nginx:1.27-alpine"}
    assert image.inputs["build"]["dockerfile"].endswith("dockerfiles/acme/Dockerfile")
    assert image.inputs["skipPush"] is True


def test_account_volume_is_protected_the_others_are_not(acme: Deployment) -> None:
    volumes = {r.inputs["name"]: r for r in acme.of_type("docker:index/volume:Volume")}
    assert volumes["catalogizer-acme-data"].protect and volumes["catalogizer-acme-data"].retain_on_delete
    for name in ("catalogizer-acme-certs", "catalogizer-acme-challenge"):
        assert not volumes[name].protect and not volumes[name].retain_on_delete


def test_nginx_serves_the_sidecar_certificate_and_the_challenge(acme: Deployment) -> None:
    config = acme.named("proxy-config")
    env = config.inputs["environment"]
    assert env["NGINX_CERTS_VOLUME"] == "catalogizer-acme-certs"
    conf = env["NGINX_CONF"]
    assert f"ssl_certificate {CERTS_DIR}/current/fullchain.pem;" in conf
    assert f"ssl_certificate_key {CERTS_DIR}/current/key.pem;" in conf
    assert f"root {WEBROOT};" in conf
    # The bootstrap pair (pulumi-tls) is what the hook seeds; its key only as a secret.
    assert "TLS_KEY_PEM" in env and "environment.TLS_KEY_PEM" in config.secret_paths


def test_issue_hook_runs_after_the_sidecar_and_before_the_health_check(acme: Deployment) -> None:
    issue, sidecar, health = acme.named("acme-issue"), acme.container("acme"), acme.named("health-verify")
    assert issue.inputs["create"] == "python3 scripts/acme_issue.py"
    assert issue.inputs["environment"]["ACME_CONTAINER"] == sidecar.inputs["name"]
    assert acme.waits_for(issue, sidecar)
    assert acme.waits_for(health, issue)
    # No CA bundle: the served chain must verify against the system's roots (Let's Encrypt's).
    assert health.inputs["environment"]["HEALTH_SYSTEM_CA"] == "true"
    assert "HEALTH_CA_PEM" not in health.inputs["environment"]


def test_health_check_trusts_the_ca_bundle_when_given(workspace: Workspace) -> None:
    bundle = workspace.certs.cert_pem
    (workspace.project / "acme-ca.pem").write_text(bundle)
    deployment = deploy_acme(workspace, {"acmeServer": "https://acme.internal/dir", "acmeCaBundle": "acme-ca.pem"})
    health = deployment.named("health-verify")
    assert health.inputs["environment"]["HEALTH_CA_PEM"] == bundle
    assert "HEALTH_SYSTEM_CA" not in health.inputs["environment"]
    assert deployment.env(deployment.container("acme"))["ACME_CA_BUNDLE_PEM"] == bundle


def test_outputs_follow_the_served_certificate(acme: Deployment) -> None:
    assert acme.outputs["tlsExpiry"] == ISSUED["notAfter"]
    assert acme.outputs["tlsCertificate"] == ISSUED["certificate"]
    assert acme.outputs["acme"] == {
        k: ISSUED[k] for k in ("status", "renewed", "asked", "notAfter", "serial", "sha256")
    }
    assert acme.outputs["containers"]["acme"] == "catalogizer-acme"


def test_other_modes_declare_no_acme_resources(prod: Deployment) -> None:
    assert not prod.containers("acme")
    assert not [r for r in prod.resources if "acme" in r.name]
    assert "NGINX_CERTS_VOLUME" not in prod.named("proxy-config").inputs["environment"]
    assert "acme" not in prod.outputs


def test_the_renewal_alert_comes_with_acme(acme: Deployment, prod: Deployment) -> None:
    def rule_names(deployment: Deployment) -> set[str]:
        prometheus = deployment.container("prometheus")
        upload = next(u for u in prometheus.inputs["uploads"] if u["file"] == PROMETHEUS_RULES)
        body = "\n".join(line for line in upload["content"].splitlines() if not line.startswith("#"))
        return {rule["alert"] for rule in json.loads(body)["groups"][0]["rules"]}

    assert "AcmeRenewalOverdue" in rule_names(acme)
    assert "AcmeRenewalOverdue" not in rule_names(prod)


def test_preflight_reads_the_served_certificate_volume(acme: Deployment) -> None:
    env = acme.named("preflight-checks").inputs["environment"]
    assert env["TLS_CERT_VOLUME"] == "catalogizer-acme-certs"
    assert "TLS_CERT_FILE" not in env
    volume = next(r for r in acme.of_type("docker:index/volume:Volume") if r.name == "volumes-acme-certs")
    assert volume.inputs["name"] == env["TLS_CERT_VOLUME"]
