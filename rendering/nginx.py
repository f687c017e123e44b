"""Render the top-level nginx.conf of the TLS reverse proxy in front of the API.

Parity with Catalogizer's own ``config/nginx.conf`` (rate-limit zones, WebSocket
upgrade, ``/health`` passthrough, gzip, 2G uploads, security headers, hidden
files denied), plus a real HTTPS server, which the reference only has as a
commented-out block.

The generated syntax is valid on nginx 1.22 (Debian bookworm) and still accepted
by 1.25+ (``nginx:alpine``): ``listen ... ssl http2`` only triggers a
deprecation warning there, whereas the newer ``http2 on;`` is an unknown
directive before 1.25.1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rendering.nginx_servers import (
    SELF_HEALTH_PATH,
    STATUS_PATH,
    app_server,
    catch_all_servers,
    indent,
    redirect_server,
    status_server,
)

__all__ = ["SELF_HEALTH_PATH", "STATUS_PATH", "NginxSite", "render_nginx_conf"]

# Everything interpolated into the config is checked against a strict pattern:
# a stray ';', '{', quote or '$' would change the meaning of the file, or
# smuggle in directives.
_SERVER_NAME_RE = re.compile(r"^[A-Za-z0-9_*][A-Za-z0-9._*-]*$")
_HOST_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9._-]*[A-Za-z0-9_])?$")
# An IPv4 address or name, optionally with a port ("127.0.0.1:5353").
_RESOLVER_RE = re.compile(r"^[A-Za-z0-9._-]+(:[0-9]{1,5})?$")
_PATH_RE = re.compile(r"^/[A-Za-z0-9._/@+=,:~-]*$")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]*( [a-z_][a-z0-9_-]*)?$")
_HEADER_VALUE_FORBIDDEN = re.compile(r"[\"\\$\x00-\x1f\x7f]")

# Mozilla "intermediate" suite minus the DHE ones (they would need an
# ssl_dhparam file nobody generates).  TLS 1.3 suites are not configurable here
# and OpenSSL's defaults for them are fine.
_TLS12_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)

_GZIP_TYPES = (
    "text/plain text/css text/xml text/javascript application/json "
    "application/javascript application/xml application/xml+rss "
    "application/rss+xml font/truetype font/opentype "
    "application/vnd.ms-fontobject image/svg+xml"
)

# Curves offered for ECDHE, strongest-and-fastest first (Mozilla "intermediate" list);
# without it nginx 1.22 uses OpenSSL's "auto" list, which also offers X448/secp521r1.
ECDH_CURVES = "X25519:prime256v1:secp384r1"

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
    # With monitoring: a port (inside the network, never published) serving stub_status
    # for the nginx exporter; None renders no such server.
    status_port: int | None = None

    def __post_init__(self) -> None:
        _validate(self)


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


def _validate(site: NginxSite) -> None:
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
    for name in ("cert_path", "key_path", "log_dir", "pid_path", "mime_types_path", "acme_webroot"):
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


def _tls_directives() -> str:
    return f"""\
ssl_protocols TLSv1.2 TLSv1.3;
ssl_ciphers {_TLS12_CIPHERS};
ssl_ecdh_curve {ECDH_CURVES};
# With only strong suites on offer the client's order (which knows whether it
# has AES hardware) is the better choice.
ssl_prefer_server_ciphers off;
ssl_session_cache shared:SSL:10m;
ssl_session_timeout 1d;
# Tickets would reuse one key for the process lifetime and weaken forward secrecy.
ssl_session_tickets off;"""


def _temp_paths(site: NginxSite) -> str:
    if site.temp_dir is None:
        return ""
    names = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    return "".join(f"    {name}_temp_path {site.temp_dir}/{name};\n" for name in names) + "\n"


def render_nginx_conf(site: NginxSite) -> str:
    """Return a complete top-level nginx.conf for ``site``.

    Raises ``ValueError`` (naming the field) for invalid input.
    """
    _validate(site)  # also done at construction; cheap insurance against object.__setattr__ tricks
    user = f"user {site.worker_user};\n" if site.worker_user else ""
    servers = [catch_all_servers(site)]
    if site.tls_enabled:
        servers.append(redirect_server(site))
    servers.append(app_server(site))
    if site.status_port is not None:
        servers.append(status_server(site))
    servers_text = "\n\n".join(indent(s, 1) for s in servers)
    return f"""\
# Generated by catalogizer-deploy (rendering/nginx.py). Do not edit by hand.
#
# Load balancing: the reference config uses an `upstream` block with
# least_conn.  That block resolves `{site.api_host}` once at startup: nginx refuses
# to start while no API container exists, and never sees replicas added or
# replaced later.  Re-resolving servers inside an upstream block needs the
# `resolve` server parameter, which open-source nginx only has since 1.27.3
# (not in Debian's 1.22 nor older alpine images).  So the upstream is a
# variable resolved through Docker's DNS per request; nginx then round-robins
# over every address the name returns, and retries the next one on failure.
{user}worker_processes auto;
# Each proxied request holds two descriptors (client and API); without this a worker is
# capped by the inherited soft limit (often 1024) long before worker_connections.
worker_rlimit_nofile {2 * site.worker_connections + 64};
pid {site.pid_path};
error_log {site.log_dir}/error.log warn;

events {{
    worker_connections {site.worker_connections};
}}

http {{
    include {site.mime_types_path};
    default_type application/octet-stream;

    log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent "$http_referer" "$http_user_agent" '
                    'upstream=$upstream_addr rt=$request_time urt=$upstream_response_time';
    access_log {site.log_dir}/access.log main;

    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    types_hash_max_size 2048;
    server_tokens off;

    # Short client timeouts: a client that stops sending gives its slot back within
    # seconds, and a timed-out connection is reset instead of lingering in FIN_WAIT.
    keepalive_timeout 30s;
    client_header_timeout 10s;
    client_body_timeout 15s;
    send_timeout 30s;
    reset_timedout_connection on;

    client_body_buffer_size 128k;
    # About 1 MB everywhere; only the upload locations raise it (rendering/nginx_servers.py).
    client_max_body_size 1m;
    large_client_header_buffers 4 16k;

{_temp_paths(site)}    gzip on;
    gzip_vary on;
    gzip_proxied any;
    gzip_comp_level 6;
    gzip_min_length 1024;
    gzip_types {_GZIP_TYPES};

    # TLS settings live here, not in the app server: before SNI picks a server, OpenSSL
    # negotiates with the default (catch-all) server's settings.
{indent(_tls_directives(), 1) if site.tls_enabled else "    # TLS off: plain HTTP only."}

    # Docker's embedded DNS; IPv4 only because the bridge network is IPv4.
    resolver {site.resolver} valid={site.resolver_valid_seconds}s ipv6=off;
    resolver_timeout 5s;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}

    limit_req_zone $binary_remote_addr zone=api_limit:10m rate=10r/s;
    limit_req_zone $binary_remote_addr zone=auth_limit:10m rate=5r/s;
    limit_req_zone $binary_remote_addr zone=health_limit:10m rate=10r/s;
    limit_req_zone $binary_remote_addr zone=ws_limit:10m rate=2r/s;
    # Requests in progress per client; WebSockets and uploads have their own budgets so an
    # open socket or a slow upload does not use up the client's API budget.
    limit_conn_zone $binary_remote_addr zone=addr:10m;
    limit_conn_zone $binary_remote_addr zone=ws_conn:10m;
    limit_conn_zone $binary_remote_addr zone=upload_conn:10m;
    # 429 tells clients to back off; the default 503 looks like an outage.
    limit_req_status 429;
    limit_conn_status 429;

    # A dead replica refuses or times out quickly on the bridge network, so
    # fail fast and try the next address of the API name.  Not listed on
    # purpose: `non_idempotent` -- a POST/PATCH that already reached an API
    # replica is never sent again (it could create a record twice); only
    # failures before the request was sent are retried for those methods.
    proxy_connect_timeout 500ms;
    proxy_next_upstream error timeout http_502 http_503;
    proxy_next_upstream_tries 3;
    proxy_next_upstream_timeout 15s;

{servers_text}
}}
"""
