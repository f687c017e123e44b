"""redis.conf for the stack's Redis: ACL users, append-only persistence, memory cap."""

from __future__ import annotations

import hashlib

CONF_DIR = "/etc/catalogizer-redis"
CONF_PATH = f"{CONF_DIR}/redis.conf"
DATA_DIR = "/data"
# Headroom under the container limit for the AOF rewrite fork and allocator overhead.
MAXMEMORY_FRACTION = 0.75


def maxmemory_mb(container_memory_mb: int) -> int:
    return int(container_memory_mb * MAXMEMORY_FRACTION)


# The API's user. The real API can only be the `default` user: catalog-api/main.go builds its
# client with redis.Options{Addr, Password} and no Username, so go-redis sends `AUTH <password>`,
# which Redis applies to `default`. That user is therefore the least-privileged one: every key
# and channel, every command except the @dangerous and @admin categories (FLUSHALL, CONFIG,
# REPLICAOF, DEBUG, SHUTDOWN, MONITOR, ACL, ...), so a leaked password cannot wipe, reconfigure
# or replicate the cache away. No other user exists: nothing on the network holds admin rights.
# ACL rules: https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/
API_ACL_RULES = "~* &* +@all -@dangerous -@admin"
# The Redis exporter's user (same password, REDIS_USER): the read-only server commands it runs
# (oliver006/redis_exporter README, "Authenticating with Redis" ACL example), no key access.
EXPORTER_USER = "catalogizer-exporter"
EXPORTER_ACL_RULES = (
    "resetchannels -@all +ping +info +config|get +client|list +slowlog|get +slowlog|len "
    "+latency|latest +memory|stats +dbsize +select +cluster|info +command|count"
)


def acl_user_line(user: str, password: str, rules: str) -> str:
    # `#<sha256>` stores only the password's SHA-256 (ACL "#<hash>" rule), so the uploaded file
    # does not contain the password itself; `resetpass`/`resetkeys` start from a clean user.
    digest = hashlib.sha256(password.encode()).hexdigest()
    return f"user {user} reset on #{digest} {rules}"


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
            # Replaces `requirepass` (which only sets the default user's password, with +@all).
            acl_user_line("default", password, API_ACL_RULES),
            acl_user_line(EXPORTER_USER, password, EXPORTER_ACL_RULES),
            f"dir {DATA_DIR}",
            "appendonly yes",
            "appendfsync everysec",
            f"maxmemory {maxmemory_mb(container_memory_mb)}mb",
            # Cache and rate-limit keys can be rebuilt; evicting them beats refusing writes.
            "maxmemory-policy allkeys-lru",
            "",
        ]
    )
