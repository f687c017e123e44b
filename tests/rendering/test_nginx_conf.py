"""Unit tests on the text of the rendered nginx.conf (no nginx needed)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from rendering.nginx import NginxSite, render_nginx_conf


def _site(**overrides: object) -> NginxSite:
    values: dict[str, object] = {"server_name": "catalog.example.com", "tls_enabled": True, "hsts": True}
    values.update(overrides)
    return NginxSite(**values)  # type: ignore[arg-type]


def _render(**overrides: object) -> str:
    return render_nginx_conf(_site(**overrides))


def _directives(conf: str) -> list[str]:
    """Directive lines without comments, whitespace-normalised."""
    lines = []
    for raw in conf.splitlines():
        # The rendered file has no '#' inside directive values.
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(re.sub(r"\s+", " ", line))
    return lines


def _blocks(conf: str, header_re: str) -> list[str]:
    """Bodies of every block whose opening line matches header_re (brace-matched)."""
    bodies = []
    for match in re.finditer(header_re, conf, flags=re.M):
        start = conf.index("{", match.start())
        depth = 0
        for pos in range(start, len(conf)):
            if conf[pos] == "{":
                depth += 1
            elif conf[pos] == "}":
                depth -= 1
                if depth == 0:
                    bodies.append(conf[start + 1 : pos])
                    break
    return bodies


def _servers(conf: str) -> list[str]:
    return _blocks(conf, r"^\s*server\s*\{")


def _location(conf: str, spec: str) -> list[str]:
    return _blocks(conf, r"^\s*location\s+" + re.escape(spec) + r"\s*\{")


def _braces_balanced(conf: str) -> bool:
    depth = 0
    for char in conf:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


@pytest.mark.parametrize("tls, hsts", [(True, True), (True, False), (False, False), (False, True)])
def test_output_is_structurally_sane(tls: bool, hsts: bool) -> None:
    conf = _render(tls_enabled=tls, hsts=hsts)
    assert _braces_balanced(conf)
    assert conf.endswith("}\n")
    assert len(_blocks(conf, r"^events\s*\{")) == 1
    assert len(_blocks(conf, r"^http\s*\{")) == 1
    # catch-all (HTTP, and HTTPS with TLS) + redirect (with TLS) + app
    assert len(_servers(conf)) == (4 if tls else 2)
    # `-g "daemon off;"` is how the container and the tests run nginx: a
    # daemon directive in the file would make that a duplicate-directive error.
    assert "daemon" not in conf
    assert "worker_processes auto;" in conf


def test_tls_protocols_are_exactly_1_2_and_1_3() -> None:
    conf = _render()
    protocol_lines = [d for d in _directives(conf) if d.startswith("ssl_protocols")]
    assert protocol_lines == ["ssl_protocols TLSv1.2 TLSv1.3;"]
    assert "ssl_prefer_server_ciphers off;" in conf
    assert "ssl_session_cache shared:SSL:" in conf
    ciphers = next(d for d in _directives(conf) if d.startswith("ssl_ciphers"))
    for weak in ("RC4", "3DES", "MD5", "CBC", "NULL", "EXPORT", "DES-"):
        assert weak not in ciphers


def test_https_server_listens_with_ssl_and_http2_in_1_22_syntax() -> None:
    conf = _render(https_listen_port=8443)
    assert "listen 8443 ssl http2 default_server;" in conf  # the catch-all
    assert "listen 8443 ssl http2;" in conf  # the app server
    # `http2 on;` does not exist before nginx 1.25.1 (Debian bookworm has 1.22).
    assert "http2 on" not in conf
    assert "ssl_certificate /etc/nginx/tls/cert.pem;" in conf
    assert "ssl_certificate_key /etc/nginx/tls/key.pem;" in conf


def test_redirect_omits_default_https_port() -> None:
    conf = _render(public_https_port=443)
    assert "return 301 https://catalog.example.com$request_uri;" in conf
    assert ":443" not in conf


def test_redirect_includes_non_default_https_port() -> None:
    conf = _render(public_https_port=8443)
    assert "return 301 https://catalog.example.com:8443$request_uri;" in conf
    # Never the client's Host: a forged one must not pick the redirect target.
    assert "https://$host" not in conf


def test_redirect_server_is_the_http_port_and_keeps_acme_reachable() -> None:
    conf = _render(http_listen_port=8080, https_listen_port=8443)
    _, _, http_server, https_server = _servers(conf)
    assert "listen 8080;" in http_server
    assert "return 301 https://" in http_server
    assert "ssl_certificate" not in http_server
    # The redirect must live in `location /`, not at server level, or it would
    # also swallow the ACME challenge location.
    assert not re.search(r"^\s{0,4}return 301", http_server, flags=re.M)
    assert _location(http_server, "^~ /.well-known/acme-challenge/")
    assert "listen 8443 ssl http2" in https_server
    assert "return 301" not in https_server


def test_hsts_only_when_requested() -> None:
    hsts_line = 'add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;'
    assert hsts_line in _render(hsts=True)
    assert "Strict-Transport-Security" not in _render(hsts=False)
    without_subdomains = 'add_header Strict-Transport-Security "max-age=63072000" always;'
    assert without_subdomains in _render(hsts=True, hsts_include_subdomains=False)


def test_tls_off_serves_the_app_over_http_without_ssl_or_hsts() -> None:
    conf = _render(tls_enabled=False, hsts=True)
    assert "Strict-Transport-Security" not in conf
    assert not any(d.startswith("ssl_") for d in _directives(conf))
    assert " ssl" not in conf
    assert "return 301" not in conf
    catch_all, server = _servers(conf)
    assert "listen 80 default_server;" in catch_all
    assert "listen 80;" in server
    assert _location(server, "/api/")
    assert _location(server, "= /ws")


def test_rate_limit_zones() -> None:
    directives = _directives(_render())
    assert "limit_req_zone $binary_remote_addr zone=api_limit:10m rate=10r/s;" in directives
    assert "limit_req_zone $binary_remote_addr zone=auth_limit:10m rate=5r/s;" in directives


def test_api_and_auth_locations_use_their_zones() -> None:
    conf = _render()
    (api,) = _location(conf, "/api/")
    assert "limit_req zone=api_limit burst=20 nodelay;" in api
    auth_blocks = _blocks(conf, r"^\s*location ~ \^/api/v1/\(auth\|login\|register\)")
    assert len(auth_blocks) == 1
    assert "limit_req zone=auth_limit burst=5 nodelay;" in auth_blocks[0]
    auth_re = re.search(r"location ~ (\S+) \{", conf[conf.index("location ~ ^/api/v1/") :])
    assert auth_re is not None
    pattern = re.compile(auth_re.group(1))
    for path in ("/api/v1/auth/login", "/api/v1/login", "/api/v1/register", "/api/v1/auth"):
        assert pattern.search(path), path
    for path in ("/api/v1/media", "/api/v1/authors"):
        assert not pattern.search(path), path


def test_upstream_is_resolved_at_request_time() -> None:
    conf = _render(api_host="api", api_port=8080, resolver="127.0.0.11", resolver_valid_seconds=5)
    directives = _directives(conf)
    assert "resolver 127.0.0.11 valid=5s ipv6=off;" in directives
    assert 'set $api_upstream "api";' in directives
    proxy_passes = [d for d in directives if d.startswith("proxy_pass")]
    assert proxy_passes, "no proxy_pass rendered"
    assert set(proxy_passes) == {"proxy_pass http://$api_upstream:8080;"}
    # A static upstream block would resolve once at startup and fail without an API container.
    assert not any(d.startswith("upstream ") for d in directives)
    # every server that proxies must define the variable
    for server in _servers(conf):
        if "proxy_pass" in server:
            assert 'set $api_upstream "api";' in server


def test_custom_api_host_and_port() -> None:
    conf = _render(api_host="catalog-api", api_port=9000)
    assert 'set $api_upstream "catalog-api";' in conf
    assert "proxy_pass http://$api_upstream:9000;" in conf
    assert ":8080" not in conf


def test_retries_next_upstream_but_never_non_idempotent() -> None:
    directives = _directives(_render())
    assert "proxy_next_upstream error timeout http_502 http_503;" in directives
    assert "proxy_next_upstream_tries 3;" in directives
    assert "non_idempotent" not in "\n".join(directives)
    connect = next(d for d in directives if d.startswith("proxy_connect_timeout"))
    # A removed replica's address times out rather than refusing: the retry must come fast.
    assert connect == "proxy_connect_timeout 500ms;"
    assert "resolver 127.0.0.11 valid=1s ipv6=off;" in directives


def test_websocket_upgrade() -> None:
    conf = _render()
    (map_body,) = _blocks(conf, r"^\s*map \$http_upgrade \$connection_upgrade\s*\{")
    assert re.search(r"default\s+upgrade;", map_body)
    assert re.search(r"''\s+close;", map_body)
    (ws,) = _location(conf, "= /ws")
    assert not _location(conf, "/ws")  # exact match only: /wsanything is no WebSocket
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "proxy_set_header Connection $connection_upgrade;" in ws
    assert "proxy_http_version 1.1;" in ws
    assert "proxy_read_timeout 120s;" in ws


def test_large_bodies_only_where_the_api_takes_uploads() -> None:
    conf = _render()
    assert "client_max_body_size 1m;" in _directives(conf)
    (upload,) = _location(conf, "~ ^/api/v1/(copy|subtitles)/upload$")
    assert "client_max_body_size 2G;" in upload
    # Streamed: a stalled upload never spools to the proxy's disk.
    assert "proxy_request_buffering off;" in upload
    assert "limit_conn upload_conn 2;" in upload
    assert conf.count("client_max_body_size 2G;") == 1
    assert conf.count("proxy_request_buffering off;") == 1


def test_security_headers_always_and_at_server_level_only() -> None:
    conf = _render(hsts=True)
    for header in (
        'add_header X-Frame-Options "SAMEORIGIN" always;',
        'add_header X-Content-Type-Options "nosniff" always;',
        'add_header X-XSS-Protection "0" always;',
        "add_header Referrer-Policy ",
        'add_header Permissions-Policy "camera=(), microphone=(), geolocation=(), payment=(), usb=()" always;',
    ):
        assert header in conf
    assert "server_tokens off;" in conf
    # One add_header inside a location silently drops all server-level ones.
    for location in _blocks(conf, r"^\s*location\b"):
        assert "add_header" not in location


def test_content_security_policy_by_default_and_replaceable() -> None:
    default = (
        "add_header Content-Security-Policy \"default-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'self'; frame-ancestors 'self'\" always;"
    )
    assert default in _render()
    assert "Content-Security-Policy" not in _render(content_security_policy=None)
    conf = _render(content_security_policy="default-src 'none'; frame-ancestors 'self'")
    assert "add_header Content-Security-Policy \"default-src 'none'; frame-ancestors 'self'\" always;" in conf


def test_hidden_files_denied_but_acme_allowed() -> None:
    conf = _render()
    (hidden,) = _location(conf, "~ /\\.")
    assert "deny all;" in hidden
    (acme,) = _location(_servers(conf)[3], "^~ /.well-known/acme-challenge/")
    assert "deny" not in acme
    assert "root /var/www/acme;" in acme


def test_health_passthrough_without_access_log() -> None:
    conf = _render()
    healths = _location(conf, "= /health")
    assert len(healths) == 2  # plain-HTTP server and HTTPS server
    for health in healths:
        assert "access_log off;" in health
        assert "proxy_pass http://$api_upstream:8080;" in health


def test_metrics_not_exposed() -> None:
    conf = _render()
    (exact,) = _location(conf, "= /metrics")
    assert "return 404;" in exact
    assert "proxy_pass" not in exact
    (prefix,) = _location(conf, "^~ /metrics/")
    assert prefix.split() == ["return", "404;"]


def test_proxy_headers_in_every_proxied_location() -> None:
    conf = _render()
    proxied = [loc for loc in _blocks(conf, r"^\s*location\b") if "proxy_pass" in loc]
    assert len(proxied) >= 5
    for location in proxied:
        # X-Forwarded-For is overwritten with the client's address, never appended to.
        headers = ("Host $host", "X-Real-IP $remote_addr", "X-Forwarded-For $remote_addr", "X-Forwarded-Proto $scheme")
        for header in headers:
            assert f"proxy_set_header {header};" in location
        assert "proxy_http_version 1.1;" in location


def test_gzip_and_top_level_paths() -> None:
    conf = _render(log_dir="/logs", pid_path="/run/ngx.pid", mime_types_path="/etc/mime.types")
    directives = _directives(conf)
    assert "gzip on;" in directives
    assert any(d.startswith("gzip_types") and "application/json" in d for d in directives)
    assert "pid /run/ngx.pid;" in directives
    assert "error_log /logs/error.log warn;" in directives
    assert "access_log /logs/access.log main;" in directives
    assert "include /etc/mime.types;" in directives
    events = _blocks(conf, r"^events\s*\{")[0]
    assert re.search(r"worker_connections \d+;", events)
    # No user directive by default: the image's build default applies.
    assert not any(d.startswith("user ") for d in directives)


def test_optional_test_fields() -> None:
    conf = _render(worker_user="root", temp_dir="/tmp/t", listen_address="127.0.0.1")
    assert conf.count("user root;") == 1
    assert "client_body_temp_path /tmp/t/client_body;" in conf
    assert "proxy_temp_path /tmp/t/proxy;" in conf
    assert "listen 127.0.0.1:443 ssl http2 default_server;" in conf
    assert "listen 127.0.0.1:80 default_server;" in conf
    assert "listen 127.0.0.1:443 ssl http2;" in conf
    assert "listen 127.0.0.1:80;" in conf


@pytest.mark.parametrize(
    "bad",
    ["", "two names", "evil;", "a{b", "a}b", 'quo"te', "x$host", "new\nline", "a" * 300],
)
def test_bad_server_name_raises_naming_the_field(bad: str) -> None:
    with pytest.raises(ValueError, match="server_name"):
        _site(server_name=bad)


def test_validation_also_guards_render_and_replace() -> None:
    site = _site()
    with pytest.raises(ValueError, match="server_name"):
        dataclasses.replace(site, server_name="x; include /etc/passwd")
    object.__setattr__(site, "server_name", "x;y")
    with pytest.raises(ValueError, match="server_name"):
        render_nginx_conf(site)


@pytest.mark.parametrize(
    "field, value",
    [
        ("public_https_port", 0),
        ("public_https_port", 65536),
        ("api_port", -1),
        ("http_listen_port", 70000),
        ("https_listen_port", True),
        ("api_port", "8080"),
        ("resolver_valid_seconds", 0),
        ("api_host", "api;"),
        ("api_host", "a pi"),
        ("resolver", "127.0.0.11; evil"),
        ("cert_path", "tls/cert.pem;"),
        ("key_path", "/etc/with space/key.pem"),
        ("log_dir", "/var/log;"),
        ("temp_dir", "/tmp/{x}"),
        ("worker_user", "root; evil"),
        ("content_security_policy", 'default-src "self"'),
        ("tls_enabled", "yes"),
    ],
)
def test_bad_fields_raise_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        _site(**{field: value})


def test_same_http_and_https_port_rejected_with_tls() -> None:
    with pytest.raises(ValueError, match="https_listen_port"):
        _site(http_listen_port=8000, https_listen_port=8000)
    # Irrelevant when TLS is off: only the HTTP port is used.
    _site(tls_enabled=False, http_listen_port=8000, https_listen_port=8000)


@pytest.mark.parametrize("name", ["localhost", "catalog.example.com", "*.example.com", "_", "10.0.0.5"])
def test_valid_server_names_accepted(name: str) -> None:
    assert f"server_name {name};" in _render(server_name=name)
