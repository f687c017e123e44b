"""The validated model of one nginx site: every value rendering/nginx*.py interpolates.

Split from ``rendering/nginx.py`` (the top-level file); ``rendering/nginx_locations.py`` and
``rendering/nginx_servers.py`` render the locations and server blocks from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Everything interpolated into the config is checked against a strict pattern:
# a stray ';', '{', quote or '$' would change the meaning of the file, or
# smuggle in directives.
_SERVER_NAME_RE = re.compile(r"^[A-Za-z0-9_*][A-Za-z0-9._*-]*$")
_HOST_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9._-]*[A-Za-z0-9_])?$")
# An IPv4 address or name, optionally with a port ("127.0.0.1:5353").
_RESOLVER_RE = re.compile(r"^[A-Za-z0-9._-]+(:[0-9]{1,5})?$")
_PATH_RE = re.compile(r"^/[A-Za-z0-9._/@+=,:~-]*$")
# TLS files may also be relative: nginx resolves them against the folder of the -c file.
_CONF_PATH_RE = re.compile(r"^/?[A-Za-z0-9._@+=,:~-][A-Za-z0-9._/@+=,:~-]*$")
_CONFIG_ID_RE = re.compile(r"^[0-9a-f]{0,64}$")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]*( [a-z_][a-z0-9_-]*)?$")
_HEADER_VALUE_FORBIDDEN = re.compile(r"[\"\\$\x00-\x1f\x7f]")

# Default Content-Security-Policy: the API serves JSON, images and SVG placeholders, never
# pages that load scripts from elsewhere, so 'self' breaks nothing; frame-ancestors 'self' is
# the modern form of X-Frame-Options SAMEORIGIN.
DEFAULT_CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'self'"


@dataclass(frozen=True)
class NginxSite:
    """Everything that varies between deployments of the proxy.

    Construction validates the values (``ValueError`` naming the field), so an
    invalid site can never reach the renderer.
    """

    server_name: str  # the public domain, e.g. "localhost" or "catalog.example.com"
    tls_enabled: bool  # False only for tls.mode=off (HTTP only)
    hsts: bool  # HSTS on every HTTPS response; ignored when TLS is off (browsers ignore HSTS over HTTP)
    public_https_port: int = 443  # HOST port of HTTPS, used in the HTTP->HTTPS redirect
    api_host: str = "api"  # Docker network alias shared by all API replicas
    api_port: int = 8080
    resolver: str = "127.0.0.11"  # Docker's embedded DNS
    # Short: a removed API container's address must leave nginx's cache quickly, since
    # connecting to it then waits for proxy_connect_timeout instead of being refused.
    resolver_valid_seconds: int = 1
    http_listen_port: int = 80  # ports INSIDE the container
    https_listen_port: int = 443
    cert_path: str = "/etc/nginx/tls/cert.pem"
    key_path: str = "/etc/nginx/tls/key.pem"
    log_dir: str = "/var/log/nginx"
    pid_path: str = "/var/run/nginx.pid"
    mime_types_path: str = "/etc/nginx/mime.types"
    # --- optional extras (defaults keep the production file unchanged) ---
    # Where an ACME client (certbot --webroot) drops HTTP-01 challenge files.
    acme_webroot: str = "/var/www/acme"
    worker_connections: int = 2048
    # None binds all addresses (what a container needs); tests bind 127.0.0.1.
    listen_address: str | None = None
    # None keeps the build's default worker user ("nginx" on alpine); tests that
    # run nginx as root from a private tmp dir set "root".
    worker_user: str | None = None
    # None keeps the build's compiled-in temp paths; tests point it at a tmp dir.
    temp_dir: str | None = None
    # None sends no CSP header at all.
    content_security_policy: str | None = DEFAULT_CSP
    # HSTS for every subdomain too: off when other hosts under the domain still serve HTTP.
    hsts_include_subdomains: bool = True
    # Staple OCSP responses; only for a certificate that names a responder (see settings/edge.py).
    ocsp_stapling: bool = False
    # Named by /nginx-health, so whoever reloads nginx can tell when this file is live.
    config_id: str = ""
    # While this file exists, every application location answers the maintenance page.
    maintenance_flag: str | None = None
    maintenance_retry_after_seconds: int = 120
    # With monitoring: a port (inside the network, never published) serving stub_status
    # for the nginx exporter; None renders no such server.
    status_port: int | None = None

    def __post_init__(self) -> None:
        validate(self)


def _fail(field: str, value: object, why: str) -> ValueError:
    return ValueError(f"NginxSite.{field}={value!r} is invalid: {why}")


def _check_int(field: str, value: object, low: int, high: int) -> None:
    # bool is an int subclass; True as a port is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(field, value, "must be an integer")
    if not low <= value <= high:
        raise _fail(field, value, f"must be between {low} and {high}")


def _check_bool(field: str, value: object) -> None:
    if not isinstance(value, bool):
        raise _fail(field, value, "must be a bool")


def _check_pattern(field: str, value: object, pattern: re.Pattern[str], why: str, max_len: int = 253) -> None:
    if not isinstance(value, str) or not value:
        raise _fail(field, value, "must be a non-empty string")
    if len(value) > max_len or not pattern.fullmatch(value):
        raise _fail(field, value, why)


def validate(site: NginxSite) -> None:
    _check_pattern(
        "server_name",
        site.server_name,
        _SERVER_NAME_RE,
        "must be a single host name (letters, digits, '.', '-', '_', '*'; no spaces, semicolons, braces or quotes)",
    )
    _check_bool("tls_enabled", site.tls_enabled)
    _check_bool("hsts", site.hsts)
    _check_bool("hsts_include_subdomains", site.hsts_include_subdomains)
    _check_bool("ocsp_stapling", site.ocsp_stapling)
    for name in ("public_https_port", "api_port", "http_listen_port", "https_listen_port"):
        _check_int(name, getattr(site, name), 1, 65535)
    _check_int("resolver_valid_seconds", site.resolver_valid_seconds, 1, 86400)
    _check_int("worker_connections", site.worker_connections, 16, 1_000_000)
    _check_pattern("api_host", site.api_host, _HOST_RE, "must be a host name or IPv4 address")
    _check_pattern("resolver", site.resolver, _RESOLVER_RE, "must be one IPv4 address or host name, optionally :port")
    for name in ("cert_path", "key_path"):
        _check_pattern(name, getattr(site, name), _CONF_PATH_RE, "must be a path without spaces or quotes", 4096)
    if not isinstance(site.config_id, str) or not _CONFIG_ID_RE.fullmatch(site.config_id):
        raise _fail("config_id", site.config_id, "must be lower-case hex, at most 64 characters")
    _check_int("maintenance_retry_after_seconds", site.maintenance_retry_after_seconds, 1, 86400)
    if site.maintenance_flag is not None:
        _check_pattern(
            "maintenance_flag", site.maintenance_flag, _PATH_RE, "must be an absolute path without spaces", 4096
        )
    for name in ("log_dir", "pid_path", "mime_types_path", "acme_webroot"):
        _check_pattern(name, getattr(site, name), _PATH_RE, "must be an absolute path without spaces or quotes", 4096)
    if site.temp_dir is not None:
        _check_pattern("temp_dir", site.temp_dir, _PATH_RE, "must be an absolute path without spaces or quotes", 4096)
    if site.listen_address is not None:
        _check_pattern("listen_address", site.listen_address, _HOST_RE, "must be an IPv4 address or host name")
    if site.worker_user is not None:
        _check_pattern("worker_user", site.worker_user, _USER_RE, "must be 'user' or 'user group'", 64)
    if site.content_security_policy is not None:
        csp = site.content_security_policy
        if not isinstance(csp, str) or not csp.strip() or _HEADER_VALUE_FORBIDDEN.search(csp):
            raise _fail(
                "content_security_policy", csp, "must be non-empty, without quotes, backslashes, '$' or control chars"
            )
    if site.tls_enabled and site.http_listen_port == site.https_listen_port:
        raise _fail("https_listen_port", site.https_listen_port, "must differ from http_listen_port")
    if site.status_port is not None:
        _check_int("status_port", site.status_port, 1, 65535)
        if site.status_port in (site.http_listen_port, site.https_listen_port):
            raise _fail("status_port", site.status_port, "must differ from the HTTP and HTTPS ports")
