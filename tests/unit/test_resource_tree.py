"""The resource tree and the hooks' whole environment, as literals.

A resource's URN is its name under its parent: a changed parent or name makes Pulumi
replace the resource (and delete the old one), so the tree itself is a feature.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from program import Deployment
from workspace import Workspace

STACK = "catalogizer-prod"
PROD_TREE = {
    # name: (type, parent, protect, retainOnDelete, deleteBeforeReplace)
    "secrets": ("catalogizer:security:Secrets", STACK, False, False, False),
    "api-image": ("catalogizer:app:ApiImage", STACK, False, False, False),
    "preflight": ("catalogizer:ops:Preflight", STACK, False, False, False),
    "network": ("catalogizer:network:Network", STACK, False, False, False),
    "volumes": ("catalogizer:storage:Volumes", STACK, False, False, False),
    "redis": ("catalogizer:data:Redis", STACK, False, False, False),
    "tls": ("catalogizer:security:Tls", STACK, False, False, False),
    "backup": ("catalogizer:ops:PreUpdateBackup", STACK, False, False, False),
    "postgres": ("catalogizer:data:Postgres", STACK, False, False, False),
    "api": ("catalogizer:app:Api", STACK, False, False, False),
    "proxy": ("catalogizer:edge:Proxy", STACK, False, False, False),
    "health": ("catalogizer:ops:HealthCheck", STACK, False, False, False),
    "backup-scheduler": ("catalogizer:ops:BackupScheduler", STACK, False, False, False),
    "monitoring": ("catalogizer:monitoring:Monitoring", STACK, False, False, False),
    "secrets-postgresPassword": ("random:index/randomPassword:RandomPassword", "secrets", True, False, False),
    "secrets-redisPassword": ("random:index/randomPassword:RandomPassword", "secrets", False, False, False),
    "secrets-jwtSecret": ("random:index/randomPassword:RandomPassword", "secrets", False, False, False),
    "secrets-adminPassword": ("random:index/randomPassword:RandomPassword", "secrets", False, False, False),
    "secrets-grafanaPassword": ("random:index/randomPassword:RandomPassword", "secrets", False, False, False),
    "secrets-postgresApiPassword": ("random:index/randomPassword:RandomPassword", "secrets", False, False, False),
    "secrets-postgresMonitorPassword": ("random:index/randomPassword:RandomPassword", "secrets", False, False, False),
    "api-image-build": ("command:local:Command", "api-image", False, False, False),
    "network-bridge": ("docker:index/network:Network", "network", False, False, False),
    "network-front": ("docker:index/network:Network", "network", False, False, False),
    "volumes-postgres-data": ("docker:index/volume:Volume", "volumes", True, True, False),
    "volumes-redis-data": ("docker:index/volume:Volume", "volumes", True, True, False),
    "volumes-prometheus-data": ("docker:index/volume:Volume", "volumes", True, True, False),
    "volumes-grafana-data": ("docker:index/volume:Volume", "volumes", True, True, False),
    "volumes-api-logs": ("docker:index/volume:Volume", "volumes", False, False, False),
    "volumes-nginx-logs": ("docker:index/volume:Volume", "volumes", False, False, False),
    "volumes-nginx-config": ("docker:index/volume:Volume", "volumes", False, False, False),
    "volumes-redis-config": ("docker:index/volume:Volume", "volumes", False, False, False),
    "volumes-postgres-config": ("docker:index/volume:Volume", "volumes", False, False, False),
    "redis-image": ("docker:index/remoteImage:RemoteImage", "redis", False, False, False),
    "postgres-image": ("docker:index/remoteImage:RemoteImage", "postgres", False, False, False),
    "proxy-image": ("docker:index/remoteImage:RemoteImage", "proxy", False, False, False),
    "backup-scheduler-image": ("docker:index/image:Image", "backup-scheduler", False, False, False),
    "monitoring-prometheus-image": ("docker:index/remoteImage:RemoteImage", "monitoring", False, False, False),
    "monitoring-grafana-image": ("docker:index/remoteImage:RemoteImage", "monitoring", False, False, False),
    "preflight-checks": ("command:local:Command", "preflight", False, False, False),
    "postgres-container": ("docker:index/container:Container", "postgres", False, False, True),
    "redis-container": ("docker:index/container:Container", "redis", False, False, True),
    # Never-started carriers of the files of read-only containers (issue 10).
    "catalogizer-redis-config": ("docker:index/container:Container", "redis", False, False, True),
    "catalogizer-postgres-config": ("docker:index/container:Container", "postgres", False, False, True),
    # The API's and the exporter's own PostgreSQL roles, set by a hook (issue 10).
    "db-roles": ("catalogizer:data:DbRoles", STACK, False, False, False),
    "db-roles-api-role": ("command:local:Command", "db-roles", False, False, False),
    "proxy-config": ("command:local:Command", "proxy", False, False, False),
    "proxy-container": ("docker:index/container:Container", "proxy", False, False, True),
    "monitoring-prometheus": ("docker:index/container:Container", "monitoring", False, False, True),
    "backup-scheduler-container": ("docker:index/container:Container", "backup-scheduler", False, False, True),
    "monitoring-grafana": ("docker:index/container:Container", "monitoring", False, False, True),
    "backup-pg-dump": ("command:local:Command", "backup", False, False, False),
    "catalogizer-api-0": ("docker:index/container:Container", "api", False, False, False),
    "health-verify": ("command:local:Command", "health", False, False, False),
    "exporters": ("catalogizer:monitoring:Exporters", STACK, False, False, False),
    "alertmanager": ("catalogizer:monitoring:Alertmanager", STACK, False, False, False),
    "exporters-postgres-exporter-image": ("docker:index/remoteImage:RemoteImage", "exporters", False, False, False),
    "exporters-redis-exporter-image": ("docker:index/remoteImage:RemoteImage", "exporters", False, False, False),
    "exporters-nginx-exporter-image": ("docker:index/remoteImage:RemoteImage", "exporters", False, False, False),
    "exporters-blackbox-exporter-image": ("docker:index/remoteImage:RemoteImage", "exporters", False, False, False),
    "alertmanager-image": ("docker:index/remoteImage:RemoteImage", "alertmanager", False, False, False),
    "exporters-postgres-exporter": ("docker:index/container:Container", "exporters", False, False, True),
    "exporters-redis-exporter": ("docker:index/container:Container", "exporters", False, False, True),
    "exporters-nginx-exporter": ("docker:index/container:Container", "exporters", False, False, True),
    "exporters-blackbox-exporter": ("docker:index/container:Container", "exporters", False, False, True),
    "alertmanager-container": ("docker:index/container:Container", "alertmanager", False, False, True),
}


def _tree(deployment: Deployment) -> dict[str, tuple[str, str, bool, bool, bool]]:
    names = {r.urn: r.name for r in deployment.resources}
    return {
        r.name: (
            r.type,
            names.get(r.parent, r.parent.rsplit("::", 1)[-1]),
            r.protect,
            r.retain_on_delete,
            r.delete_before_replace,
        )
        for r in deployment.resources
    }


def test_production_resource_tree(workspace: Workspace) -> None:
    assert _tree(workspace.deploy("prod")) == PROD_TREE


def _restorable(workspace: Workspace) -> Path:
    dump = workspace.project / "backups" / "catalogizer-dev_20261128T000000000Z.dump"
    dump.parent.mkdir(exist_ok=True)
    dump.write_bytes(b"PGDMP fake")
    (dump.parent / (dump.name + ".sha256")).write_text(hashlib.sha256(dump.read_bytes()).hexdigest() + "  x\n")
    return dump


def test_restore_sits_under_its_component(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {"restoreFrom": str(_restorable(workspace))})
    tree = _tree(deployment)
    assert tree["restore"] == ("catalogizer:ops:Restore", "catalogizer-dev", False, False, False)
    assert tree["restore-pg-restore"] == ("command:local:Command", "restore", False, False, False)


def test_every_hook_command(workspace: Workspace) -> None:
    dump = _restorable(workspace)
    deployment = workspace.deploy("dev", {"restoreFrom": str(dump)})
    root = Path(__file__).resolve().parents[2]
    backups = str(workspace.project / "backups" / "dev")
    pg_password = deployment.outputs["postgresPassword"]
    database = {"PG_CONTAINER": "catalogizer-dev-postgres", "PGUSER": "catalogizer", "PGDATABASE": "catalogizer"}
    expected = {
        "preflight-checks": {
            "PREFLIGHT_PROBE_IMAGE": "postgres:15-alpine",
            "BACKUP_DIR": backups,
            "MEDIA_ROOT": str(workspace.project.parent / "media"),
            "PREFLIGHT_PORTS": "0.0.0.0:8080,0.0.0.0:8443",
            "STACK_LABEL": "catalogizer-dev",
            "PREFLIGHT_MIN_FREE_GB": "10",
            "PREFLIGHT_PLATFORM": "linux/amd64",
        },
        "backup-pg-dump": {
            **database,
            "STACK_NAME": "catalogizer-dev",
            "BACKUP_DIR": backups,
            "BACKUP_KEEP": "5",
            "PGPASSWORD": pg_password,
        },
        "restore-pg-restore": {
            **database,
            "STACK_NAME": "catalogizer-dev",
            "BACKUP_DIR": backups,
            "BACKUP_KEEP": "5",
            "PGPASSWORD": pg_password,
            "API_STACK_LABEL": "catalogizer-dev",
            "RESTORE_FILE": str(dump),
            "NGINX_VOLUME": "catalogizer-dev-nginx-config",
            "NGINX_IMAGE": "nginx:1.27-alpine",
        },
        "db-roles-api-role": {
            **database,
            "STACK_NAME": "catalogizer-dev",
            "BACKUP_DIR": backups,
            "BACKUP_KEEP": "5",
            "PGPASSWORD": pg_password,
            "API_DB_USER": "catalogizer_api",
            "API_DB_PASSWORD": deployment.named("secrets-postgresApiPassword").state["result"],
        },
        "health-verify": {
            **database,
            "HEALTH_CA_PEM": deployment.outputs["tlsCertificate"],
            "REDIS_CONTAINER": "catalogizer-dev-redis",
            "HEALTH_INTERVAL": "2",
            "HEALTH_URL": "https://localhost:8443/health",
            "REDIS_PASSWORD": deployment.outputs["redisPassword"],
            "NGINX_CONTAINER": "catalogizer-dev-nginx",
            "HEALTH_TIMEOUT": "120",
            "HEALTH_CONNECT_ADDRESS": "127.0.0.1",
            "API_CONTAINERS": deployment.outputs["containers"]["api"][0],
        },
    }
    commands = {c.name: c for c in deployment.of_type("command:local:Command")}
    assert sorted(commands) == [
        "api-image-build",
        "backup-pg-dump",
        "db-roles-api-role",
        "health-verify",
        "preflight-checks",
        "proxy-config",
        "restore-pg-restore",
    ]
    for name, environment in expected.items():
        command = commands[name]
        assert command.inputs["environment"] == environment, name
        assert command.inputs["dir"] == str(root), name
        script = {
            "preflight-checks": "preflight",
            "backup-pg-dump": "backup",
            "restore-pg-restore": "restore",
            "db-roles-api-role": "db_roles",
        }
        assert command.inputs["create"] == f"python3 scripts/{script.get(name, 'health_check')}.py", name
        assert command.additional_secret_outputs == ["stdout", "stderr"], name
    for name, key in (
        ("backup-pg-dump", "PGPASSWORD"),
        ("restore-pg-restore", "PGPASSWORD"),
        ("health-verify", "REDIS_PASSWORD"),
        ("db-roles-api-role", "PGPASSWORD"),
        ("db-roles-api-role", "API_DB_PASSWORD"),
    ):
        assert commands[name].is_secret(f"environment.{key}"), name
