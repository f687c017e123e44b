"""The whole program under the committed dev and prod stack configs."""

from __future__ import annotations

import re

import pytest
from program import Deployment
from workspace import Workspace

CONTAINER = "docker:index/container:Container"


@pytest.fixture(params=["dev", "prod"])
def deployment(request: pytest.FixtureRequest, workspace: Workspace) -> Deployment:
    return workspace.deploy(request.param)


def test_outputs(prod: Deployment) -> None:
    outputs = prod.outputs
    assert outputs["url"] == "https://catalogizer.example.com"
    assert outputs["healthUrl"] == "https://catalogizer.example.com/health"
    containers = outputs["containers"]
    assert containers["postgres"] == "catalogizer-postgres"
    assert containers["redis"] == "catalogizer-redis"
    assert containers["nginx"] == "catalogizer-nginx"
    assert len(containers["api"]) == 1 and containers["api"][0].startswith("catalogizer-api-0")
    assert outputs["adminUsername"] == "admin"
    assert outputs["tlsCertificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert outputs["tlsExpiry"]


def test_every_container_rotates_logs_and_is_labelled(deployment: Deployment) -> None:
    for container in deployment.of_type(CONTAINER):
        assert container.inputs["logDriver"] == "json-file", container.name
        assert container.inputs["logOpts"] == {"max-size": "10m", "max-file": "5"}, container.name
        labels = {item["label"]: item["value"] for item in container.inputs["labels"]}
        assert labels["catalogizer.stack"] in ("catalogizer", "catalogizer-dev")
        assert labels["catalogizer.role"] in (
            "postgres",
            "redis",
            "api",
            "nginx",
            "prometheus",
            "grafana",
            "backup-scheduler",
            "alertmanager",
            "postgres-exporter",
            "redis-exporter",
            "nginx-exporter",
            "blackbox-exporter",
        )
        assert container.inputs["restart"] == "unless-stopped"
        assert container.inputs["wait"] is True and container.inputs["healthcheck"]["tests"]


def test_nothing_but_nginx_is_reachable_from_outside_the_host(deployment: Deployment) -> None:
    for container in deployment.of_type(CONTAINER):
        for port in container.inputs.get("ports") or []:
            public = port.get("ip", "0.0.0.0") in ("0.0.0.0", "", "::")
            if public:
                assert deployment.containers("nginx") == [container], f"{container.name} publishes {port}"
                assert port["internal"] in (80, 443)


def test_every_resource_belongs_to_a_component(deployment: Deployment) -> None:
    for resource in deployment.resources:
        if resource.type.startswith("catalogizer:"):
            assert re.fullmatch(r"catalogizer:[a-z]+:[A-Z][A-Za-z]+", resource.type)
            assert "pulumi:pulumi:Stack" in resource.parent, f"{resource.name} should be top-level"
        else:
            assert "::catalogizer:" in resource.parent, f"{resource.type} {resource.name} is not in a component"


def test_dev_stack(dev: Deployment) -> None:
    assert dev.outputs["url"] == "https://localhost:8443"
    assert dev.outputs["containers"]["postgres"] == "catalogizer-dev-postgres"
    assert dev.env(dev.container("api"))["GIN_MODE"] == "debug"
