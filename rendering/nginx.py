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

__all__ = ["NginxSite", "render_nginx_conf"]

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

_HSTS_VALUE = "max-age=31536000; includeSubDomains"


@dataclass(frozen=True)
class NginxSite:
    """Everything that varies between deployments of the proxy.

    Construction validates the values (``ValueError`` naming the field), so an
    invalid site can never reach the renderer.
    """

    server_name: str  # the public domain, e.g. "localhost" or "catalog.example.com"
    tls_enabled: bool  # False only for tls.mode=off (HTTP only)
    hsts: bool  # True in production; ignored when TLS is off (browsers ignore HSTS over HTTP)
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
    # Off by default: the API may serve HTML (e.g. API docs) that a strict
    # policy would break, and the reference config sets none.
    content_security_policy: str | None = None
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


def _indent(text: str, level: int) -> str:
    pad = "    " * level
    return "\n".join(pad + line if line else "" for line in text.splitlines())


def _listen(site: NginxSite, port: int) -> str:
    return f"{site.listen_address}:{port}" if site.listen_address else str(port)


def _proxy_to_api(site: NginxSite, *extra_headers: str) -> str:
    # proxy_set_header is an array directive: a location that sets any header
    # loses every header set at server level, so each location gets the full set.
    headers = [
        "proxy_set_header Host $host;",
        "proxy_set_header X-Real-IP $remote_addr;",
        # nginx is the public edge: overwrite instead of appending, so a client
        # cannot put a forged address in front of its real one (Gin trusts the
        # left-most X-Forwarded-For entry by default, e.g. for rate limiting).
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        *extra_headers,
    ]
    return "\n".join(
        [
            f"proxy_pass http://$api_upstream:{site.api_port};",
            "proxy_http_version 1.1;",
            *headers,
        ]
    )


def _security_headers(site: NginxSite) -> str:
    # Only at server level and never inside a location: add_header is an array
    # directive too, one add_header in a location would drop all of these.
    lines = [
        'add_header X-Frame-Options "SAMEORIGIN" always;',
        'add_header X-Content-Type-Options "nosniff" always;',
        'add_header X-XSS-Protection "1; mode=block" always;',
        'add_header Referrer-Policy "strict-origin-when-cross-origin" always;',
    ]
    if site.content_security_policy is not None:
        lines.append(f'add_header Content-Security-Policy "{site.content_security_policy}" always;')
    if site.tls_enabled and site.hsts:
        lines.append(f'add_header Strict-Transport-Security "{_HSTS_VALUE}" always;')
    return "\n".join(lines)


def _acme_location(site: NginxSite) -> str:
    # ^~ stops the regex "hidden files" location from denying /.well-known/.
    return f"""\
location ^~ /.well-known/acme-challenge/ {{
    root {site.acme_webroot};
    default_type text/plain;
    try_files $uri =404;
}}"""


SELF_HEALTH_PATH = "/nginx-health"
STATUS_PATH = "/stub_status"


def _status_server(site: NginxSite) -> str:
    # ngx_http_stub_status_module (nginx docs): active connections, accepts, handled,
    # requests, reading/writing/waiting; what the nginx exporter turns into metrics. Its own
    # port, so the public servers never answer it; the port is not published.
    return f"""\
server {{
    listen {_listen(site, site.status_port or 0)};
    access_log off;

    location = {STATUS_PATH} {{
        stub_status;
    }}

    location / {{
        return 404;
    }}
}}"""


def _self_health_location() -> str:
    # The container's own health check: nginx is up, whether or not an API is yet.
    return f"""\
location = {SELF_HEALTH_PATH} {{
    access_log off;
    allow 127.0.0.1;
    deny all;
    default_type text/plain;
    return 200 "ok\\n";
}}"""


def _health_location(site: NginxSite) -> str:
    return f"""\
location = /health {{
    access_log off;
{_indent(_proxy_to_api(site), 1)}
}}"""


def _app_locations(site: NginxSite) -> str:
    websocket_proxy = _proxy_to_api(
        site, "proxy_set_header Upgrade $http_upgrade;", "proxy_set_header Connection $connection_upgrade;"
    )
    return f"""\
{_acme_location(site)}

# Hidden files (.env, .git, ...) are never proxied.
location ~ /\\. {{
    deny all;
    access_log off;
    log_not_found off;
}}

# Metrics are scraped by Prometheus inside the Docker network, straight from
# the API port; the public proxy does not expose them.  nginx normalises the
# URI before matching, so /api/../metrics and //metrics land here too.
location = /metrics {{
    return 404;
}}
location ^~ /metrics/ {{
    return 404;
}}

{_health_location(site)}

{_self_health_location()}

# Authentication endpoints: stricter per-IP rate (brute-force protection).
# A regex location wins over the /api/ prefix location below.
location ~ ^/api/v1/(auth|login|register)(/|$) {{
    limit_req zone=auth_limit burst=5 nodelay;
    limit_conn addr 5;
{_indent(_proxy_to_api(site), 1)}
}}

location /api/ {{
    limit_req zone=api_limit burst=20 nodelay;
    limit_conn addr 10;
    # Stream uploads (up to 2G) to the API instead of spooling them to the
    # proxy's disk first; a connection failure before the body was sent is
    # still retried on another replica.
    proxy_request_buffering off;
    proxy_read_timeout 60s;
    proxy_send_timeout 60s;
{_indent(_proxy_to_api(site), 1)}
}}

location /ws {{
{_indent(websocket_proxy, 1)}
    # WebSocket connections are long-lived and may be idle between events.
    proxy_read_timeout 3600s;
    proxy_send_timeout 3600s;
}}

# Anything else the API serves (there is no static frontend in this deployment).
location / {{
    limit_req zone=api_limit burst=20 nodelay;
{_indent(_proxy_to_api(site), 1)}
}}"""


def _upstream_variable(site: NginxSite) -> str:
    # A variable in proxy_pass makes nginx resolve the name through `resolver`
    # at request time (cached for resolver_valid_seconds) instead of once at
    # startup: replicas that come and go are picked up without a reload, and
    # nginx starts even before any API container exists.
    return f'set $api_upstream "{site.api_host}";'


def _https_port_suffix(site: NginxSite) -> str:
    return "" if site.public_https_port == 443 else f":{site.public_https_port}"


def _redirect_server(site: NginxSite) -> str:
    return f"""\
server {{
    listen {_listen(site, site.http_listen_port)} default_server;
    server_name {site.server_name};
    {_upstream_variable(site)}

{_indent(_acme_location(site), 1)}

{_indent(_self_health_location(), 1)}

    # Plain-HTTP health check, so container/load-balancer probes need neither
    # a CA file nor redirect handling; it reveals nothing that HTTPS does not.
{_indent(_health_location(site), 1)}

    location / {{
        return 301 https://$host{_https_port_suffix(site)}$request_uri;
    }}
}}"""


def _tls_directives(site: NginxSite) -> str:
    return f"""\
ssl_certificate {site.cert_path};
ssl_certificate_key {site.key_path};
ssl_protocols TLSv1.2 TLSv1.3;
ssl_ciphers {_TLS12_CIPHERS};
# With only strong suites on offer the client's order (which knows whether it
# has AES hardware) is the better choice.
ssl_prefer_server_ciphers off;
ssl_session_cache shared:SSL:10m;
ssl_session_timeout 1d;
# Tickets would reuse one key for the process lifetime and weaken forward secrecy.
ssl_session_tickets off;"""


def _app_server(site: NginxSite) -> str:
    if site.tls_enabled:
        listen = f"listen {_listen(site, site.https_listen_port)} ssl http2 default_server;"
        tls = "\n\n" + _indent(_tls_directives(site), 1)
    else:
        listen = f"listen {_listen(site, site.http_listen_port)} default_server;"
        tls = ""
    return f"""\
server {{
    {listen}
    server_name {site.server_name};{tls}

{_indent(_security_headers(site), 1)}

    {_upstream_variable(site)}

{_indent(_app_locations(site), 1)}
}}"""


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
    servers = [_redirect_server(site)] if site.tls_enabled else []
    servers.append(_app_server(site))
    if site.status_port is not None:
        servers.append(_status_server(site))
    servers_text = "\n\n".join(_indent(s, 1) for s in servers)
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
    keepalive_timeout 65;
    types_hash_max_size 2048;
    server_tokens off;

    client_body_buffer_size 128k;
    client_max_body_size 2G;
    large_client_header_buffers 4 16k;

{_temp_paths(site)}    gzip on;
    gzip_vary on;
    gzip_proxied any;
    gzip_comp_level 6;
    gzip_min_length 1024;
    gzip_types {_GZIP_TYPES};

    # Docker's embedded DNS; IPv4 only because the bridge network is IPv4.
    resolver {site.resolver} valid={site.resolver_valid_seconds}s ipv6=off;
    resolver_timeout 5s;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}

    limit_req_zone $binary_remote_addr zone=api_limit:10m rate=10r/s;
    limit_req_zone $binary_remote_addr zone=auth_limit:10m rate=5r/s;
    limit_conn_zone $binary_remote_addr zone=addr:10m;
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
