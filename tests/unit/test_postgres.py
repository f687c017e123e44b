from __future__ import annotations

from program import Deployment
from workspace import Workspace


def test_postgres_container(dev: Deployment) -> None:
    pg = dev.container("postgres")
    assert pg.inputs["name"] == "catalogizer-dev-postgres"
    image = dev.named("postgres-image")
    assert image.inputs["name"] == "postgres:15-alpine" and image.inputs["keepLocally"] is True
    assert pg.inputs["image"] == image.state["imageId"]
    env = dev.env(pg)
    assert env["POSTGRES_USER"] == "catalogizer" and env["POSTGRES_DB"] == "catalogizer"
    assert env["POSTGRES_PASSWORD"] == dev.outputs["postgresPassword"]
    assert pg.is_secret("envs")
    (mount,) = pg.inputs["mounts"]
    assert mount == {"target": "/var/lib/postgresql/data", "type": "volume", "source": "catalogizer-dev-postgres-data"}
    assert env["PGDATA"].startswith(mount["target"] + "/")
    assert "shared_preload_libraries=pg_stat_statements" in pg.inputs["command"]
    assert pg.inputs["healthcheck"]["tests"][:2] == ["CMD", "pg_isready"]
    assert pg.inputs["wait"] is True
    assert pg.inputs["restart"] == "unless-stopped"
    assert pg.inputs["memory"] == 2048
    assert pg.inputs["stopTimeout"] >= 30 and pg.inputs["destroyGraceSeconds"] >= 30
    assert pg.inputs["stopSignal"] == "SIGINT"
    assert pg.delete_before_replace
    assert {"aliases": ["postgres"], "name": "catalogizer-dev-net"} in pg.inputs["networksAdvanced"]


def test_postgres_is_not_published_by_default(dev: Deployment) -> None:
    assert not dev.container("postgres").inputs.get("ports")


def test_postgres_host_port_binds_loopback_only(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {"postgres": {"hostPort": 15432, "memoryMb": 1024}})
    pg = deployment.container("postgres")
    assert pg.inputs["ports"] == [{"internal": 5432, "external": 15432, "ip": "127.0.0.1", "protocol": "tcp"}] or [
        {k: v for k, v in p.items() if k != "protocol"} for p in pg.inputs["ports"]
    ] == [{"internal": 5432, "external": 15432, "ip": "127.0.0.1"}]
    assert pg.inputs["memory"] == 1024
