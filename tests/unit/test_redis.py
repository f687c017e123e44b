from __future__ import annotations

import hashlib

from program import Deployment
from workspace import Workspace

from rendering.redis import CONF_PATH


def test_redis_container(dev: Deployment) -> None:
    redis = dev.container("redis")
    password = dev.outputs["redisPassword"]
    assert dev.named("redis-image").inputs["name"] == "redis:7-alpine"
    assert redis.inputs["command"] == ["redis-server", CONF_PATH]
    carrier = dev.container("redis-config")
    (upload,) = carrier.inputs["uploads"]
    assert upload["file"] == CONF_PATH and carrier.is_secret("uploads[0].content")
    assert "uploads" not in redis.inputs and redis.inputs["readOnly"] is True
    lines = [line for line in upload["content"].splitlines() if line]
    conf = dict(line.split(" ", 1) for line in lines if not line.startswith("user "))
    users = {line.split()[1]: line for line in lines if line.startswith("user ")}
    # The API's (default) user: every command but @dangerous/@admin, password stored as its SHA-256.
    digest = hashlib.sha256(password.encode()).hexdigest()
    assert users["default"] == f"user default reset on #{digest} ~* &* +@all -@dangerous -@admin"
    # The exporter's: read-only server commands, no keys.
    assert users["catalogizer-exporter"].startswith(f"user catalogizer-exporter reset on #{digest} resetchannels -@all")
    assert "~" not in users["catalogizer-exporter"] and set(users) == {"default", "catalogizer-exporter"}
    assert "requirepass" not in conf and password not in upload["content"]
    assert conf["appendonly"] == "yes" and conf["dir"] == "/data"
    assert int(conf["maxmemory"].removesuffix("mb")) < redis.inputs["memory"] == 512
    # The health check authenticates through the environment, not argv.
    assert dev.env(redis)["REDISCLI_AUTH"] == password and redis.is_secret("envs")
    assert password not in " ".join(redis.inputs["healthcheck"]["tests"] + redis.inputs["command"])
    assert "ping" in redis.inputs["healthcheck"]["tests"][-1]
    assert redis.inputs["wait"] is True and redis.inputs["restart"] == "unless-stopped"
    assert redis.inputs["mounts"][0]["source"] == "catalogizer-dev-redis-data"
    assert not redis.inputs.get("ports")


def test_redis_host_port_binds_loopback_only(workspace: Workspace) -> None:
    redis = workspace.deploy("dev", {"redis": {"hostPort": 16379}}).container("redis")
    (port,) = redis.inputs["ports"]
    assert (port["internal"], port["external"], port["ip"]) == (6379, 16379, "127.0.0.1")
