"""The nginx values that are the feature, as literals: rate limits, headers, TLS, timeouts.

Changing one of these takes a deliberate change here. Blocks are compared directive by
directive, comments and indentation aside.
"""

from __future__ import annotations

import re

import pytest

from rendering.nginx import NginxSite, render_nginx_conf

PROXY = [
    "proxy_pass http://$api_upstream:8080;",
    "proxy_http_version 1.1;",
    "proxy_set_header Host $host;",
    "proxy_set_header X-Real-IP $remote_addr;",
    # Overwritten, never appended: a client cannot put a forged address in front of its own.
    "proxy_set_header X-Forwarded-For $remote_addr;",
    "proxy_set_header X-Forwarded-Proto $scheme;",
]
AUTH_LOCATION = "location ~ ^/api/v1/(auth|login|register)(/|$)"
UPLOAD_LOCATION = "location ~ ^/api/v1/(copy|subtitles)/upload$"
HEALTH = ["access_log off;", "limit_req zone=health_limit burst=40 nodelay;", "limit_conn addr 4;", *PROXY]
ACME = [
    "limit_req zone=api_limit burst=20 nodelay;",
    "limit_conn addr 10;",
    "root /var/www/acme;",
    "default_type text/plain;",
    "try_files $uri =404;",
]


def _conf(**overrides: object) -> str:
    values: dict[str, object] = {"server_name": "catalog.example.com", "tls_enabled": True, "hsts": True}
    values.update(overrides)
    return render_nginx_conf(NginxSite(**values))  # type: ignore[arg-type]


def _lines(text: str) -> list[str]:
    """Directive lines, comments and indentation dropped."""
    return [
        re.sub(r"\s+", " ", line.split("#", 1)[0].strip())
        for line in text.splitlines()
        if line.split("#", 1)[0].strip()
    ]


def _block(lines: list[str], header: str, nth: int = 0) -> list[str]:
    """The lines inside the nth block opened by `header {` (nested blocks included)."""
    starts = [i for i, line in enumerate(lines) if line == f"{header} {{"]
    assert len(starts) > nth, f"no block {header!r} (#{nth})"
    depth, body = 0, []
    for line in lines[starts[nth] :]:
        depth += line.count("{") - line.count("}")
        body.append(line)
        if depth == 0:
            return body[1:-1]
    raise AssertionError(f"unclosed {header!r}")


def _servers(conf: str) -> list[list[str]]:
    http = _block(_lines(conf), "http")
    return [_block(http, "server", n) for n in range(sum(1 for line in http if line == "server {"))]


def test_auth_endpoints_burst_5_and_5_connections() -> None:
    https = _servers(_conf())[3]  # after the two catch-all servers and the plain-HTTP one
    assert _block(https, AUTH_LOCATION) == ["limit_req zone=auth_limit burst=5 nodelay;", "limit_conn addr 5;", *PROXY]


def test_api_burst_20_10_connections_streamed_uploads() -> None:
    https = _servers(_conf())[3]  # after the two catch-all servers and the plain-HTTP one
    # Only the two upload routes take big bodies, streamed; everything else keeps the 1m default.
    assert _block(https, UPLOAD_LOCATION) == [
        "limit_req zone=api_limit burst=20 nodelay;",
        "limit_conn addr 10;",
        "limit_conn upload_conn 2;",
        "client_max_body_size 2G;",
        "proxy_request_buffering off;",
        "proxy_read_timeout 60s;",
        "proxy_send_timeout 60s;",
        *PROXY,
    ]
    assert _block(https, "location /api/") == [
        "limit_req zone=api_limit burst=20 nodelay;",
        "limit_conn addr 10;",
        "proxy_read_timeout 60s;",
        "proxy_send_timeout 60s;",
        *PROXY,
    ]
    assert _block(https, "location /") == ["limit_req zone=api_limit burst=20 nodelay;", "limit_conn addr 10;", *PROXY]


def test_websocket_upgrade_and_long_timeouts() -> None:
    https = _servers(_conf())[3]  # after the two catch-all servers and the plain-HTTP one
    assert _block(https, "location = /ws") == [
        "limit_req zone=ws_limit burst=10 nodelay;",
        "limit_conn ws_conn 10;",
        *PROXY,
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_read_timeout 120s;",
        "proxy_send_timeout 120s;",
    ]


def test_metrics_hidden_hidden_files_denied_health_passed_through() -> None:
    https = _servers(_conf())[3]  # after the two catch-all servers and the plain-HTTP one
    assert _block(https, "location = /metrics") == ["return 404;"]
    assert _block(https, "location ^~ /metrics/") == ["return 404;"]
    assert _block(https, r"location ~ /\.") == ["deny all;", "access_log off;", "log_not_found off;"]
    assert _block(https, "location = /health") == HEALTH
    assert _block(https, "location = /nginx-health") == [
        "access_log off;",
        "allow 127.0.0.1;",
        "deny all;",
        "default_type text/plain;",
        'return 200 "ok\\n";',
    ]
    assert _block(https, "location ^~ /.well-known/acme-challenge/") == ACME


def test_https_server_tls_and_security_headers() -> None:
    https = _servers(_conf())[3]  # after the two catch-all servers and the plain-HTTP one
    head = https[: https.index('set $api_upstream "api";')]
    assert head == [
        "listen 443 ssl http2;",
        "server_name catalog.example.com;",
        "ssl_certificate /etc/nginx/tls/cert.pem;",
        "ssl_certificate_key /etc/nginx/tls/key.pem;",
        'add_header X-Frame-Options "SAMEORIGIN" always;',
        'add_header X-Content-Type-Options "nosniff" always;',
        'add_header X-XSS-Protection "0" always;',
        'add_header Referrer-Policy "strict-origin-when-cross-origin" always;',
        'add_header Permissions-Policy "camera=(), microphone=(), geolocation=(), payment=(), usb=()" always;',
        "add_header Content-Security-Policy \"default-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'self'; frame-ancestors 'self'\" always;",
        'add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;',
    ]
    # The order of the locations matters to nobody but the reader; their set does.
    locations = [line for line in https if line.startswith("location ")]
    assert locations == [
        "location ^~ /.well-known/acme-challenge/ {",
        r"location ~ /\. {",
        "location = /metrics {",
        "location ^~ /metrics/ {",
        "location = /health {",
        "location = /nginx-health {",
        f"{AUTH_LOCATION} {{",
        f"{UPLOAD_LOCATION} {{",
        "location /api/ {",
        "location = /ws {",
        "location / {",
    ]


def test_hsts_only_when_asked_and_csp_when_set() -> None:
    assert "Strict-Transport-Security" not in _conf(hsts=False)
    assert "Strict-Transport-Security" not in _conf(tls_enabled=False, hsts=True)
    csp = "default-src 'self'"
    https = _servers(_conf(content_security_policy=csp))[3]
    assert https[7:10] == [
        'add_header Referrer-Policy "strict-origin-when-cross-origin" always;',
        'add_header Permissions-Policy "camera=(), microphone=(), geolocation=(), payment=(), usb=()" always;',
        f'add_header Content-Security-Policy "{csp}" always;',
    ]


def test_plain_http_server_redirects_and_keeps_health() -> None:
    catch_all, catch_all_tls, http_server = _servers(_conf())[:3]
    # Names other than the configured one get nothing (444 / no TLS handshake).
    assert _block(catch_all, "location /") == ["return 444;"]
    assert catch_all[:3] == ["listen 80 default_server;", 'server_name "";', "access_log off;"]
    assert catch_all_tls[:4] == [
        "listen 443 ssl http2 default_server;",
        'server_name "";',
        "access_log off;",
        "ssl_reject_handshake on;",
    ]
    assert http_server[:3] == [
        "listen 80;",
        "server_name catalog.example.com;",
        'set $api_upstream "api";',
    ]
    assert _block(http_server, "location = /health") == HEALTH
    # To the configured name, never the client's Host header.
    assert _block(http_server, "location /") == ["return 301 https://catalog.example.com$request_uri;"]
    moved = _servers(_conf(public_https_port=8443))[2]
    assert _block(moved, "location /") == ["return 301 https://catalog.example.com:8443$request_uri;"]


def test_without_tls_one_server_with_every_location() -> None:
    catch_all, only = _servers(_conf(tls_enabled=False, http_listen_port=8080))
    assert catch_all[:2] == ["listen 8080 default_server;", 'server_name "";']
    assert only[:2] == ["listen 8080;", "server_name catalog.example.com;"]
    assert not any(line.startswith("ssl_") for line in only)
    assert _block(only, AUTH_LOCATION)[0] == "limit_req zone=auth_limit burst=5 nodelay;"


def test_http_block_values() -> None:
    lines = _lines(_conf())
    assert lines[:4] == [
        "worker_processes auto;",
        "worker_rlimit_nofile 4160;",
        "pid /var/run/nginx.pid;",
        "error_log /var/log/nginx/error.log warn;",
    ]
    assert _block(lines, "events") == ["worker_connections 2048;"]
    http = _block(lines, "http")
    settings = http[: http.index("server {")]
    expected = [
        "include /etc/nginx/mime.types;",
        "default_type application/octet-stream;",
        "log_format main '$remote_addr - $remote_user [$time_local] \"$request\" '",
        '\'$status $body_bytes_sent "$http_referer" "$http_user_agent" \'',
        "'upstream=$upstream_addr rt=$request_time urt=$upstream_response_time';",
        "access_log /var/log/nginx/access.log main;",
        "sendfile on;",
        "tcp_nopush on;",
        "tcp_nodelay on;",
        "types_hash_max_size 2048;",
        "server_tokens off;",
        "keepalive_timeout 30s;",
        "client_header_timeout 10s;",
        "client_body_timeout 15s;",
        "send_timeout 30s;",
        "reset_timedout_connection on;",
        "client_body_buffer_size 128k;",
        "client_max_body_size 1m;",
        "large_client_header_buffers 4 16k;",
        "gzip on;",
        "gzip_vary on;",
        "gzip_proxied any;",
        "gzip_comp_level 6;",
        "gzip_min_length 1024;",
        "gzip_types text/plain text/css text/xml text/javascript application/json application/javascript "
        "application/xml application/xml+rss application/rss+xml font/truetype font/opentype "
        "application/vnd.ms-fontobject image/svg+xml;",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;",
        "ssl_ecdh_curve X25519:prime256v1:secp384r1;",
        "ssl_prefer_server_ciphers off;",
        "ssl_session_cache shared:SSL:10m;",
        "ssl_session_timeout 1d;",
        "ssl_session_tickets off;",
        "resolver 127.0.0.11 valid=1s ipv6=off;",
        "resolver_timeout 5s;",
        "map $http_upgrade $connection_upgrade {",
        "default upgrade;",
        "'' close;",
        "}",
        "limit_req_zone $binary_remote_addr zone=api_limit:10m rate=10r/s;",
        "limit_req_zone $binary_remote_addr zone=auth_limit:10m rate=5r/s;",
        "limit_req_zone $binary_remote_addr zone=health_limit:10m rate=20r/s;",
        "limit_req_zone $binary_remote_addr zone=ws_limit:10m rate=2r/s;",
        "limit_conn_zone $binary_remote_addr zone=addr:10m;",
        "limit_conn_zone $binary_remote_addr zone=ws_conn:10m;",
        "limit_conn_zone $binary_remote_addr zone=upload_conn:10m;",
        "limit_req_status 429;",
        "limit_conn_status 429;",
        "proxy_connect_timeout 500ms;",
        "proxy_next_upstream error timeout http_502 http_503;",
        "proxy_next_upstream_tries 3;",
        "proxy_next_upstream_timeout 15s;",
    ]
    assert settings == expected


def test_test_only_fields() -> None:
    lines = _lines(_conf(worker_user="nginx nginx", temp_dir="/tmp/t", listen_address="127.0.0.1"))
    assert lines[0] == "user nginx nginx;"
    http = _block(lines, "http")
    temp = [line for line in http if "_temp_path" in line]
    assert temp == [f"{name}_temp_path /tmp/t/{name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")]
    assert _servers(_conf(listen_address="127.0.0.1"))[0][0] == "listen 127.0.0.1:80 default_server;"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("api_port", 0, "NginxSite.api_port=0 is invalid: must be between 1 and 65535"),
        ("api_port", 65536, "NginxSite.api_port=65536 is invalid: must be between 1 and 65535"),
        ("https_listen_port", True, "NginxSite.https_listen_port=True is invalid: must be an integer"),
        ("resolver_valid_seconds", 86401, "must be between 1 and 86400"),
        ("worker_connections", 15, "NginxSite.worker_connections=15 is invalid: must be between 16 and 1000000"),
        ("hsts", 1, "NginxSite.hsts=1 is invalid: must be a bool"),
        ("api_host", "", "NginxSite.api_host='' is invalid: must be a non-empty string"),
        ("api_host", "api-", "NginxSite.api_host='api-' is invalid: must be a host name or IPv4 address"),
        ("resolver", "1.2.3.4:123456", "must be one IPv4 address or host name, optionally :port"),
        ("pid_path", "/run/x y", "NginxSite.pid_path='/run/x y' is invalid: must be an absolute path"),
        (
            "server_name",
            "a b",
            "NginxSite.server_name='a b' is invalid: must be a single host name (letters, digits, '.', '-', '_', "
            "'*'; no spaces, semicolons, braces or quotes)",
        ),
        ("temp_dir", "tmp", "NginxSite.temp_dir='tmp' is invalid: must be an absolute path without spaces or quotes"),
        (
            "cert_path",
            "/a b",
            "NginxSite.cert_path='/a b' is invalid: must be a path without spaces or quotes",
        ),
        ("acme_webroot", "www", "NginxSite.acme_webroot='www' is invalid"),
        ("mime_types_path", "/" + "m" * 4096, "mime_types_path"),
        (
            "listen_address",
            "0.0.0.0;",
            "NginxSite.listen_address='0.0.0.0;' is invalid: must be an IPv4 address or host name",
        ),
        ("worker_user", "Root", "NginxSite.worker_user='Root' is invalid: must be 'user' or 'user group'"),
        ("content_security_policy", "  ", "must be non-empty, without quotes, backslashes, '$' or control chars"),
        ("content_security_policy", "default-src $x", "content_security_policy"),
    ],
)
def test_validation_messages(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        NginxSite(**{"server_name": "x", "tls_enabled": True, "hsts": True, field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("api_port", 1),
        ("api_port", 65535),
        ("worker_connections", 16),
        ("resolver_valid_seconds", 86400),
        ("resolver", "127.0.0.1:5353"),
        ("api_host", "a"),
        ("worker_user", "www-data"),
        ("mime_types_path", "/" + "m" * 4095),
        ("server_name", "a" * 253),
    ],
)
def test_values_at_the_limits_are_accepted(field: str, value: object) -> None:
    NginxSite(**{"server_name": "x", "tls_enabled": True, "hsts": True, field: value})  # type: ignore[arg-type]
