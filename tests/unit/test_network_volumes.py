from __future__ import annotations

from program import Deployment

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"


# Issue 10 outcome 7: which container is on which network.
EXPECTED_NETWORKS = {
    "catalogizer-nginx": ["catalogizer-front"],
    "catalogizer-postgres": ["catalogizer-back"],
    "catalogizer-redis": ["catalogizer-back"],
    "catalogizer-backup-scheduler": ["catalogizer-back"],
    "catalogizer-prometheus": ["catalogizer-back"],
    "catalogizer-grafana": ["catalogizer-back"],
    "catalogizer-alertmanager": ["catalogizer-back"],
    "catalogizer-postgres-exporter": ["catalogizer-back"],
    "catalogizer-redis-exporter": ["catalogizer-back"],
    # These two read nginx (stub_status, the /health probe); Prometheus scrapes them on back.
    "catalogizer-nginx-exporter": ["catalogizer-back", "catalogizer-front"],
    "catalogizer-blackbox-exporter": ["catalogizer-back", "catalogizer-front"],
}


def test_front_and_back_networks_only_the_api_joins_both(prod: Deployment) -> None:
    networks = {n.inputs["name"]: n for n in prod.of_type("docker:index/network:Network")}
    assert set(networks) == {"catalogizer-front", "catalogizer-back"}
    assert all(n.inputs["driver"] == "bridge" for n in networks.values())
    assert prod.outputs["networks"] == {"front": "catalogizer-front", "back": "catalogizer-back"}
    seen = set()
    for container in prod.services():
        joined = [n["name"] for n in container.inputs["networksAdvanced"]]
        name = container.inputs.get("name")
        if container in prod.containers("api"):
            assert joined == ["catalogizer-front", "catalogizer-back"], container.name
            front, back = container.inputs["networksAdvanced"]
            # The version alias nginx proxies to only on front; Prometheus scrapes `api` on back.
            assert front["aliases"][0] == "api" and front["aliases"][1].startswith("api-"), container.name
            assert back["aliases"] == ["api"], container.name
        else:
            assert joined == EXPECTED_NETWORKS[name], name
            seen.add(name)
    assert seen == set(EXPECTED_NETWORKS)
    # nginx shares no network with PostgreSQL or Redis: it cannot open a connection to them.
    nginx = {n["name"] for n in prod.container("nginx").inputs["networksAdvanced"]}
    for role in ("postgres", "redis"):
        assert not nginx & {n["name"] for n in prod.container(role).inputs["networksAdvanced"]}


def test_data_volumes_are_protected_and_retained(prod: Deployment) -> None:
    volumes = {v.inputs["name"]: v for v in prod.of_type(VOLUME)}
    data = {
        "catalogizer-postgres-data",
        "catalogizer-redis-data",
        "catalogizer-prometheus-data",
        "catalogizer-grafana-data",
    }
    logs = {"catalogizer-api-logs", "catalogizer-nginx-logs"}
    configs = {"catalogizer-nginx-config", "catalogizer-redis-config", "catalogizer-postgres-config"}
    assert set(volumes) == data | logs | configs
    for name in data:
        assert volumes[name].protect and volumes[name].retain_on_delete, name
    for name in logs | configs:
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
        "catalogizer-dev-redis-config",
        "catalogizer-dev-postgres-config",
    }
