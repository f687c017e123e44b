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
    # Issue 10 outcome 5: the password as a file the entrypoint reads, not in `docker inspect`.
    assert "POSTGRES_PASSWORD" not in env
    assert env["POSTGRES_PASSWORD_FILE"] == "/etc/catalogizer-postgres/superuser-password"
    carrier = dev.container("postgres-config")
    (secret,) = carrier.inputs["uploads"]
    assert secret["file"] == env["POSTGRES_PASSWORD_FILE"]
    assert secret["content"] == dev.outputs["postgresPassword"] and secret["permissions"] == "0640"
    assert carrier.is_secret("uploads[0].content") and "uploads" not in pg.inputs
    assert dev.outputs["postgresPassword"] not in str(pg.inputs["envs"])
    # Root-owned 0640 upload, read by the image's postgres uid through group 0 (alpine: 70).
    assert pg.inputs["user"] == "70:0"
    # Issue 10 outcome 2: no `trust` in a new cluster's pg_hba.conf.
    assert env["POSTGRES_INITDB_ARGS"] == "--auth-local=scram-sha-256 --auth-host=scram-sha-256"
    mount, config = pg.inputs["mounts"]
    assert mount == {"target": "/var/lib/postgresql/data", "type": "volume", "source": "catalogizer-dev-postgres-data"}
    # Uploads go to a volume: the root filesystem is read-only.
    config_volume = "catalogizer-dev-postgres-config"
    assert config == {
        "target": "/etc/catalogizer-postgres",
        "type": "volume",
        "source": config_volume,
        "readOnly": True,
    }
    assert env["PGDATA"].startswith(mount["target"] + "/")
    assert "shared_preload_libraries=pg_stat_statements" in pg.inputs["command"]
    assert pg.inputs["healthcheck"]["tests"][:2] == ["CMD", "pg_isready"]
    assert pg.inputs["wait"] is True
    assert pg.inputs["restart"] == "unless-stopped"
    assert pg.inputs["memory"] == 2048
    assert pg.inputs["stopTimeout"] >= 30 and pg.inputs["destroyGraceSeconds"] >= 30
    assert pg.inputs["stopSignal"] == "SIGINT"
    assert pg.delete_before_replace
    assert pg.inputs["networksAdvanced"] == [{"aliases": ["postgres"], "name": "catalogizer-dev-back"}]


def test_postgres_is_not_published_by_default(dev: Deployment) -> None:
    assert not dev.container("postgres").inputs.get("ports")


def test_postgres_host_port_binds_loopback_only(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {"postgres": {"hostPort": 15432, "memoryMb": 1024}})
    pg = deployment.container("postgres")
    assert pg.inputs["ports"] == [{"internal": 5432, "external": 15432, "ip": "127.0.0.1", "protocol": "tcp"}] or [
        {k: v for k, v in p.items() if k != "protocol"} for p in pg.inputs["ports"]
    ] == [{"internal": 5432, "external": 15432, "ip": "127.0.0.1"}]
    assert pg.inputs["memory"] == 1024
