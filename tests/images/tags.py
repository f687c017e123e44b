"""Tags of the locally built test images (see build.sh, which must agree)."""

from __future__ import annotations

from pathlib import Path

BASE = "catalogizer-test/debian-base:bookworm"
POSTGRES = "catalogizer-test/postgres:15"
REDIS = "catalogizer-test/redis:7"
NGINX = "catalogizer-test/nginx:1.22"
PYTHON_RUNTIME = "catalogizer-test/python-runtime:bookworm"
# Debian's real Prometheus; Grafana is a stand-in (see grafana-standin/Dockerfile).
PROMETHEUS = "catalogizer-test/prometheus:2"
GRAFANA_STANDIN = "catalogizer-test/grafana-standin:11"

API_REPOSITORY = "catalogizer-test/api-standin"
API_V1 = f"{API_REPOSITORY}:v1"
API_V2 = f"{API_REPOSITORY}:v2"
API_BROKEN = f"{API_REPOSITORY}:broken"

# Off-host backup targets (issue 11).
SFTP = "catalogizer-test/sftp:bookworm"
RCLONE = "catalogizer-test/rclone:bookworm"

ALL = (
    BASE,
    POSTGRES,
    REDIS,
    NGINX,
    PYTHON_RUNTIME,
    PROMETHEUS,
    GRAFANA_STANDIN,
    API_V1,
    API_V2,
    API_BROKEN,
    SFTP,
    RCLONE,
)

# A directory laid out like a Catalogizer checkout: build it with this as the
# context and catalog-api/Dockerfile as the Dockerfile, as the real program does.
STANDIN_CHECKOUT = Path(__file__).resolve().parent.parent / "standin_catalogizer"
STANDIN_DOCKERFILE = "catalog-api/Dockerfile"
# Container port and user of the stand-in API (same as Catalogizer's image).
API_PORT = 8080
API_UID = 1001
