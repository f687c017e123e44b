"""Tests for the Prometheus and Grafana provisioning files."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from rendering.monitoring import render_grafana_datasource, render_prometheus_yml


def _parse(text: str) -> Any:
    """Parse the rendered file: '#' comment lines followed by a JSON document."""
    body_lines = [line for line in text.splitlines() if not line.startswith("#")]
    return json.loads("\n".join(body_lines))


def _parse_as_yaml_if_available(text: str) -> Any:
    # Prometheus and Grafana read the file as YAML; PyYAML (a dependency of the
    # Pulumi SDK) confirms the comment + JSON form is valid YAML too.
    return yaml.safe_load(text)


def _job(config: dict[str, Any], name: str) -> dict[str, Any]:
    jobs = [job for job in config["scrape_configs"] if job["job_name"] == name]
    assert len(jobs) == 1, f"expected exactly one {name!r} job"
    return jobs[0]


def test_prometheus_scrapes_every_api_replica_via_dns() -> None:
    config = _parse(render_prometheus_yml())
    api = _job(config, "catalog-api")
    assert api["metrics_path"] == "/metrics"
    assert "static_configs" not in api  # a static api:8080 target would hit one replica per scrape
    (sd,) = api["dns_sd_configs"]
    assert sd["type"] == "A"
    assert sd["names"] == ["api"]
    assert sd["port"] == 8080


def test_prometheus_custom_host_port_interval() -> None:
    config = _parse(render_prometheus_yml(api_host="catalog-api", api_port=9000, scrape_interval_seconds=30))
    (sd,) = _job(config, "catalog-api")["dns_sd_configs"]
    assert sd["names"] == ["catalog-api"]
    assert sd["port"] == 9000
    assert config["global"]["scrape_interval"] == "30s"
    assert config["global"]["scrape_timeout"] == "10s"


def test_prometheus_scrape_timeout_never_exceeds_interval() -> None:
    # Prometheus refuses to start when scrape_timeout > scrape_interval.
    config = _parse(render_prometheus_yml(scrape_interval_seconds=5))
    assert config["global"]["scrape_interval"] == "5s"
    assert config["global"]["scrape_timeout"] == "5s"


def test_prometheus_scrapes_itself() -> None:
    config = _parse(render_prometheus_yml())
    (static,) = _job(config, "prometheus")["static_configs"]
    assert static["targets"] == ["localhost:9090"]


def test_prometheus_file_is_yaml() -> None:
    text = render_prometheus_yml(api_host="api", api_port=8080)
    assert text.startswith("#")
    assert _parse_as_yaml_if_available(text) == _parse(text)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"api_host": "api; rm"}, "api_host"),
        ({"api_host": ""}, "api_host"),
        ({"api_host": "a\nb"}, "api_host"),
        ({"api_port": 0}, "api_port"),
        ({"api_port": 65536}, "api_port"),
        ({"api_port": True}, "api_port"),
        ({"scrape_interval_seconds": 0}, "scrape_interval_seconds"),
        ({"scrape_interval_seconds": "15"}, "scrape_interval_seconds"),
    ],
)
def test_prometheus_rejects_bad_input(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        render_prometheus_yml(**kwargs)


def test_grafana_datasource() -> None:
    config = _parse(render_grafana_datasource("http://prometheus:9090"))
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True
    assert source["access"] == "proxy"
    assert source["name"]


def test_grafana_file_is_yaml() -> None:
    text = render_grafana_datasource("http://prometheus:9090")
    assert _parse_as_yaml_if_available(text) == _parse(text)


@pytest.mark.parametrize("url", ["", "prometheus:9090", "ftp://prometheus", "http://", "http://prom etheus:9090"])
def test_grafana_rejects_bad_url(url: str) -> None:
    with pytest.raises(ValueError, match="prometheus_url"):
        render_grafana_datasource(url)
