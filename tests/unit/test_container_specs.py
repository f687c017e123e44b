"""Every container of the production stack, input by input, as literals.

Memory limits, stop signals and grace periods, health checks, log rotation, mounts, ports
and aliases are each a decision; a change to any of them takes a change here. Secrets are
named ({postgresPassword}...) and filled in from the stack; images are checked apart.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from program import Deployment
from workspace import Workspace

EXPECTED: dict[str, dict[str, Any]] = {
    "postgres-container": {
        "capabilities": {"adds": [], "drops": ["ALL"]},
        "command": [
            "postgres",
            "-c",
            "shared_preload_libraries=pg_stat_statements",
            "-c",
            "pg_stat_statements.track=all",
        ],
        "cpus": "2",
        "destroyGraceSeconds": 60.0,
        "envs": [
            "POSTGRES_USER=catalogizer",
            "POSTGRES_PASSWORD_FILE=/etc/catalogizer-postgres/superuser-password",
            "POSTGRES_DB=catalogizer",
            "PGDATA=/var/lib/postgresql/data/pgdata",
            "POSTGRES_INITDB_ARGS=--auth-local=scram-sha-256 --auth-host=scram-sha-256",
        ],
        "healthcheck": {
            "interval": "5s",
            "retries": 12.0,
            "startPeriod": "30s",
            "tests": ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "catalogizer", "-d", "catalogizer"],
            "timeout": "5s",
        },
        "labels": [
            {"label": "catalogizer.stack", "value": "catalogizer"},
            {"label": "catalogizer.role", "value": "postgres"},
            {
                "label": "catalogizer.config-sha256",
                "value": "403df69f86301f039be406d43ee29fa72675e3bec66c219025560334117c4e3d",
            },
        ],
        "logDriver": "json-file",
        "logOpts": {"max-file": "5", "max-size": "10m"},
        "memory": 2048.0,
        "memorySwap": 2048.0,
        "mounts": [
            {"source": "catalogizer-postgres-data", "target": "/var/lib/postgresql/data", "type": "volume"},
            {
                "readOnly": True,
                "source": "catalogizer-postgres-config",
                "target": "/etc/catalogizer-postgres",
                "type": "volume",
            },
        ],
        "name": "catalogizer-postgres",
        "networksAdvanced": [{"aliases": ["postgres"], "name": "catalogizer-back"}],
        "ports": [],
        "readOnly": True,
        "restart": "unless-stopped",
        "securityOpts": ["no-new-privileges:true"],
        "shmSize": 256.0,
        "stopSignal": "SIGINT",
        "stopTimeout": 60.0,
        "tmpfs": {"/tmp": "rw,nosuid,nodev,noexec,size=64m", "/var/run/postgresql": "rw,nosuid,nodev,noexec,size=64m"},
        "ulimits": [{"hard": 512.0, "name": "nproc", "soft": 512.0}],
        "user": "70:0",
        "wait": True,
        "waitTimeout": 180.0,
    },
    "catalogizer-postgres-config": {
        "capabilities": {"drops": ["ALL"]},
        "command": ["true"],
        "labels": [
            {"label": "catalogizer.stack", "value": "catalogizer"},
            {"label": "catalogizer.role", "value": "postgres-config"},
        ],
        "mounts": [{"source": "catalogizer-postgres-config", "target": "/etc/catalogizer-postgres", "type": "volume"}],
        "mustRun": False,
        "name": "catalogizer-postgres-config",
        "networkMode": "none",
        "securityOpts": ["no-new-privileges:true"],
        "start": False,
    },
    "redis-container": {
        "capabilities": {"adds": [], "drops": ["ALL"]},
        "command": ["redis-server", "/etc/catalogizer-redis/redis.conf"],
        "cpus": "1",
        "envs": ["REDISCLI_AUTH={redisPassword}"],
        "healthcheck": {
            "interval": "5s",
            "retries": 12.0,
            "startPeriod": "10s",
            "tests": ["CMD-SHELL", "redis-cli ping | grep -q PONG"],
            "timeout": "5s",
        },
        "labels": [
            {"label": "catalogizer.stack", "value": "catalogizer"},
            {"label": "catalogizer.role", "value": "redis"},
            {
                "label": "catalogizer.config-sha256",
                "value": "01ec00926d25b77806317c908469f0fa21d3272a48fc9934b5bbc9e46a92f113",
            },
        ],
        "logDriver": "json-file",
        "logOpts": {"max-file": "5", "max-size": "10m"},
        "memory": 512.0,
        "memorySwap": 512.0,
        "mounts": [
            {"source": "catalogizer-redis-data", "target": "/data", "type": "volume"},
            {
                "readOnly": True,
                "source": "catalogizer-redis-config",
                "target": "/etc/catalogizer-redis",
                "type": "volume",
            },
        ],
        "name": "catalogizer-redis",
        "networksAdvanced": [{"aliases": ["redis"], "name": "catalogizer-back"}],
        "ports": [],
        "readOnly": True,
        "restart": "unless-stopped",
        "securityOpts": ["no-new-privileges:true"],
        "tmpfs": {"/tmp": "rw,nosuid,nodev,noexec,size=64m"},
        "ulimits": [{"hard": 128.0, "name": "nproc", "soft": 128.0}],
        "user": "999:0",
        "wait": True,
        "waitTimeout": 180.0,
    },
    "catalogizer-redis-config": {
        "capabilities": {"drops": ["ALL"]},
        "command": ["true"],
        "labels": [
            {"label": "catalogizer.stack", "value": "catalogizer"},
            {"label": "catalogizer.role", "value": "redis-config"},
        ],
        "mounts": [{"source": "catalogizer-redis-config", "target": "/etc/catalogizer-redis", "type": "volume"}],
        "mustRun": False,
        "name": "catalogizer-redis-config",
        "networkMode": "none",
        "securityOpts": ["no-new-privileges:true"],
        "start": False,
    },
    "proxy-container": {
        "capabilities": {"adds": ["CHOWN", "SETUID", "SETGID", "NET_BIND_SERVICE"], "drops": ["ALL"]},
        "command": ["nginx", "-c", "/etc/nginx/live/current/nginx.conf", "-g", "daemon off;"],
        "cpus": "0.5",
        "healthcheck": {
            "interval": "5s",
            "retries": 12.0,
            "startPeriod": "10s",
            "tests": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:80/nginx-health"],
            "timeout": "5s",
        },
        "labels": [
            {"label": "catalogizer.stack", "value": "catalogizer"},
            {"label": "catalogizer.role", "value": "nginx"},
        ],
        "logDriver": "json-file",
        "logOpts": {"max-file": "5", "max-size": "10m"},
        "memory": 256.0,
        "memorySwap": 256.0,
        "mounts": [
            {"source": "catalogizer-nginx-logs", "target": "/var/log/nginx", "type": "volume"},
            {"readOnly": True, "source": "catalogizer-nginx-config", "target": "/etc/nginx/live", "type": "volume"},
        ],
        "name": "catalogizer-nginx",
        "networksAdvanced": [{"aliases": ["nginx"], "name": "catalogizer-front"}],
        "ports": [{"external": 80.0, "internal": 80.0}, {"external": 443.0, "internal": 443.0}],
        "readOnly": True,
        "restart": "unless-stopped",
        "securityOpts": ["no-new-privileges:true"],
        "tmpfs": {
            "/run": "rw,nosuid,nodev,noexec,size=64m",
            "/tmp": "rw,nosuid,nodev,noexec,size=64m",
            "/var/cache/nginx": "rw,nosuid,nodev,noexec,size=64m",
        },
        "ulimits": [{"hard": 64.0, "name": "nproc", "soft": 64.0}],
        "wait": True,
        "waitTimeout": 180.0,
    },
    "alertmanager-container": {
        "capabilities": {"adds": [], "drops": ["ALL"]},
        "command": [
            "--config.file=/etc/alertmanager/alertmanager.yml",
            "--storage.path=/alertmanager",
            "--web.external-url=http://127.0.0.1:9093/",
            "--cluster.listen-address=",
        ],
        "cpus": "0.25",
        "healthcheck": {
            "interval": "5s",
            "retries": 12.0,
            "startPeriod": "10s",
            "tests": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9093/-/ready"],
            "timeout": "5s",
        },
        "labels": [
            {"label": "catalogizer.stack", "value": "catalogizer"},
            {"label": "catalogizer.role", "value": "alertmanager"},
        ],
        "logDriver": "json-file",
        "logOpts": {"max-file": "5", "max-size": "10m"},
        "memory": 128.0,
        "memorySwap": 128.0,
        "name": "catalogizer-alertmanager",
        "networksAdvanced": [{"aliases": ["alertmanager"], "name": "catalogizer-back"}],
        "ports": [{"external": 9093.0, "internal": 9093.0, "ip": "127.0.0.1"}],
        "restart": "unless-stopped",
        "securityOpts": ["no-new-privileges:true"],
        "ulimits": [{"hard": 128.0, "name": "nproc", "soft": 128.0}],
        "wait": True,
        "waitTimeout": 180.0,
    },
    "monitoring-prometheus": {
        "capabilities": {"adds": [], "drops": ["ALL"]},
        "command": [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--web.listen-address=0.0.0.0:9090",
        ],
        "cpus": "1",
        "healthcheck": {
            "interval": "5s",
            "retries": 12.0,
            "startPeriod": "10s",
            "tests": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9090/-/ready"],
            "timeout": "5s",
        },
        "labels": [
            {"label": "catalogizer.stack", "value": "catalogizer"},
            {"label": "catalogizer.role", "value": "prometheus"},
        ],
        "logDriver": "json-file",
        "logOpts": {"max-file": "5", "max-size": "10m"},
        "memory": 512.0,
        "memorySwap": 512.0,
        "mounts": [{"source": "catalogizer-prometheus-data", "target": "/prometheus", "type": "volume"}],
        "name": "catalogizer-prometheus",
        "networksAdvanced": [{"aliases": ["prometheus"], "name": "catalogizer-back"}],
        "ports": [{"external": 9090.0, "internal": 9090.0, "ip": "127.0.0.1"}],
        "restart": "unless-stopped",
        "securityOpts": ["no-new-privileges:true"],
        "ulimits": [{"hard": 256.0, "name": "nproc", "soft": 256.0}],
        "wait": True,
        "waitTimeout": 180.0,
    },
    "backup-scheduler-container": {
        "capabilities": {"adds": [], "drops": ["ALL"]},
        "cpus": "0.5",
        "envs": [
            "PGHOST=postgres",
            "PGUSER=catalogizer",
            "PGDATABASE=catalogizer",
            "PGPASSWORD={postgresPassword}",
            "BACKUP_DIR=/backups",
            "BACKUP_KEEP=14",
            "BACKUP_SCHEDULE=0 2 * * *",
            "BACKUP_GRACE_SECONDS=1800",
            "STACK_NAME=catalogizer",
            "BACKUP_METRICS_PORT=9188",
        ],
        "healthcheck": {
            "interval": "30s",
            "retries": 2.0,
            "startPeriod": "10s",
            "tests": ["CMD", "python3", "/app/backup_scheduler.py", "--check"],
            "timeout": "5s",
        },
        "labels": [
            {"label": "catalogizer.stack", "value": "catalogizer"},
            {"label": "catalogizer.role", "value": "backup-scheduler"},
        ],
        "logDriver": "json-file",
        "logOpts": {"max-file": "5", "max-size": "10m"},
        "memory": 256.0,
        "memorySwap": 256.0,
        "name": "catalogizer-backup-scheduler",
        "networksAdvanced": [{"aliases": ["backup-scheduler"], "name": "catalogizer-back"}],
        "readOnly": True,
        "restart": "unless-stopped",
        "securityOpts": ["no-new-privileges:true"],
        "tmpfs": {
            "/tmp": "rw,nosuid,nodev,noexec,size=64m",
            "/var/lib/catalogizer-backup": "rw,nosuid,nodev,noexec,size=64m",
        },
        "ulimits": [{"hard": 64.0, "name": "nproc", "soft": 64.0}],
        # The backup folder's owner; /opt/catalogizer/backups does not exist here, so the user running the test.
        "user": "{backupOwner}",
        "volumes": [
            {"containerPath": "/backups", "hostPath": "/opt/catalogizer/backups"},
            {"containerPath": "/etc/localtime", "hostPath": "/etc/localtime", "readOnly": True},
        ],
        "wait": True,
        "waitTimeout": 180.0,
    },
    "exporters-postgres-exporter": {
        "capabilities": {"adds": [], "drops": ["ALL"]},
        "cpus": "0.25",
        "envs": [
            "DATA_SOURCE_NAME=postgresql://catalogizer_monitor:{postgresMonitorPassword}@postgres:5432/catalogizer?sslmode=disable"
        ],
        "healthcheck": {
            "interval": "5s",
            "retries": 12.0,
            "startPeriod": "10s",
            "tests": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9187/"],
            "timeout": "5s",
        },
        "labels": [
            {"label": "catalogizer.stack", "value": "catalogizer"},
            {"label": "catalogizer.role", "value": "postgres-exporter"},
        ],
        "logDriver": "json-file",
        "logOpts": {"max-file": "5", "max-size": "10m"},
        "memory": 128.0,
        "memorySwap": 128.0,
        "name": "catalogizer-postgres-exporter",
        "networksAdvanced": [{"aliases": ["postgres-exporter"], "name": "catalogizer-back"}],
        "readOnly": True,
        "restart": "unless-stopped",
        "securityOpts": ["no-new-privileges:true"],
        "tmpfs": {"/tmp": "rw,nosuid,nodev,noexec,size=64m"},
        "ulimits": [{"hard": 64.0, "name": "nproc", "soft": 64.0}],
        "wait": True,
        "waitTimeout": 180.0,
    },
    "exporters-redis-exporter": {
        "capabilities": {"adds": [], "drops": ["ALL"]},
        "cpus": "0.25",
        "envs": ["REDIS_ADDR=redis://redis:6379", "REDIS_USER=catalogizer-exporter", "REDIS_PASSWORD={redisPassword}"],
        "healthcheck": {
            "interval": "5s",
            "retries": 12.0,
            "startPeriod": "10s",
            "tests": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9121/"],
            "timeout": "5s",
        },
        "labels": [
            {"label": "catalogizer.stack", "value": "catalogizer"},
            {"label": "catalogizer.role", "value": "redis-exporter"},
        ],
        "logDriver": "json-file",
        "logOpts": {"max-file": "5", "max-size": "10m"},
        "memory": 128.0,
        "memorySwap": 128.0,
        "name": "catalogizer-redis-exporter",
        "networksAdvanced": [{"aliases": ["redis-exporter"], "name": "catalogizer-back"}],
        "readOnly": True,
        "restart": "unless-stopped",
        "securityOpts": ["no-new-privileges:true"],
        "tmpfs": {"/tmp": "rw,nosuid,nodev,noexec,size=64m"},
        "ulimits": [{"hard": 64.0, "name": "nproc", "soft": 64.0}],
        "wait": True,
        "waitTimeout": 180.0,
    },
    "exporters-nginx-exporter": {
        "capabilities": {"adds": [], "drops": ["ALL"]},
        "command": ["--nginx.scrape-uri=http://nginx:8081/stub_status"],
        "cpus": "0.25",
        "healthcheck": {
            "interval": "5s",
            "retries": 12.0,
            "startPeriod": "10s",
            "tests": ["CMD", "/usr/bin/nginx-prometheus-exporter", "--version"],
            "timeout": "5s",
        },
        "labels": [
            {"label": "catalogizer.stack", "value": "catalogizer"},
            {"label": "catalogizer.role", "value": "nginx-exporter"},
        ],
        "logDriver": "json-file",
        "logOpts": {"max-file": "5", "max-size": "10m"},
        "memory": 128.0,
        "memorySwap": 128.0,
        "name": "catalogizer-nginx-exporter",
        "networksAdvanced": [
            {"aliases": ["nginx-exporter"], "name": "catalogizer-back"},
            {"aliases": ["nginx-exporter"], "name": "catalogizer-front"},
        ],
        "readOnly": True,
        "restart": "unless-stopped",
        "securityOpts": ["no-new-privileges:true"],
        "tmpfs": {"/tmp": "rw,nosuid,nodev,noexec,size=64m"},
        "ulimits": [{"hard": 64.0, "name": "nproc", "soft": 64.0}],
        "wait": True,
        "waitTimeout": 180.0,
    },
    "exporters-blackbox-exporter": {
        "capabilities": {"adds": [], "drops": ["ALL"]},
        "command": ["--config.file=/etc/blackbox_exporter/config.yml"],
        "cpus": "0.25",
        "healthcheck": {
            "interval": "5s",
            "retries": 12.0,
            "startPeriod": "10s",
            "tests": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9115/"],
            "timeout": "5s",
        },
        "labels": [
            {"label": "catalogizer.stack", "value": "catalogizer"},
            {"label": "catalogizer.role", "value": "blackbox-exporter"},
        ],
        "logDriver": "json-file",
        "logOpts": {"max-file": "5", "max-size": "10m"},
        "memory": 128.0,
        "memorySwap": 128.0,
        "name": "catalogizer-blackbox-exporter",
        "networksAdvanced": [
            {"aliases": ["blackbox-exporter"], "name": "catalogizer-back"},
            {"aliases": ["blackbox-exporter"], "name": "catalogizer-front"},
        ],
        "restart": "unless-stopped",
        "securityOpts": ["no-new-privileges:true"],
        "ulimits": [{"hard": 64.0, "name": "nproc", "soft": 64.0}],
        "wait": True,
        "waitTimeout": 180.0,
    },
    "monitoring-grafana": {
        "capabilities": {"adds": [], "drops": ["ALL"]},
        "cpus": "0.5",
        "envs": [
            "GF_SECURITY_ADMIN_USER=admin",
            "GF_SECURITY_ADMIN_PASSWORD__FILE=/etc/grafana/catalogizer-admin-password",
            "GF_USERS_ALLOW_SIGN_UP=false",
        ],
        "healthcheck": {
            "interval": "5s",
            "retries": 12.0,
            "startPeriod": "10s",
            "tests": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:3000/api/health"],
            "timeout": "5s",
        },
        "labels": [
            {"label": "catalogizer.stack", "value": "catalogizer"},
            {"label": "catalogizer.role", "value": "grafana"},
        ],
        "logDriver": "json-file",
        "logOpts": {"max-file": "5", "max-size": "10m"},
        "memory": 512.0,
        "memorySwap": 512.0,
        "mounts": [{"source": "catalogizer-grafana-data", "target": "/var/lib/grafana", "type": "volume"}],
        "name": "catalogizer-grafana",
        "networksAdvanced": [{"name": "catalogizer-back"}],
        "ports": [{"external": 3000.0, "internal": 3000.0, "ip": "127.0.0.1"}],
        "restart": "unless-stopped",
        "securityOpts": ["no-new-privileges:true"],
        "ulimits": [{"hard": 256.0, "name": "nproc", "soft": 256.0}],
        "wait": True,
        "waitTimeout": 180.0,
    },
    "catalogizer-api-0": {
        "capabilities": {"adds": [], "drops": ["ALL"]},
        "cpus": "2",
        "destroyGraceSeconds": 30.0,
        "envs": [
            "HOST=0.0.0.0",
            "PORT=8080",
            "API_PORT=8080",
            "APP_ENV=production",
            "GIN_MODE=release",
            "LOG_LEVEL=info",
            "DATABASE_TYPE=postgres",
            "DATABASE_HOST=postgres",
            "DATABASE_PORT=5432",
            "DATABASE_NAME=catalogizer",
            "DATABASE_USER=catalogizer_api",
            "DATABASE_SSL_MODE=disable",
            "POSTGRES_HOST=postgres",
            "POSTGRES_PORT=5432",
            "POSTGRES_DB=catalogizer",
            "POSTGRES_USER=catalogizer_api",
            "REDIS_ADDR=redis:6379",
            "REDIS_HOST=redis",
            "REDIS_PORT=6379",
            "ADMIN_USERNAME=admin",
            "CORS_ENABLED=true",
            "CORS_ALLOWED_ORIGINS=https://catalogizer.example.com",
            "SMB_ENABLED=true",
            "MEDIA_ROOT_PATH=/media",
            "DATABASE_PASSWORD={postgresApiPassword}",
            "POSTGRES_PASSWORD={postgresApiPassword}",
            "REDIS_PASSWORD={redisPassword}",
            "JWT_SECRET={jwtSecret}",
            "ADMIN_PASSWORD={adminPassword}",
        ],
        "healthcheck": {
            "interval": "2s",
            "retries": 30.0,
            "startPeriod": "20s",
            "tests": ["CMD", "wget", "-q", "-O", "/dev/null", "http://localhost:8080/health"],
            "timeout": "5s",
        },
        "labels": [
            {"label": "catalogizer.stack", "value": "catalogizer"},
            {"label": "catalogizer.role", "value": "api"},
            {"label": "catalogizer.replica", "value": "0"},
        ],
        "logDriver": "json-file",
        "logOpts": {"max-file": "5", "max-size": "10m"},
        "memory": 2048.0,
        "memorySwap": 2048.0,
        "mounts": [
            {"readOnly": True, "source": "/opt/catalogizer/media", "target": "/media", "type": "bind"},
            {"source": "catalogizer-api-logs", "target": "/app/logs", "type": "volume"},
        ],
        "networksAdvanced": [
            {"aliases": ["api", "{apiAlias}"], "name": "catalogizer-front"},
            {"aliases": ["api"], "name": "catalogizer-back"},
        ],
        "restart": "unless-stopped",
        "securityOpts": ["no-new-privileges:true"],
        "stopTimeout": 30.0,
        "ulimits": [{"hard": 512.0, "name": "nproc", "soft": 512.0}],
        "wait": True,
        "waitTimeout": 180.0,
    },
}


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Deployment]:
    """One production deployment for the whole module: the tests only read it."""
    workspace = Workspace(tmp_path_factory.mktemp("prod"))
    return workspace, workspace.deploy("prod")


IMAGES = {
    "postgres-container": "postgres-image",
    # The never-started carriers that hold the files of read-only containers use the same image.
    "catalogizer-postgres-config": "postgres-image",
    "redis-container": "redis-image",
    "catalogizer-redis-config": "redis-image",
    "proxy-container": "proxy-image",
    "alertmanager-container": "alertmanager-image",
    "monitoring-prometheus": "monitoring-prometheus-image",
    "backup-scheduler-container": "backup-scheduler-image",
    "exporters-postgres-exporter": "exporters-postgres-exporter-image",
    "exporters-redis-exporter": "exporters-redis-exporter-image",
    "exporters-nginx-exporter": "exporters-nginx-exporter-image",
    "exporters-blackbox-exporter": "exporters-blackbox-exporter-image",
    "monitoring-grafana": "monitoring-grafana-image",
    "catalogizer-api-0": "api-image-build",
}
UPLOADS = {
    "postgres-container": [],
    # Files reach read-only containers through never-started carriers (issue 10).
    "catalogizer-postgres-config": ["/etc/catalogizer-postgres/superuser-password"],
    "redis-container": [],
    "catalogizer-redis-config": ["/etc/catalogizer-redis/redis.conf"],
    # Its configuration reaches nginx through the proxy-config hook, never as uploads.
    "proxy-container": [],
    "alertmanager-container": ["/etc/alertmanager/alertmanager.yml"],
    "monitoring-prometheus": ["/etc/prometheus/prometheus.yml", "/etc/prometheus/alerts.yml"],
    "backup-scheduler-container": [],
    "exporters-postgres-exporter": [],
    "exporters-redis-exporter": [],
    "exporters-nginx-exporter": [],
    "exporters-blackbox-exporter": ["/etc/blackbox_exporter/config.yml", "/etc/blackbox_exporter/stack-ca.pem"],
    "monitoring-grafana": [
        "/etc/grafana/catalogizer-admin-password",
        "/etc/grafana/provisioning/datasources/prometheus.yaml",
        "/etc/grafana/provisioning/dashboards/catalogizer.yaml",
        "/var/lib/catalogizer-dashboards/catalogizer.json",
    ],
    "catalogizer-api-0": [],
}


def _filled(value: Any, secrets: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, secret in secrets.items():
            value = value.replace("{" + name + "}", secret)
        return value
    if isinstance(value, dict):
        return {k: _filled(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, secrets) for v in value]
    return value


def test_every_production_container(production: tuple[Workspace, Deployment]) -> None:
    _, prod = production
    secrets = {k: prod.outputs[k] for k in ("postgresPassword", "redisPassword", "adminPassword", "grafanaPassword")}
    for generated in ("jwtSecret", "postgresApiPassword", "postgresMonitorPassword"):
        secrets[generated] = prod.named(f"secrets-{generated}").state["result"]
    secrets["backupOwner"] = f"{os.getuid()}:{os.getgid()}"
    # The API version alias is a hash of the rollout; it must be exactly what nginx is switched to.
    conf = prod.named("proxy-config").inputs["environment"]["NGINX_CONF"]
    secrets["apiAlias"] = re.search(r'set \$api_upstream "(api-[0-9a-f]{12})";', conf).group(1)
    containers = {c.name: c for c in prod.of_type("docker:index/container:Container")}
    assert sorted(containers) == sorted(EXPECTED)
    for name, container in containers.items():
        inputs = {k: v for k, v in container.inputs.items() if k not in ("uploads", "image")}
        assert inputs == _filled(EXPECTED[name], secrets), name
        image = prod.named(IMAGES[name]).state
        built = json.loads(image["stdout"])["image"] if "stdout" in image else None
        assert container.inputs["image"] == image.get("imageId", image.get("repoDigest", built)), name
        assert [u["file"] for u in container.inputs.get("uploads") or []] == UPLOADS[name], name


def _labels(role: str) -> list[dict[str, str]]:
    return [{"label": "catalogizer.stack", "value": "catalogizer"}, {"label": "catalogizer.role", "value": role}]


def test_images_network_and_volumes(production: tuple[Workspace, Deployment]) -> None:
    workspace, prod = production
    checkout = str(workspace.project.parent / "catalogizer")  # the sibling checkout Pulumi.prod.yaml names
    root = str(Path(__file__).resolve().parents[2])
    build = prod.named("api-image-build").inputs
    assert build["create"] == "python3 scripts/api_image.py" and build["logging"] == "none"
    assert {k: v for k, v in build["environment"].items() if k != "IMAGE_TAG"} == {
        "BUILD_ARGS": '{"GO_VERSION": "1.25"}',
        "BUILD_CONTEXT": checkout,
        "DOCKERFILE": f"{checkout}/catalog-api/Dockerfile",
        "IMAGE_REPOSITORY": "catalogizer-api",
        "KEEP_IMAGES": "3",
        "PLATFORM": "linux/amd64",
    }
    assert re.fullmatch(r"ctx-[0-9a-f]{12}-[0-9a-f]{6}", build["environment"]["IMAGE_TAG"])
    assert prod.named("backup-scheduler-image").inputs == {
        "build": {
            "args": {"BASE_IMAGE": "postgres:15-alpine"},
            "context": root,
            "dockerfile": f"{root}/dockerfiles/backup-scheduler/Dockerfile",
            "platform": "linux/amd64",
        },
        "buildOnPreview": False,
        "imageName": "catalogizer-backup-scheduler:latest",
        "skipPush": True,
    }
    pulled = {r.name: r.inputs for r in prod.of_type("docker:index/remoteImage:RemoteImage")}
    assert pulled == {
        "postgres-image": {"keepLocally": True, "name": "postgres:15-alpine"},
        "redis-image": {"keepLocally": True, "name": "redis:7-alpine"},
        "proxy-image": {"keepLocally": True, "name": "nginx:1.27-alpine"},
        "monitoring-prometheus-image": {"keepLocally": True, "name": "prom/prometheus:v2.53.2"},
        "monitoring-grafana-image": {"keepLocally": True, "name": "grafana/grafana:11.2.0"},
        "alertmanager-image": {"keepLocally": True, "name": "prom/alertmanager:v0.27.0"},
        "exporters-postgres-exporter-image": {
            "keepLocally": True,
            "name": "quay.io/prometheuscommunity/postgres-exporter:v0.15.0",
        },
        "exporters-redis-exporter-image": {"keepLocally": True, "name": "oliver006/redis_exporter:v1.62.0-alpine"},
        "exporters-nginx-exporter-image": {"keepLocally": True, "name": "nginx/nginx-prometheus-exporter:1.3.0"},
        "exporters-blackbox-exporter-image": {"keepLocally": True, "name": "prom/blackbox-exporter:v0.25.0"},
    }
    # Front (nginx and the API) and back (the API and what is behind it): nginx never reaches the data stores.
    assert prod.named("network-bridge").inputs == {
        "driver": "bridge",
        "labels": _labels("network-back"),
        "name": "catalogizer-back",
    }
    assert prod.named("network-front").inputs == {
        "driver": "bridge",
        "labels": _labels("network-front"),
        "name": "catalogizer-front",
    }
    volumes = {r.name: r.inputs for r in prod.of_type("docker:index/volume:Volume")}
    roles = (
        "postgres-data", "redis-data", "prometheus-data", "grafana-data", "api-logs", "nginx-logs", "nginx-config",
        "postgres-config", "redis-config",  # the carriers' files (issue 10)
    )  # fmt: skip
    assert volumes == {f"volumes-{role}": {"labels": _labels(role), "name": f"catalogizer-{role}"} for role in roles}


def test_self_signed_tls_material(dev: Deployment) -> None:
    key, cert = dev.named("tls-key"), dev.named("tls-cert")
    assert key.inputs == {"algorithm": "ECDSA", "ecdsaCurve": "P256"}
    assert cert.inputs == {
        "allowedUses": ["digital_signature", "key_encipherment", "server_auth"],
        "dnsNames": ["localhost"],
        "earlyRenewalHours": 720,
        "ipAddresses": ["127.0.0.1"],
        "privateKeyPem": key.state["privateKeyPem"],
        "subject": {"commonName": "localhost", "organization": "Catalogizer"},
        "validityPeriodHours": 8760,
    }
    assert cert.is_secret("privateKeyPem")


def test_development_api_environment(dev: Deployment) -> None:
    env = dev.env(dev.container("api"))
    differs = {k: env[k] for k in ("APP_ENV", "GIN_MODE", "LOG_LEVEL", "CORS_ENABLED", "CORS_ALLOWED_ORIGINS")}
    # No CORS origins configured: CORS off, not "on for nobody".
    assert differs == {
        "APP_ENV": "development",
        "GIN_MODE": "debug",
        "LOG_LEVEL": "debug",
        "CORS_ENABLED": "false",
        "CORS_ALLOWED_ORIGINS": "",
    }
    assert dev.container("api").inputs["mounts"][0]["source"].endswith("/media")
