from __future__ import annotations

import datetime
import logging

import pytest
from certs import write_self_signed
from program import Deployment
from workspace import Workspace

from components.proxy import CONF_PATH
from rendering.nginx import NginxSite, render_nginx_conf


def _uploads(container) -> dict[str, str]:
    return {u["file"]: u["content"] for u in container.inputs["uploads"]}


def test_proxy_delivers_rendered_config_and_tls_material(dev: Deployment) -> None:
    nginx, carrier = dev.container("nginx"), dev.container("nginx-config")
    # nginx's root filesystem is read-only: its files arrive through the config carrier's volume.
    assert "uploads" not in nginx.inputs and nginx.inputs["readOnly"] is True
    assert carrier.inputs["start"] is False and carrier.inputs["mustRun"] is False
    assert carrier.inputs["networkMode"] == "none"
    (volume,) = carrier.inputs["mounts"]
    assert {"target": "/etc/nginx/catalogizer", "type": "volume", "source": volume["source"], "readOnly": True} in (
        nginx.inputs["mounts"]
    )
    assert dev.waits_for(nginx, carrier) and carrier.delete_before_replace
    files = _uploads(carrier)
    conf = files[CONF_PATH]
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    assert "return 301 https://localhost:8443$request_uri;" in conf
    # Whenever TLS is on, not only in production.
    assert 'Strict-Transport-Security "max-age=63072000; includeSubDomains"' in conf
    assert "ssl_stapling" not in conf  # a self-signed certificate names no responder
    assert files["/etc/nginx/catalogizer/tls/cert.pem"] == dev.outputs["tlsCertificate"]
    key_index = list(files).index("/etc/nginx/catalogizer/tls/key.pem")
    # Issue 10 outcome 5: the key readable by root (the master) only.
    modes = {u["file"]: u["permissions"] for u in carrier.inputs["uploads"]}
    assert modes["/etc/nginx/catalogizer/tls/key.pem"] == "0600"
    assert nginx.inputs["command"] == ["nginx", "-c", CONF_PATH, "-g", "daemon off;"]
    assert carrier.is_secret(f"uploads[{key_index}].content")
    assert not carrier.is_secret("uploads[0].content")
    # A new file content replaces nginx (labels are ForceNew), so it loads the new files.
    config_label = [label for label in nginx.inputs["labels"] if label["label"] == "catalogizer.config-sha256"]
    assert len(config_label) == 1 and len(config_label[0]["value"]) == 64
    assert {(p["internal"], p["external"]) for p in nginx.inputs["ports"]} == {(80, 8080), (443, 8443)}
    assert nginx.delete_before_replace
    assert nginx.inputs["healthcheck"]["tests"][-1] == "http://127.0.0.1:80/nginx-health"
    assert nginx.inputs["memory"] == 256
    assert dev.named("proxy-image").inputs["name"] == "nginx:1.27-alpine"
    assert dev.outputs["url"] == "https://localhost:8443"
    assert dev.outputs["healthUrl"] == "https://localhost:8443/health"


def test_production_config_has_hsts_and_standard_ports(prod: Deployment) -> None:
    nginx = prod.container("nginx")
    conf = _uploads(prod.container("nginx-config"))[CONF_PATH]
    assert "Strict-Transport-Security" in conf and "return 301 https://catalogizer.example.com$request_uri;" in conf
    assert {(p["internal"], p["external"]) for p in nginx.inputs["ports"]} == {(80, 80), (443, 443)}
    assert prod.outputs["url"] == "https://catalogizer.example.com"


def test_rendered_config_is_the_pure_function_output(dev: Deployment) -> None:
    conf = _uploads(dev.container("nginx-config"))[CONF_PATH]
    assert conf == render_nginx_conf(
        NginxSite(
            server_name="localhost",
            tls_enabled=True,
            hsts=True,
            public_https_port=8443,
            cert_path="/etc/nginx/catalogizer/tls/cert.pem",
            key_path="/etc/nginx/catalogizer/tls/key.pem",
            temp_dir="/var/cache/nginx",
        )
    )


def test_tls_off_serves_plain_http_outside_production(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {"appEnv": "staging", "tls": {"mode": "off"}})
    nginx = deployment.container("nginx")
    assert set(_uploads(deployment.container("nginx-config"))) == {CONF_PATH}
    assert [(p["internal"], p["external"]) for p in nginx.inputs["ports"]] == [(80, 8080)]
    assert deployment.outputs["url"] == "http://localhost:8080"
    assert deployment.outputs["tlsCertificate"] is None


def test_self_signed_certificate(dev: Deployment) -> None:
    cert = dev.named("tls-cert")
    assert cert.inputs["dnsNames"] == ["localhost"]
    assert cert.inputs["ipAddresses"] == ["127.0.0.1"]
    assert cert.inputs["earlyRenewalHours"] >= 24 * 7
    assert cert.inputs["validityPeriodHours"] > cert.inputs["earlyRenewalHours"]
    assert "server_auth" in cert.inputs["allowedUses"]
    assert cert.inputs["subject"]["commonName"] == "localhost"
    assert dev.outputs["tlsExpiry"] == cert.state["validityEndTime"]
    assert dev.named("tls-key").parent == cert.parent


def test_self_signed_certificate_names_the_domain(workspace: Workspace) -> None:
    cert = workspace.deploy("dev", {"domain": "catalog.internal"}).named("tls-cert")
    assert cert.inputs["dnsNames"] == ["catalog.internal", "localhost"]


def test_files_mode_uses_the_operator_files(workspace: Workspace, prod: Deployment) -> None:
    files = _uploads(prod.container("nginx-config"))
    assert files["/etc/nginx/catalogizer/tls/cert.pem"] == workspace.certs.cert_pem
    assert files["/etc/nginx/catalogizer/tls/key.pem"] == workspace.certs.key_pem
    assert prod.outputs["tlsCertificate"] == workspace.certs.cert_pem
    expiry = datetime.datetime.strptime(prod.outputs["tlsExpiry"], "%Y-%m-%dT%H:%M:%SZ")
    assert 363 <= (expiry - datetime.datetime.now()).days <= 365
    assert not prod.of_type("tls:index/selfSignedCert:SelfSignedCert")


def test_files_certificate_close_to_expiry_warns(workspace: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    soon = write_self_signed(workspace.project / "soon", "catalogizer.example.com", valid_days=10)
    workspace.deploy("prod", {"tls": {"certFile": str(soon.cert_file), "keyFile": str(soon.key_file)}})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("catalogizer:tls.certFile" in w and "in 9 days" in w and "renew it" in w for w in warnings), warnings


def test_files_certificate_far_from_expiry_does_not_warn(
    workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    workspace.deploy("prod")  # the workspace certificate is valid for a year
    assert not [r for r in caplog.records if "expires on" in r.getMessage()]


def test_ocsp_stapling_only_for_a_certificate_naming_a_responder(workspace: Workspace) -> None:
    stapled = write_self_signed(
        workspace.project / "ocsp", "catalogizer.example.com", valid_days=90, ocsp_url="http://ocsp.example.net"
    )
    tls = {"certFile": str(stapled.cert_file), "keyFile": str(stapled.key_file)}
    conf = _uploads(workspace.deploy("prod", {"tls": tls}).container("nginx-config"))[CONF_PATH]
    assert "ssl_stapling on;" in conf
    plain = _uploads(workspace.deploy("prod").container("nginx-config"))[CONF_PATH]
    assert "ssl_stapling" not in plain


def test_hsts_subdomains_configurable(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {"tls": {"hstsIncludeSubdomains": False}})
    conf = _uploads(deployment.container("nginx-config"))[CONF_PATH]
    assert 'add_header Strict-Transport-Security "max-age=63072000" always;' in conf
