"""The alerting renderers: rules, Alertmanager's receivers, blackbox modules, prometheus.yml's
alerting parts and the Grafana dashboard. The tools themselves check them in tests/real."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from rendering.alerts import (
    ALERT_NAMES,
    AlertRoute,
    EmailReceiver,
    RuleParams,
    render_alert_rules,
    render_alertmanager_yml,
    render_blackbox_yml,
)
from rendering.dashboard import PANELS, render_dashboard, render_dashboard_provider
from rendering.monitoring import render_prometheus_yml

REQUIRED = {
    "ApiDown", "PublicUrlDown", "ApiHighErrorRatio", "PostgresDown", "RedisDown", "RedisMemoryNearLimit",
    "DiskFreeLow", "CertificateExpiringSoon", "CertificateExpiryCritical", "BackupOverdue",
    "OffsitePushFailed", "RestoreDrillFailed", "BackupSchedulerDown",
}  # fmt: skip


def _parse(text: str) -> Any:
    parsed = yaml.safe_load(text)  # how the Go tools read it
    assert parsed == json.loads("\n".join(line for line in text.splitlines() if not line.startswith("#")))
    return parsed


def _rules(params: RuleParams | None = None) -> dict[str, dict[str, Any]]:
    (group,) = _parse(render_alert_rules(params or RuleParams()))["groups"]
    return {rule["alert"]: rule for rule in group["rules"]}


def test_the_issue_s_alerts_exist_with_severity_summary_and_runbook() -> None:
    rules = _rules(RuleParams(acme_renew_days=30))
    assert set(rules) >= REQUIRED and set(rules) == set(ALERT_NAMES)
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["runbook"] == f"docs/operations.md#{name.lower()}"


def test_thresholds_come_from_the_parameters() -> None:
    rules = _rules(RuleParams(error_ratio_percent=12, min_free_gb=7))
    assert rules["ApiHighErrorRatio"]["expr"].endswith("> 0.12") and rules["ApiHighErrorRatio"]["for"] == "5m"
    assert rules["DiskFreeLow"]["expr"] == f"catalogizer_disk_free_bytes < {7 * 1024**3}"
    assert rules["CertificateExpiringSoon"]["expr"].endswith(f"< {14 * 86400}")
    assert rules["CertificateExpiryCritical"]["expr"].endswith(f"< {7 * 86400}")
    assert rules["CertificateExpiryCritical"]["labels"]["severity"] == "critical"


def test_acme_renewal_alert_only_with_acme() -> None:
    assert "AcmeRenewalOverdue" not in _rules()
    rule = _rules(RuleParams(acme_renew_days=30))["AcmeRenewalOverdue"]
    # A day into the renewal window: two twice-daily attempts have failed by then.
    assert rule["expr"] == f'probe_ssl_earliest_cert_expiry{{job="blackbox"}} - time() < {29 * 86400}'
    assert rule["for"] == "10m" and rule["labels"]["severity"] == "warning"


@pytest.mark.parametrize(
    "params",
    [
        RuleParams(error_ratio_percent=-1),
        RuleParams(min_free_gb=True),
        RuleParams(cert_critical_days=14),
        RuleParams(acme_renew_days=15),
    ],
)
def test_bad_rule_parameters_are_refused(params: RuleParams) -> None:
    with pytest.raises(ValueError):
        render_alert_rules(params)


def test_without_receivers_alerts_route_to_an_empty_receiver() -> None:
    config = _parse(render_alertmanager_yml(AlertRoute()))
    assert config["receivers"] == [{"name": "operators"}]
    assert config["route"]["receiver"] == "operators" and config["route"]["repeat_interval"] == "4h"


def test_slack_urls_get_slack_json_others_the_generic_webhook_and_both_send_resolved() -> None:
    route = AlertRoute(
        webhook_urls=["https://hooks.slack.com/services/T/B/X", "http://10.0.0.1:8080/hook"],
        repeat_interval_hours=2,
        group_wait_seconds=4,
        group_interval_seconds=8,
    )
    config = _parse(render_alertmanager_yml(route))
    (receiver,) = config["receivers"]
    assert receiver["slack_configs"][0]["api_url"] == "https://hooks.slack.com/services/T/B/X"
    assert receiver["webhook_configs"][0]["url"] == "http://10.0.0.1:8080/hook"
    assert receiver["slack_configs"][0]["send_resolved"] and receiver["webhook_configs"][0]["send_resolved"]
    assert config["route"] == {
        "receiver": "operators",
        "group_by": ["alertname"],
        "group_wait": "4s",
        "group_interval": "8s",
        "repeat_interval": "2h",
    }


def test_email_with_and_without_authentication() -> None:
    plain = EmailReceiver("ops@example.com", "cz@example.com", "smtp.example.com:25", None, None)
    (mail,) = _parse(render_alertmanager_yml(AlertRoute(email=plain)))["receivers"][0]["email_configs"]
    assert "auth_username" not in mail and "auth_password" not in mail and mail["send_resolved"] is True
    authed = EmailReceiver("ops@example.com", "cz@example.com", "smtp.example.com:587", "cz", "pw")
    (mail,) = _parse(render_alertmanager_yml(AlertRoute(email=authed)))["receivers"][0]["email_configs"]
    assert (mail["auth_username"], mail["auth_password"]) == ("cz", "pw")
    with pytest.raises(ValueError, match="password"):
        render_alertmanager_yml(AlertRoute(email=EmailReceiver("a@x.io", "b@x.io", "s:25", "cz", None)))


@pytest.mark.parametrize("route", [AlertRoute(webhook_urls=["hooks.slack.com/x"]), AlertRoute(repeat_interval_hours=0)])
def test_bad_routes_are_refused(route: AlertRoute) -> None:
    with pytest.raises(ValueError):
        render_alertmanager_yml(route)


def test_blackbox_verifies_tls_against_the_given_ca_or_probes_plain_http() -> None:
    https = _parse(render_blackbox_yml("catalog.example.com", "/etc/ca.pem"))["modules"]["public_health"]
    assert https["http"]["tls_config"] == {"server_name": "catalog.example.com", "ca_file": "/etc/ca.pem"}
    assert https["http"]["headers"] == {"Host": "catalog.example.com"} and https["http"]["fail_if_not_ssl"]
    plain = _parse(render_blackbox_yml("localhost", None))["modules"]["public_health"]["http"]
    assert "tls_config" not in plain and "fail_if_not_ssl" not in plain
    with pytest.raises(ValueError, match="server_name"):
        render_blackbox_yml("bad host", None)


def test_prometheus_yml_with_exporters_probe_and_alerting() -> None:
    text = render_prometheus_yml(
        targets={"postgres": "postgres-exporter:9187"},
        blackbox=("blackbox-exporter:9115", "public_health", "https://nginx:443/health"),
        alertmanager="alertmanager:9093",
        rule_files=["/etc/prometheus/alerts.yml"],
    )
    config = _parse(text)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["postgres"]["static_configs"] == [{"targets": ["postgres-exporter:9187"]}]
    probe = jobs["blackbox"]
    assert probe["metrics_path"] == "/probe" and probe["params"] == {"module": ["public_health"]}
    assert probe["static_configs"] == [{"targets": ["https://nginx:443/health"]}]
    assert probe["relabel_configs"][-1] == {"target_label": "__address__", "replacement": "blackbox-exporter:9115"}
    assert config["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"targets": {"postgres": "postgres-exporter"}},
        {"alertmanager": "alertmanager:99999"},
        {"blackbox": ("blackbox-exporter:9115", "m", "ftp://x")},
    ],
)
def test_prometheus_yml_refuses_bad_targets(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        render_prometheus_yml(**kwargs)


def test_dashboard_has_the_issue_s_panels_on_the_provisioned_datasource() -> None:
    dashboard = json.loads(render_dashboard())
    titles = [panel["title"] for panel in dashboard["panels"]]
    assert titles == [title for title, _, _ in PANELS]
    exprs = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    for metric in (
        "catalogizer_http_requests_total",
        'status=~"5.."',
        "catalogizer_http_request_duration_seconds_bucket",
        "pg_up",
        "redis_up",
        "catalogizer_backup_last_success_timestamp_seconds",
        "probe_ssl_earliest_cert_expiry",
    ):
        assert metric in exprs, metric
    assert all(panel["datasource"]["uid"] == "prometheus" for panel in dashboard["panels"])
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(PANELS)
    provider = _parse(render_dashboard_provider("/var/lib/dash"))["providers"][0]
    assert provider["options"]["path"] == "/var/lib/dash" and provider["type"] == "file"
    with pytest.raises(ValueError):
        render_dashboard_provider("relative")


def test_nginx_serves_stub_status_on_its_own_port_only_when_asked() -> None:
    from rendering.nginx import STATUS_PATH, NginxSite, render_nginx_conf

    plain = render_nginx_conf(NginxSite(server_name="localhost", tls_enabled=True, hsts=False))
    assert "stub_status" not in plain
    conf = render_nginx_conf(NginxSite(server_name="localhost", tls_enabled=True, hsts=False, status_port=8081))
    status_server = conf[conf.index("listen 8081;") :]
    assert f"location = {STATUS_PATH} {{\n" in status_server and "stub_status;" in status_server
    assert conf.count("stub_status;") == 1  # not on the public servers
    with pytest.raises(ValueError, match="status_port"):
        NginxSite(server_name="localhost", tls_enabled=True, hsts=False, status_port=443)
