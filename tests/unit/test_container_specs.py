"""Every container of the production stack, input by input, as literals.

Memory limits, stop signals and grace periods, health checks, log rotation, mounts, ports
and aliases are each a decision; a change to any of them takes a change here. Secrets are
named ({postgresPassword}...) and filled in from the stack; images are checked apart.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from program import Deployment
from workspace import Workspace

EXPECTED: dict[str, dict[str, Any]] = {
    "postgres-container": {
        "command": [
            "postgres",
            "-c",
            "shared_preload_libraries=pg_stat_statements",
            "-c",
            "pg_stat_statements.track=all",
        ],
        "destroyGraceSeconds": 60,
        "envs": [
            "POSTGRES_USER=catalogizer",
            "POSTGRES_PASSWORD={postgresPassword}",
            "POSTGRES_DB=catalogizer",
            "PGDATA=/var/lib/postgresql/data/pgdata",
        ],
        "healthcheck": {
            "interval": "5s",
            "retries": 12,
            "startPeriod": "30s",
            "tests": ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "catalogizer", "-d", "catalogizer"],
            "timeout": "5s",
        },
        "labels": [
            {"label": "catalogizer.stack", "value": "catalogizer"},
            {"label": "catalogizer.role", "value": "postgres"},
        ],
        "logDriver": "json-file",
        "logOpts": {"max-file": "5", "max-size": "10m"},
        "memory": 2048,
        "memorySwap": 2048,
        "mounts": [{"source": "catalogizer-postgres-data", "target": "/var/lib/postgresql/data", "type": "volume"}],
        "name": "catalogizer-postgres",
        "networksAdvanced": [{"aliases": ["postgres"], "name": "catalogizer-net"}],
        "ports": [],
        "restart": "unless-stopped",
        "shmSize": 256,
        "stopSignal": "SIGINT",
        "stopTimeout": 60,
        "wait": True,
        "waitTimeout": 180,
    },
    "redis-container": {
        "command": ["redis-server", "/etc/catalogizer-redis.conf"],
        "envs": ["REDISCLI_AUTH={redisPassword}"],
        "healthcheck": {
            "interval": "5s",
            "retries": 12,
            "startPeriod": "10s",
            "tests": ["CMD-SHELL", "redis-cli ping | grep -q PONG"],
            "timeout": "5s",
        },
        "labels": [
            {"label": "catalogizer.stack", "value": "catalogizer"},
            {"label": "catalogizer.role", "value": "redis"},
        ],
        "logDriver": "json-file",
        "logOpts": {"max-file": "5", "max-size": "10m"},
        "memory": 512,
        "memorySwap": 512,
        "mounts": [{"source": "catalogizer-redis-data", "target": "/data", "type": "volume"}],
        "name": "catalogizer-redis",
        "networksAdvanced": [{"aliases": ["redis"], "name": "catalogizer-net"}],
        "ports": [],
        "restart": "unless-stopped",
        "wait": True,
        "waitTimeout": 180,
    },
    "proxy-container": {
        "healthcheck": {
            "interval": "5s",
            "retries": 12,
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
        "memory": 256,
        "memorySwap": 256,
        "command": ["nginx", "-c", "/etc/nginx/live/current/nginx.conf", "-g", "daemon off;"],
        "mounts": [
            {"source": "catalogizer-nginx-logs", "target": "/var/log/nginx", "type": "volume"},
            {"readOnly": True, "source": "catalogizer-nginx-config", "target": "/etc/nginx/live", "type": "volume"},
        ],
        "name": "catalogizer-nginx",
        "networksAdvanced": [{"aliases": ["nginx"], "name": "catalogizer-net"}],
        "ports": [{"external": 80, "internal": 80}, {"external": 443, "internal": 443}],
        "restart": "unless-stopped",
        "wait": True,
        "waitTimeout": 180,
    },
    "alertmanager-container": {
        "command": [
            "--config.file=/etc/alertmanager/alertmanager.yml",
            "--storage.path=/alertmanager",
            "--web.external-url=http://127.0.0.1:9093/",
            "--cluster.listen-address=",
        ],
        "healthcheck": {
            "interval": "5s",
            "retries": 12,
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
        "memory": 128,
        "memorySwap": 128,
        "name": "catalogizer-alertmanager",
        "networksAdvanced": [{"aliases": ["alertmanager"], "name": "catalogizer-net"}],
        "ports": [{"external": 9093, "internal": 9093, "ip": "127.0.0.1"}],
        "restart": "unless-stopped",
        "wait": True,
        "waitTimeout": 180,
    },
    "monitoring-prometheus": {
        "command": [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--web.listen-address=0.0.0.0:9090",
        ],
        "healthcheck": {
            "interval": "5s",
            "retries": 12,
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
        "memory": 512,
        "memorySwap": 512,
        "mounts": [{"source": "catalogizer-prometheus-data", "target": "/prometheus", "type": "volume"}],
        "name": "catalogizer-prometheus",
        "networksAdvanced": [{"aliases": ["prometheus"], "name": "catalogizer-net"}],
        "ports": [{"external": 9090, "internal": 9090, "ip": "127.0.0.1"}],
        "restart": "unless-stopped",
        "wait": True,
        "waitTimeout": 180,
    },
    "backup-scheduler-container": {
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
            "retries": 2,
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
        "memory": 256,
        "memorySwap": 256,
        "name": "catalogizer-backup-scheduler",
        "networksAdvanced": [{"aliases": ["backup-scheduler"], "name": "catalogizer-net"}],
        "restart": "unless-stopped",
        "volumes": [
            {"containerPath": "/backups", "hostPath": "/opt/catalogizer/backups"},
            {"containerPath": "/etc/localtime", "hostPath": "/etc/localtime", "readOnly": True},
        ],
        "wait": True,
        "waitTimeout": 180,
    },
    "exporters-postgres-exporter": {
        "envs": [
            "DATA_SOURCE_NAME=postgresql://catalogizer:{postgresPassword}@postgres:5432/catalogizer?sslmode=disable"
        ],
        "healthcheck": {
            "interval": "5s",
            "retries": 12,
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
        "memory": 128,
        "memorySwap": 128,
        "name": "catalogizer-postgres-exporter",
        "networksAdvanced": [{"aliases": ["postgres-exporter"], "name": "catalogizer-net"}],
        "restart": "unless-stopped",
        "wait": True,
        "waitTimeout": 180,
    },
    "exporters-redis-exporter": {
        "envs": ["REDIS_ADDR=redis://redis:6379", "REDIS_PASSWORD={redisPassword}"],
        "healthcheck": {
            "interval": "5s",
            "retries": 12,
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
        "memory": 128,
        "memorySwap": 128,
        "name": "catalogizer-redis-exporter",
        "networksAdvanced": [{"aliases": ["redis-exporter"], "name": "catalogizer-net"}],
        "restart": "unless-stopped",
        "wait": True,
        "waitTimeout": 180,
    },
    "exporters-nginx-exporter": {
        "command": ["--nginx.scrape-uri=http://nginx:8081/stub_status"],
        "healthcheck": {
            "interval": "5s",
            "retries": 12,
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
        "memory": 128,
        "memorySwap": 128,
        "name": "catalogizer-nginx-exporter",
        "networksAdvanced": [{"aliases": ["nginx-exporter"], "name": "catalogizer-net"}],
        "restart": "unless-stopped",
        "wait": True,
        "waitTimeout": 180,
    },
    "exporters-blackbox-exporter": {
        "command": ["--config.file=/etc/blackbox_exporter/config.yml"],
        "healthcheck": {
            "interval": "5s",
            "retries": 12,
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
        "memory": 128,
        "memorySwap": 128,
        "name": "catalogizer-blackbox-exporter",
        "networksAdvanced": [{"aliases": ["blackbox-exporter"], "name": "catalogizer-net"}],
        "restart": "unless-stopped",
        "wait": True,
        "waitTimeout": 180,
    },
    "monitoring-grafana": {
        "envs": [
            "GF_SECURITY_ADMIN_USER=admin",
            "GF_SECURITY_ADMIN_PASSWORD={grafanaPassword}",
            "GF_USERS_ALLOW_SIGN_UP=false",
        ],
        "healthcheck": {
            "interval": "5s",
            "retries": 12,
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
        "memory": 512,
        "memorySwap": 512,
        "mounts": [{"source": "catalogizer-grafana-data", "target": "/var/lib/grafana", "type": "volume"}],
        "name": "catalogizer-grafana",
        "networksAdvanced": [{"name": "catalogizer-net"}],
        "ports": [{"external": 3000, "internal": 3000, "ip": "127.0.0.1"}],
        "restart": "unless-stopped",
        "wait": True,
        "waitTimeout": 180,
    },
    "catalogizer-api-0": {
        "destroyGraceSeconds": 30,
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
            "DATABASE_USER=catalogizer",
            "DATABASE_SSL_MODE=disable",
            "POSTGRES_HOST=postgres",
            "POSTGRES_PORT=5432",
            "POSTGRES_DB=catalogizer",
            "POSTGRES_USER=catalogizer",
            "REDIS_ADDR=redis:6379",
            "REDIS_HOST=redis",
            "REDIS_PORT=6379",
            "ADMIN_USERNAME=admin",
            "CORS_ENABLED=true",
            "CORS_ALLOWED_ORIGINS=https://catalogizer.example.com",
            "SMB_ENABLED=true",
            "MEDIA_ROOT_PATH=/media",
            "DATABASE_PASSWORD={postgresPassword}",
            "POSTGRES_PASSWORD={postgresPassword}",
            "REDIS_PASSWORD={redisPassword}",
            "JWT_SECRET={jwtSecret}",
            "ADMIN_PASSWORD={adminPassword}",
        ],
        "healthcheck": {
            "interval": "2s",
            "retries": 30,
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
        "memory": 2048,
        "memorySwap": 2048,
        "mounts": [
            {"readOnly": True, "source": "/opt/catalogizer/media", "target": "/media", "type": "bind"},
            {"source": "catalogizer-api-logs", "target": "/app/logs", "type": "volume"},
        ],
        "networksAdvanced": [{"aliases": ["api", "{apiAlias}"], "name": "catalogizer-net"}],
        "restart": "unless-stopped",
        "stopTimeout": 30,
        "wait": True,
        "waitTimeout": 180,
    },
}


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Deployment]:
    """One production deployment for the whole module: the tests only read it."""
    workspace = Workspace(tmp_path_factory.mktemp("prod"))
    return workspace, workspace.deploy("prod")


IMAGES = {
    "postgres-container": "postgres-image",
    "redis-container": "redis-image",
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
    "redis-container": ["/etc/catalogizer-redis.conf"],
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
    secrets["jwtSecret"] = prod.named("secrets-jwtSecret").state["result"]
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
    assert prod.named("network-bridge").inputs == {
        "driver": "bridge",
        "labels": _labels("network"),
        "name": "catalogizer-net",
    }
    volumes = {r.name: r.inputs for r in prod.of_type("docker:index/volume:Volume")}
    roles = ("postgres-data", "redis-data", "prometheus-data", "grafana-data", "api-logs", "nginx-logs", "nginx-config")
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
