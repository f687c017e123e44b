"""redis.conf for the stack's Redis: password, append-only persistence, memory cap."""

from __future__ import annotations

CONF_PATH = "/etc/catalogizer-redis.conf"
DATA_DIR = "/data"
# Headroom under the container limit for the AOF rewrite fork and allocator overhead.
MAXMEMORY_FRACTION = 0.75


def maxmemory_mb(container_memory_mb: int) -> int:
    return int(container_memory_mb * MAXMEMORY_FRACTION)


def render_redis_conf(password: str, container_memory_mb: int) -> str:
    if not password or any(c.isspace() or c in "\"'\\" for c in password):
        # Never echo the value: this text can reach logs.
        raise ValueError("redis password must be non-empty and free of whitespace, quotes and backslashes")
    if container_memory_mb < 64:
        raise ValueError(f"container_memory_mb={container_memory_mb} is below the 64 MB floor")
    return "\n".join(
        [
            "bind 0.0.0.0",
            "port 6379",
            "protected-mode yes",
            f"requirepass {password}",
            f"dir {DATA_DIR}",
            "appendonly yes",
            "appendfsync everysec",
            f"maxmemory {maxmemory_mb(container_memory_mb)}mb",
            # Cache and rate-limit keys can be rebuilt; evicting them beats refusing writes.
            "maxmemory-policy allkeys-lru",
            "",
        ]
    )
