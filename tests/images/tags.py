"""Tags of the locally built test images (see build.sh, which must agree)."""

from __future__ import annotations

import os
from pathlib import Path

BASE = "catalogizer-test/debian-base:bookworm"
# "-r2": the entrypoint now follows upstream on POSTGRES_PASSWORD_FILE and initdb's trust default;
# a new tag, so test sessions on other branches keep their image instead of rebuilding it.
POSTGRES = "catalogizer-test/postgres:15-r2"
REDIS = "catalogizer-test/redis:7"
NGINX = "catalogizer-test/nginx:1.22"
PYTHON_RUNTIME = "catalogizer-test/python-runtime:bookworm"
# Not Grafana: a stand-in (see grafana-standin/Dockerfile); Debian does not package Grafana.
# "-r2": runs as 472:0 and reads GF_SECURITY_ADMIN_PASSWORD__FILE like the image (issue 10); a
# new tag, so sessions on branches with the older stand-in keep theirs instead of rebuilding it
# under each other (a rebuilt tag left a running test's image ID dangling: "No such image").
GRAFANA_STANDIN = "catalogizer-test/grafana-standin:11-r2"

# build.sh reads the same variable: a worktree changing the stand-in can test it
# under its own tags without replacing the shared ones other sessions use.
API_REPOSITORY = os.environ.get("CATALOGIZER_TEST_API_REPOSITORY", "catalogizer-test/api-standin")
API_V1 = f"{API_REPOSITORY}:v1"
API_V2 = f"{API_REPOSITORY}:v2"
API_BROKEN = f"{API_REPOSITORY}:broken"

# Off-host backup targets (issue 11).
SFTP = "catalogizer-test/sftp:bookworm"
RCLONE = "catalogizer-test/rclone:bookworm"

# Monitoring (issue 12): Debian's packages, entrypoint = the binary as upstream (build.sh).
MONITORING = {
    name: f"catalogizer-test/mon-{name}:bookworm"
    for name in (
        "prometheus",
        "alertmanager",
        "postgres-exporter",
        "redis-exporter",
        "blackbox-exporter",
        "nginx-exporter",
    )
}

ALL = (
    BASE,
    POSTGRES,
    REDIS,
    NGINX,
    PYTHON_RUNTIME,
    GRAFANA_STANDIN,
    API_V1,
    API_V2,
    API_BROKEN,
    *MONITORING.values(),
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
