from __future__ import annotations

from program import Deployment

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"


def test_one_bridge_network_that_every_container_joins(prod: Deployment) -> None:
    (network,) = prod.of_type("docker:index/network:Network")
    assert network.inputs["name"] == "catalogizer-net" and network.inputs["driver"] == "bridge"
    assert prod.outputs["network"] == "catalogizer-net"
    for container in prod.of_type(CONTAINER):
        assert [n["name"] for n in container.inputs["networksAdvanced"]] == ["catalogizer-net"], container.name


def test_data_volumes_are_protected_and_retained(prod: Deployment) -> None:
    volumes = {v.inputs["name"]: v for v in prod.of_type(VOLUME)}
    data = {
        "catalogizer-postgres-data",
        "catalogizer-redis-data",
        "catalogizer-prometheus-data",
        "catalogizer-grafana-data",
    }
    logs = {"catalogizer-api-logs", "catalogizer-nginx-logs", "catalogizer-nginx-config"}
    assert set(volumes) == data | logs
    for name in data:
        assert volumes[name].protect and volumes[name].retain_on_delete, name
    for name in logs:
        assert not volumes[name].protect, name
    assert prod.outputs["volumes"]["postgres-data"] == "catalogizer-postgres-data"


def test_monitoring_volumes_only_with_monitoring(dev: Deployment) -> None:
    names = {v.inputs["name"] for v in dev.of_type(VOLUME)}
    assert names == {
        "catalogizer-dev-postgres-data",
        "catalogizer-dev-redis-data",
        "catalogizer-dev-api-logs",
        "catalogizer-dev-nginx-logs",
        "catalogizer-dev-nginx-config",
    }
