from __future__ import annotations

import json

from program import Deployment
from workspace import Workspace

from components.alertmanager import CONF_PATH as ALERTMANAGER_CONF
from components.monitoring import GRAFANA_DASHBOARDS, GRAFANA_DATASOURCE, PROMETHEUS_CONF, PROMETHEUS_RULES
from rendering.alerts import ALERT_NAMES

EXPORTERS = ("postgres-exporter", "redis-exporter", "nginx-exporter", "blackbox-exporter")
WEBHOOK = "http://alerts.example.com/hook"
SLACK = "https://hooks.slack.com/services/T000/B000/slacktoken"
SMTP_PASSWORD = "smtp-password-never-plain"
EMAIL = {"to": "ops@example.com", "from": "cz@example.com", "smarthost": "smtp.example.com:587", "username": "cz"}


def _json_body(yaml_text: str) -> dict:
    return json.loads("\n".join(line for line in yaml_text.splitlines() if not line.startswith("#")))


def _upload(container, path: str) -> dict:  # type: ignore[no-untyped-def]
    (upload,) = [u for u in container.inputs["uploads"] if u["file"] == path]
    return upload


def test_monitoring_is_off_by_default(dev: Deployment) -> None:
    for role in ("prometheus", "grafana", "alertmanager", *EXPORTERS):
        assert not dev.containers(role), role
    assert set(dev.outputs["containers"]) == {"postgres", "redis", "api", "nginx"}
    nginx = dev.container("nginx")
    assert "stub_status" not in dev.named("proxy-config").inputs["environment"]["NGINX_CONF"]
    assert not nginx.inputs["networksAdvanced"][0].get("aliases")  # unchanged without monitoring


def test_prometheus_scrapes_every_api_replica_and_every_exporter(prod: Deployment) -> None:
    prometheus = prod.container("prometheus")
    config = _json_body(_upload(prometheus, PROMETHEUS_CONF)["content"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api_job = jobs["catalog-api"]
    assert api_job["dns_sd_configs"][0]["names"] == ["api"] and api_job["dns_sd_configs"][0]["port"] == 8080
    assert api_job["metrics_path"] == "/metrics"
    assert jobs["postgres"]["static_configs"][0]["targets"] == ["postgres-exporter:9187"]
    assert jobs["redis"]["static_configs"][0]["targets"] == ["redis-exporter:9121"]
    assert jobs["nginx"]["static_configs"][0]["targets"] == ["nginx-exporter:9113"]
    assert jobs["backup-scheduler"]["static_configs"][0]["targets"] == ["backup-scheduler:9188"]
    assert jobs["blackbox"]["static_configs"][0]["targets"] == ["https://nginx:443/health"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert config["rule_files"] == [PROMETHEUS_RULES]
    rules = _json_body(_upload(prometheus, PROMETHEUS_RULES)["content"])
    # tls.mode=files: every alert but the ACME renewal's (tests/unit/test_acme.py has that one).
    assert {r["alert"] for r in rules["groups"][0]["rules"]} == set(ALERT_NAMES) - {"AcmeRenewalOverdue"}
    assert f"--config.file={PROMETHEUS_CONF}" in prometheus.inputs["command"]
    (port,) = prometheus.inputs["ports"]
    assert (port["internal"], port["external"], port["ip"]) == (9090, 9090, "127.0.0.1")
    assert prometheus.inputs["mounts"][0]["source"] == "catalogizer-prometheus-data"


def test_rules_follow_the_preflight_floor_and_error_ratio(workspace: Workspace) -> None:
    deployment = workspace.deploy("prod", {"preflight": {"minFreeGb": 3}, "alerts": {"errorRatioPercent": 20}})
    rules = _json_body(_upload(deployment.container("prometheus"), PROMETHEUS_RULES)["content"])
    by_name = {r["alert"]: r for r in rules["groups"][0]["rules"]}
    assert by_name["DiskFreeLow"]["expr"].endswith(f"< {3 * 1024**3}")
    assert by_name["ApiHighErrorRatio"]["expr"].endswith("> 0.2") and by_name["ApiHighErrorRatio"]["for"] == "5m"


def test_no_scheduler_target_without_the_scheduler(workspace: Workspace) -> None:
    deployment = workspace.deploy("prod", {"backup": {"scheduler": False}})
    config = _json_body(_upload(deployment.container("prometheus"), PROMETHEUS_CONF)["content"])
    assert "backup-scheduler" not in {job["job_name"] for job in config["scrape_configs"]}


def test_grafana_has_generated_password_datasource_and_dashboard(prod: Deployment) -> None:
    grafana = prod.container("grafana")
    env = prod.env(grafana)
    # Issue 10 outcome 5: a file Grafana reads (__FILE), not an environment variable.
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    password_file = _upload(grafana, env["GF_SECURITY_ADMIN_PASSWORD__FILE"])
    assert password_file["content"] == prod.outputs["grafanaPassword"] and password_file["permissions"] == "0640"
    assert grafana.is_secret("uploads[0].content") and prod.outputs["grafanaPassword"] not in str(env)
    datasource = _json_body(_upload(grafana, GRAFANA_DATASOURCE)["content"])["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    provider = _json_body(_upload(grafana, GRAFANA_DASHBOARDS)["content"])["providers"][0]
    dashboard = json.loads(_upload(grafana, provider["options"]["path"] + "/catalogizer.json")["content"])
    assert dashboard["title"] == "Catalogizer" and len(dashboard["panels"]) >= 7
    (port,) = grafana.inputs["ports"]
    assert (port["internal"], port["external"], port["ip"]) == (3000, 3000, "127.0.0.1")
    assert prod.outputs["containers"]["grafana"] == "catalogizer-grafana"


def test_exporters_join_the_network_unpublished_with_secrets_in_env_only(prod: Deployment) -> None:
    networks = prod.outputs["networks"]
    for role in EXPORTERS:
        exporter = prod.container(role)
        # Back (Prometheus scrapes there); the two that read nginx also join front (issue 10).
        expected = (
            [networks["back"], networks["front"]]
            if role in ("nginx-exporter", "blackbox-exporter")
            else [networks["back"]]
        )
        assert [n["name"] for n in exporter.inputs["networksAdvanced"]] == expected, role
        assert all(n["aliases"] == [role] for n in exporter.inputs["networksAdvanced"]), role
        assert not exporter.inputs.get("ports"), role
        assert exporter.inputs["healthcheck"]["tests"][0] == "CMD", role
        assert prod.outputs["containers"][role] == f"catalogizer-{role}"
    pg_env = prod.env(prod.container("postgres-exporter"))
    # Its own role in pg_monitor, never the superuser (issue 10 outcome 2), set by the role hook.
    assert pg_env["DATA_SOURCE_NAME"].startswith("postgresql://catalogizer_monitor:")
    assert prod.outputs["postgresPassword"] not in pg_env["DATA_SOURCE_NAME"]
    roles = prod.named("db-roles-api-role").inputs["environment"]
    assert roles["MONITOR_DB_USER"] == "catalogizer_monitor"
    assert f":{roles['MONITOR_DB_PASSWORD']}@" in pg_env["DATA_SOURCE_NAME"]
    assert prod.waits_for(prod.container("postgres-exporter"), prod.named("db-roles-api-role"))
    assert prod.container("postgres-exporter").is_secret("envs")
    redis = prod.container("redis-exporter")
    assert prod.env(redis)["REDIS_PASSWORD"] == prod.outputs["redisPassword"] and redis.is_secret("envs")
    assert prod.env(redis)["REDIS_USER"] == "catalogizer-exporter"
    nginx_exporter = prod.container("nginx-exporter")
    assert nginx_exporter.inputs["command"] == ["--nginx.scrape-uri=http://nginx:8081/stub_status"]
    nginx = prod.container("nginx")
    assert nginx.inputs["networksAdvanced"][0]["aliases"] == ["nginx"]
    assert "listen 8081;" in prod.named("proxy-config").inputs["environment"]["NGINX_CONF"]
    assert not any(p["internal"] == 8081 for p in nginx.inputs["ports"])


def test_blackbox_trusts_the_stacks_certificate_and_presents_the_domain(prod: Deployment) -> None:
    blackbox = prod.container("blackbox-exporter")
    files = {u["file"]: u["content"] for u in blackbox.inputs["uploads"]}
    module = _json_body(files["/etc/blackbox_exporter/config.yml"])["modules"]["public_health"]["http"]
    assert module["tls_config"]["server_name"] == "catalogizer.example.com"
    assert files[module["tls_config"]["ca_file"]] == prod.outputs["tlsCertificate"]


def test_alertmanager_without_receivers_keeps_its_ui_on_loopback(prod: Deployment) -> None:
    alertmanager = prod.container("alertmanager")
    upload = _upload(alertmanager, ALERTMANAGER_CONF)
    assert (upload["permissions"], upload["owner"], upload["group"]) == ("0600", "65534", "65534")
    config = _json_body(upload["content"])
    assert config["receivers"] == [{"name": "operators"}]
    assert config["route"]["group_wait"] == "30s" and config["route"]["repeat_interval"] == "4h"
    (port,) = alertmanager.inputs["ports"]
    assert (port["internal"], port["external"], port["ip"]) == (9093, 9093, "127.0.0.1")
    assert f"--config.file={ALERTMANAGER_CONF}" in alertmanager.inputs["command"]


def test_receivers_and_the_smtp_password_stay_secret(workspace: Workspace) -> None:
    alerts = {"webhookUrls": [WEBHOOK, SLACK], "email": EMAIL, "repeatIntervalHours": 2}
    deployment = workspace.deploy("prod", {"alerts": alerts}, secrets={"alertsSmtpPassword": SMTP_PASSWORD})
    alertmanager = deployment.container("alertmanager")
    upload = _upload(alertmanager, ALERTMANAGER_CONF)
    index = alertmanager.inputs["uploads"].index(upload)
    assert alertmanager.is_secret(f"uploads[{index}].content") and upload["permissions"] == "0600"
    (receiver,) = _json_body(upload["content"])["receivers"]
    assert [w["url"] for w in receiver["webhook_configs"]] == [WEBHOOK]
    assert [s["api_url"] for s in receiver["slack_configs"]] == [SLACK]
    (mail,) = receiver["email_configs"]
    assert mail["auth_password"] == SMTP_PASSWORD and mail["to"] == "ops@example.com" and mail["send_resolved"]
    assert all(w["send_resolved"] for w in receiver["webhook_configs"] + receiver["slack_configs"])
    assert _json_body(upload["content"])["route"]["repeat_interval"] == "2h"
    # Nowhere else: not in any other input, not in any output.
    for resource in deployment.resources:
        text = json.dumps(resource.inputs)
        if resource is not alertmanager:
            assert SMTP_PASSWORD not in text, resource.name
    assert SMTP_PASSWORD not in json.dumps(deployment.outputs, default=str)
