"""The locations of nginx.conf's servers: proxying to the API, limits, health, maintenance.

Split from ``rendering/nginx_servers.py`` (the server blocks); every value interpolated here
was validated by ``NginxSite`` (``rendering/nginx_site.py``).

Directive semantics relied on (nginx documentation, https://nginx.org/en/docs/):
- ``limit_conn``/``limit_req``/``add_header``/``proxy_set_header`` are inherited from the
  enclosing level only when the inner level defines none of the same directive, so each
  location that needs its own value repeats the whole set.
- ``error_page 503 @maintenance`` (ngx_http_core_module) hands the 503 of the maintenance
  check to a named location, which has its own ``add_header`` set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rendering.nginx_site import NginxSite

SELF_HEALTH_PATH = "/nginx-health"

# Where the API takes uploads (vasic-digital/Catalogizer catalog-api/main.go registers
# POST /api/v1/copy/upload and POST /api/v1/subtitles/upload); only these get the 2G body.
UPLOAD_LOCATION = "~ ^/api/v1/(copy|subtitles)/upload$"
UPLOAD_MAX_BODY = "2G"

# 2 years, as Mozilla's guidelines and the HSTS preload list ask for.
HSTS_MAX_AGE = 63072000
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

# Per-client budgets (key $binary_remote_addr). Connections count requests in progress,
# so an idle keep-alive connection holds none; see the zones in rendering/nginx.py.
API_CONN = 10
AUTH_CONN = 5
# /health: 20 r/s with a burst of 40 per client (rendering/nginx.py) is generous for load
# balancer, monitoring and deploy-time probes (the rehearsal's update probe sends 16/s, so it
# measures the deployment, not the limiter), and still caps one client's share of the API.
HEALTH_CONN = 4
UPLOAD_CONN = 2
WS_CONN = 10
# The API's WebSocket handler pings its clients well within this; a silent peer is dropped
# after it instead of holding a slot for an hour.
WS_IDLE_SECONDS = 120


def indent(text: str, level: int) -> str:
    pad = "    " * level
    return "\n".join(pad + line if line else "" for line in text.splitlines())


def listen(site: NginxSite, port: int) -> str:
    return f"{site.listen_address}:{port}" if site.listen_address else str(port)


def _proxy_to_api(site: NginxSite, *extra_headers: str) -> str:
    # proxy_set_header is an array directive: a location that sets any header
    # loses every header set at server level, so each location gets the full set.
    headers = [
        # Only our name reaches this server (the catch-all drops any other Host), so $host
        # is the configured domain here.
        "proxy_set_header Host $host;",
        "proxy_set_header X-Real-IP $remote_addr;",
        # nginx is the public edge: overwrite instead of appending, so a client
        # cannot put a forged address in front of its real one (Gin trusts the
        # left-most X-Forwarded-For entry by default, e.g. for rate limiting).
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        *extra_headers,
    ]
    return "\n".join([f"proxy_pass http://$api_upstream:{site.api_port};", "proxy_http_version 1.1;", *headers])


def hsts_value(site: NginxSite) -> str:
    return f"max-age={HSTS_MAX_AGE}" + ("; includeSubDomains" if site.hsts_include_subdomains else "")


def security_headers(site: NginxSite) -> str:
    # Only at server level and never inside a location: add_header is an array
    # directive too, one add_header in a location would drop all of these.
    lines = [
        'add_header X-Frame-Options "SAMEORIGIN" always;',
        'add_header X-Content-Type-Options "nosniff" always;',
        # "0": the legacy XSS auditor is gone from current browsers and, where present, could be
        # abused to blank pages selectively (OWASP Secure Headers Project recommends 0).
        'add_header X-XSS-Protection "0" always;',
        'add_header Referrer-Policy "strict-origin-when-cross-origin" always;',
        f'add_header Permissions-Policy "{PERMISSIONS_POLICY}" always;',
    ]
    if site.content_security_policy is not None:
        lines.append(f'add_header Content-Security-Policy "{site.content_security_policy}" always;')
    if site.tls_enabled and site.hsts:
        lines.append(f'add_header Strict-Transport-Security "{hsts_value(site)}" always;')
    return "\n".join(lines)


def _limits(conn_zone: str, conn: int, req_zone: str, burst: int) -> str:
    return f"limit_req zone={req_zone} burst={burst} nodelay;\nlimit_conn {conn_zone} {conn};"


def acme_location(site: NginxSite) -> str:
    # ^~ stops the regex "hidden files" location from denying /.well-known/.
    return f"""\
location ^~ /.well-known/acme-challenge/ {{
{indent(_limits("addr", API_CONN, "api_limit", 20), 1)}
    root {site.acme_webroot};
    default_type text/plain;
    try_files $uri =404;
}}"""


def self_health_location(site: NginxSite) -> str:
    # The container's own health check: nginx is up, whether or not an API is yet. It names
    # the config it runs, so a reload can be confirmed (scripts/proxy_config.py); plain "ok"
    # without one.
    return f"""\
location = {SELF_HEALTH_PATH} {{
    access_log off;
    allow 127.0.0.1;
    deny all;
    default_type text/plain;
    return 200 "ok{f" {site.config_id}" if site.config_id else ""}\\n";
}}"""


def _maintenance_check(site: NginxSite) -> str:
    # A file test per request costs one stat() by the worker, so the flag's folder must be
    # searchable by the worker user; it lets the restore hook turn the page on and off without
    # a reload while the API is stopped. `return` inside `if` in a location is one of the two
    # uses the nginx wiki's "If is Evil" page calls safe.
    if site.maintenance_flag is None:
        return ""
    return f"if (-f {site.maintenance_flag}) {{\n    return 503;\n}}\n"


def _maintenance_location(site: NginxSite) -> str:
    if site.maintenance_flag is None:
        return ""
    # error_page sends the 503 here; add_header in a location drops the server's headers,
    # so they are repeated.
    page = (
        "<!doctype html><html><head><title>Maintenance</title></head><body>"
        "<h1>Down for maintenance</h1><p>Catalogizer is being updated and will be back shortly.</p>"
        "</body></html>"
    )
    return f"""\
error_page 503 @maintenance;
location @maintenance {{
{indent(security_headers(site), 1)}
    add_header Retry-After {site.maintenance_retry_after_seconds} always;
    add_header Cache-Control "no-store" always;
    default_type text/html;
    return 503 '{page}';
}}
"""


def health_location(site: NginxSite) -> str:
    return f"""\
location = /health {{
    access_log off;
{indent(_limits("addr", HEALTH_CONN, "health_limit", 40), 1)}
{indent(_proxy_to_api(site), 1)}
}}"""


def app_locations(site: NginxSite) -> str:
    websocket_proxy = _proxy_to_api(
        site, "proxy_set_header Upgrade $http_upgrade;", "proxy_set_header Connection $connection_upgrade;"
    )
    return f"""\
{acme_location(site)}

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

{health_location(site)}

{self_health_location(site)}

{_maintenance_location(site)}
# Authentication endpoints: stricter per-IP rate (brute-force protection).
# A regex location wins over the /api/ prefix location below.
location ~ ^/api/v1/(auth|login|register)(/|$) {{
{indent(_maintenance_check(site), 1)}
    limit_req zone=auth_limit burst=5 nodelay;
    limit_conn addr {AUTH_CONN};
{indent(_proxy_to_api(site), 1)}
}}

# The only routes that take large bodies. Streamed to the API as they arrive
# (proxy_request_buffering off): a stalled upload holds a connection slot, never
# proxy disk, and each client gets {UPLOAD_CONN} of them.
location {UPLOAD_LOCATION} {{
{indent(_maintenance_check(site), 1)}
    limit_req zone=api_limit burst=20 nodelay;
    limit_conn addr {API_CONN};
    limit_conn upload_conn {UPLOAD_CONN};
    client_max_body_size {UPLOAD_MAX_BODY};
    proxy_request_buffering off;
    proxy_read_timeout 60s;
    proxy_send_timeout 60s;
{indent(_proxy_to_api(site), 1)}
}}

location /api/ {{
{indent(_maintenance_check(site), 1)}
    limit_req zone=api_limit burst=20 nodelay;
    limit_conn addr {API_CONN};
    proxy_read_timeout 60s;
    proxy_send_timeout 60s;
{indent(_proxy_to_api(site), 1)}
}}

# Exact match: /wsanything is not a WebSocket endpoint and falls to `location /`.
# Own connection zone, so open sockets do not use up the client's API budget.
location = /ws {{
{indent(_maintenance_check(site), 1)}
    limit_req zone=ws_limit burst=10 nodelay;
    limit_conn ws_conn {WS_CONN};
{indent(websocket_proxy, 1)}
    proxy_read_timeout {WS_IDLE_SECONDS}s;
    proxy_send_timeout {WS_IDLE_SECONDS}s;
}}

# Anything else the API serves (there is no static frontend in this deployment).
location / {{
{indent(_maintenance_check(site), 1)}
{indent(_limits("addr", API_CONN, "api_limit", 20), 1)}
{indent(_proxy_to_api(site), 1)}
}}"""
