from __future__ import annotations

import json

from program import Deployment

from components.monitoring import GRAFANA_DATASOURCE, PROMETHEUS_CONF


def _json_body(yaml_text: str) -> dict:
    return json.loads("\n".join(line for line in yaml_text.splitlines() if not line.startswith("#")))


def test_monitoring_is_off_by_default(dev: Deployment) -> None:
    assert not dev.containers("prometheus") and not dev.containers("grafana")
    assert set(dev.outputs["containers"]) == {"postgres", "redis", "api", "nginx"}


def test_prometheus_scrapes_every_api_replica(prod: Deployment) -> None:
    prometheus = prod.container("prometheus")
    (upload,) = prometheus.inputs["uploads"]
    assert upload["file"] == PROMETHEUS_CONF
    config = _json_body(upload["content"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api_job = next(job for job in jobs.values() if "dns_sd_configs" in job)
    assert api_job["dns_sd_configs"][0]["names"] == ["api"] and api_job["dns_sd_configs"][0]["port"] == 8080
    assert api_job["metrics_path"] == "/metrics"
    (port,) = prometheus.inputs["ports"]
    assert (port["internal"], port["external"], port["ip"]) == (9090, 9090, "127.0.0.1")
    assert prometheus.inputs["mounts"][0]["source"] == "catalogizer-prometheus-data"


def test_grafana_has_generated_password_and_prometheus_datasource(prod: Deployment) -> None:
    grafana = prod.container("grafana")
    env = prod.env(grafana)
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == prod.outputs["grafanaPassword"] and grafana.is_secret("envs")
    (upload,) = grafana.inputs["uploads"]
    assert upload["file"] == GRAFANA_DATASOURCE
    datasource = _json_body(upload["content"])["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    (port,) = grafana.inputs["ports"]
    assert (port["internal"], port["external"], port["ip"]) == (3000, 3000, "127.0.0.1")
    assert prod.outputs["containers"]["grafana"] == "catalogizer-grafana"
