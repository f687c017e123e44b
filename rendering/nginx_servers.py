"""The server blocks of nginx.conf: the catch-all, the HTTP redirect and the app server.

Split from ``rendering/nginx.py`` (which validates ``NginxSite`` and renders the top-level
file) so each stays readable; the locations are in ``rendering/nginx_locations.py``. Every
value interpolated here was validated by ``NginxSite``.

Directive semantics relied on (nginx documentation, https://nginx.org/en/docs/):
- ``return`` at server level runs in the server-rewrite phase, before any location is
  chosen; the catch-all server therefore returns 444 from a location, so that the
  container's own ``/nginx-health`` check (Host 127.0.0.1) still reaches its location.
- ``ssl_reject_handshake on`` (ngx_http_ssl_module, 1.19.4+) aborts the TLS handshake of
  any client whose SNI names no configured server, or that sends none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rendering.nginx_locations import (
    acme_location,
    app_locations,
    health_location,
    indent,
    listen,
    security_headers,
    self_health_location,
)

if TYPE_CHECKING:
    from rendering.nginx_site import NginxSite

STATUS_PATH = "/stub_status"


def _upstream_variable(site: NginxSite) -> str:
    # A variable in proxy_pass makes nginx resolve the name through `resolver`
    # at request time (cached for resolver_valid_seconds) instead of once at
    # startup: replicas that come and go are picked up without a reload, and
    # nginx starts even before any API container exists.
    return f'set $api_upstream "{site.api_host}";'


def _https_port_suffix(site: NginxSite) -> str:
    return "" if site.public_https_port == 443 else f":{site.public_https_port}"


def catch_all_servers(site: NginxSite) -> str:
    """Default servers: any Host or SNI other than ours is dropped (444 closes without a reply)."""
    http = f"""\
server {{
    listen {listen(site, site.http_listen_port)} default_server;
    server_name "";
    access_log off;

{indent(self_health_location(site), 1)}

    location / {{
        return 444;
    }}
}}"""
    if not site.tls_enabled:
        return http
    https = f"""\
server {{
    listen {listen(site, site.https_listen_port)} ssl http2 default_server;
    server_name "";
    access_log off;
    ssl_reject_handshake on;

    # Reached only by a client whose SNI was ours but whose Host header is not.
    location / {{
        return 444;
    }}
}}"""
    return http + "\n\n" + https


def redirect_server(site: NginxSite) -> str:
    return f"""\
server {{
    listen {listen(site, site.http_listen_port)};
    server_name {site.server_name};
    {_upstream_variable(site)}

{indent(acme_location(site), 1)}

{indent(self_health_location(site), 1)}

    # Plain-HTTP health check, so container/load-balancer probes need neither
    # a CA file nor redirect handling; it reveals nothing that HTTPS does not.
{indent(health_location(site), 1)}

    # The configured name, never $host: a forged Host must not pick the redirect target.
    location / {{
        return 301 https://{site.server_name}{_https_port_suffix(site)}$request_uri;
    }}
}}"""


def app_server(site: NginxSite) -> str:
    if site.tls_enabled:
        listen_line = f"listen {listen(site, site.https_listen_port)} ssl http2;"
        tls = f"\n\n    ssl_certificate {site.cert_path};\n    ssl_certificate_key {site.key_path};"
        if site.ocsp_stapling:
            # Only for certificates that name an OCSP responder (tls.mode=files, CA-issued);
            # nginx fetches the response through `resolver`. No ssl_stapling_verify: that needs
            # the root CA in ssl_trusted_certificate, and the client verifies the response anyway.
            tls += "\n    ssl_stapling on;"
    else:
        listen_line = f"listen {listen(site, site.http_listen_port)};"
        tls = ""
    return f"""\
server {{
    {listen_line}
    server_name {site.server_name};{tls}

{indent(security_headers(site), 1)}

    {_upstream_variable(site)}

{indent(app_locations(site), 1)}
}}"""


def status_server(site: NginxSite) -> str:
    # ngx_http_stub_status_module (nginx docs): active connections, accepts, handled,
    # requests, reading/writing/waiting; what the nginx exporter turns into metrics. Its own
    # port, so the public servers never answer it; the port is not published.
    return f"""\
server {{
    listen {listen(site, site.status_port or 0)};
    access_log off;

    location = {STATUS_PATH} {{
        stub_status;
    }}

    location / {{
        return 404;
    }}
}}"""
