from __future__ import annotations

import datetime
import logging

import pytest
from certs import write_self_signed
from program import Deployment
from workspace import Workspace

from components.proxy import LIVE_CONF, LIVE_DIR, MAINTENANCE_FLAG, render_live_conf
from rendering.nginx import NginxSite, render_nginx_conf


def _config(deployment: Deployment) -> dict[str, str]:
    return deployment.named("proxy-config").inputs["environment"]


def test_proxy_config_reaches_nginx_by_the_hook_not_by_the_container(dev: Deployment) -> None:
    nginx = dev.container("nginx")
    hook = dev.named("proxy-config")
    env = _config(dev)
    conf = env["NGINX_CONF"]
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    assert "return 301 https://$host:8443$request_uri;" in conf
    assert "Strict-Transport-Security" not in conf  # not production
    assert "ssl_certificate tls/cert.pem;" in conf and "ssl_certificate_key tls/key.pem;" in conf
    assert env["TLS_CERT_PEM"] == dev.outputs["tlsCertificate"]
    assert hook.is_secret("environment.TLS_KEY_PEM") and not hook.is_secret("environment.NGINX_CONF")
    assert env["NGINX_CONTAINER"] == nginx.inputs["name"] == "catalogizer-dev-nginx"
    assert env["NGINX_VOLUME"] == "catalogizer-dev-nginx-config"
    assert env["MAINTENANCE"] == "false"
    # The container never carries configuration: a config change can never replace it.
    assert not nginx.inputs.get("uploads")
    assert nginx.inputs["command"] == ["nginx", "-c", LIVE_CONF, "-g", "daemon off;"]
    live = [m for m in nginx.inputs["mounts"] if m["target"] == LIVE_DIR]
    assert live == [{"target": LIVE_DIR, "type": "volume", "source": env["NGINX_VOLUME"], "readOnly": True}]
    assert dev.waits_for(nginx, hook)
    assert {(p["internal"], p["external"]) for p in nginx.inputs["ports"]} == {(80, 8080), (443, 8443)}
    assert nginx.delete_before_replace
    assert nginx.inputs["healthcheck"]["tests"][-1] == "http://127.0.0.1:80/nginx-health"
    assert nginx.inputs["memory"] == 256
    assert dev.named("proxy-image").inputs["name"] == "nginx:1.27-alpine"
    assert dev.outputs["url"] == "https://localhost:8443"
    assert dev.outputs["healthUrl"] == "https://localhost:8443/health"


def test_traffic_switches_only_after_the_new_api_containers(dev: Deployment) -> None:
    hook = dev.named("proxy-config")
    for api in dev.containers("api"):
        assert dev.waits_for(hook, api), api.name
        alias = api.inputs["networksAdvanced"][0]["aliases"]
        assert alias[0] == "api" and alias[1].startswith("api-") and len(alias[1]) == len("api-") + 12
        assert f'set $api_upstream "{alias[1]}";' in _config(dev)["NGINX_CONF"]
    health = dev.named("health-verify")
    assert dev.waits_for(health, hook)


def test_a_new_api_version_changes_only_the_switch_not_the_proxy(workspace: Workspace) -> None:
    before = workspace.deploy("dev")
    after = workspace.deploy("dev", {"api": {"logLevel": "info"}})
    assert _config(before)["NGINX_CONF"] != _config(after)["NGINX_CONF"]
    assert _config(before)["NGINX_CONFIG_ID"] != _config(after)["NGINX_CONFIG_ID"]
    assert before.container("nginx").inputs == after.container("nginx").inputs


def test_production_config_has_hsts_and_standard_ports(prod: Deployment) -> None:
    nginx = prod.container("nginx")
    conf = _config(prod)["NGINX_CONF"]
    assert "Strict-Transport-Security" in conf and "return 301 https://$host$request_uri;" in conf
    assert {(p["internal"], p["external"]) for p in nginx.inputs["ports"]} == {(80, 80), (443, 443)}
    assert prod.outputs["url"] == "https://catalogizer.example.com"


def test_rendered_config_is_the_pure_function_output(dev: Deployment) -> None:
    env = _config(dev)
    alias = dev.containers("api")[0].inputs["networksAdvanced"][0]["aliases"][1]
    site = NginxSite(
        server_name="localhost",
        tls_enabled=True,
        hsts=False,
        public_https_port=8443,
        api_host=alias,
        cert_path="tls/cert.pem",
        key_path="tls/key.pem",
        maintenance_flag=MAINTENANCE_FLAG,
    )
    assert (env["NGINX_CONF"], env["NGINX_CONFIG_ID"]) == render_live_conf(site, env["TLS_CERT_PEM"])
    assert f'return 200 "ok {env["NGINX_CONFIG_ID"]}\\n";' in env["NGINX_CONF"]
    assert f"if (-f {MAINTENANCE_FLAG})" in env["NGINX_CONF"]
    assert render_nginx_conf(site) != env["NGINX_CONF"]  # the id is rendered in


def test_maintenance_by_config(workspace: Workspace) -> None:
    assert _config(workspace.deploy("dev", {"maintenance": "true"}))["MAINTENANCE"] == "true"


def test_tls_off_serves_plain_http_outside_production(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {"appEnv": "staging", "tls": {"mode": "off"}})
    nginx = deployment.container("nginx")
    env = _config(deployment)
    assert "TLS_CERT_PEM" not in env and "TLS_KEY_PEM" not in env and "ssl_certificate" not in env["NGINX_CONF"]
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
    env = _config(prod)
    assert env["TLS_CERT_PEM"] == workspace.certs.cert_pem
    assert env["TLS_KEY_PEM"] == workspace.certs.key_pem
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
