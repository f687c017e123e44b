"""Each committed stack is complete, and all of them can share one Docker host."""

from __future__ import annotations

import itertools

import pytest
from program import Deployment
from workspace import Workspace

STACKS = ("dev", "staging", "prod")


def _claims(deployment: Deployment) -> dict[str, set]:
    containers = deployment.of_type("docker:index/container:Container")
    return {
        "container names": {c.state["name"] for c in containers},
        "networks": {n.inputs["name"] for n in deployment.of_type("docker:index/network:Network")},
        "volumes": {v.inputs["name"] for v in deployment.of_type("docker:index/volume:Volume")},
        "host ports": {p["external"] for c in containers for p in c.inputs.get("ports") or []},
        "backup dirs": {
            c.inputs["environment"]["BACKUP_DIR"]
            for c in deployment.of_type("command:local:Command")
            if "BACKUP_DIR" in c.inputs["environment"]
        },
        "image names": {i.inputs["imageName"] for i in deployment.of_type("docker:index/image:Image")},
    }


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Deployment]:
    workspace = Workspace(tmp_path_factory.mktemp("side-by-side"))
    return {stack: workspace.deploy(stack) for stack in STACKS}


@pytest.mark.parametrize(("first", "second"), list(itertools.combinations(STACKS, 2)))
def test_two_stacks_share_nothing(deployments: dict[str, Deployment], first: str, second: str) -> None:
    a, b = _claims(deployments[first]), _claims(deployments[second])
    for kind in a:
        assert not a[kind] & b[kind], f"{first} and {second} clash on {kind}: {a[kind] & b[kind]}"


def test_staging_runs_in_release_mode_with_hsts(deployments: dict[str, Deployment]) -> None:
    staging = deployments["staging"]
    assert staging.env(staging.container("api"))["GIN_MODE"] == "release"
    assert staging.outputs["url"] == "https://staging.catalogizer.example.com:9443"
    nginx_conf = staging.named("proxy-config").inputs["environment"]["NGINX_CONF"]
    # Issue 10: HSTS whenever TLS is on, staging included.
    assert 'Strict-Transport-Security "max-age=63072000; includeSubDomains"' in nginx_conf


def test_only_the_proxy_is_published_beyond_loopback(deployments: dict[str, Deployment]) -> None:
    loopback_ports = {}
    for stack, deployment in deployments.items():
        for container in deployment.of_type("docker:index/container:Container"):
            for port in container.inputs.get("ports") or []:
                if container.name == "proxy-container":
                    assert "ip" not in port, (stack, port)  # the public edge: every address
                else:
                    assert port["ip"] == "127.0.0.1", (stack, container.name, port)
                    loopback_ports.setdefault(stack, []).append(port["external"])
    # Not vacuous: production publishes Prometheus, Grafana and Alertmanager, on loopback only.
    assert {stack: sorted(ports) for stack, ports in loopback_ports.items()} == {"prod": [3000, 9090, 9093]}
