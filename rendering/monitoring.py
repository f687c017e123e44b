"""Render Prometheus and Grafana provisioning files.

The output is JSON, which is also valid YAML (YAML 1.2 is a superset of JSON,
and the Go YAML parsers of Prometheus and Grafana accept it), preceded by
``#`` comment lines.  That keeps the renderer free of a YAML dependency while
the structure stays exactly what ``json.dumps`` produced -- no hand-written
indentation or quoting to get wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

__all__ = ["render_grafana_datasource", "render_prometheus_yml"]

_HOST_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9._-]*[A-Za-z0-9_])?$")

PROMETHEUS_DATASOURCE_UID = "prometheus"


def _check_port(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"{name}={value!r} is invalid: must be an integer between 1 and 65535")


def _dump(header: str, document: dict[str, Any]) -> str:
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comments + json.dumps(document, indent=2) + "\n"


def _check_target(name: str, value: object) -> None:
    host, _, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
    if not _HOST_RE.fullmatch(host) or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{name}={value!r} is invalid: must be host:port")


def render_prometheus_yml(
    api_host: str = "api",
    api_port: int = 8080,
    scrape_interval_seconds: int = 15,
    *,
    targets: Mapping[str, str] | None = None,
    blackbox: tuple[str, str, str] | None = None,
    alertmanager: str | None = None,
    rule_files: Sequence[str] = (),
) -> str:
    """Prometheus config that scrapes every API replica plus Prometheus itself.

    ``targets`` adds one static job per exporter (job name -> host:port). ``blackbox`` is
    (exporter host:port, module, probed URL): the exporter is scraped at /probe with the
    URL as its ``target`` parameter, the relabelling its README describes, so ``instance``
    names the URL. ``alertmanager`` (host:port) and ``rule_files`` turn alerting on.

    Replicas share one Docker network alias, so a DNS A lookup of ``api_host``
    returns one address per replica; ``dns_sd_configs`` turns each into its own
    target (a static ``api:8080`` target would hit one random replica per scrape).
    """
    if not isinstance(api_host, str) or len(api_host) > 253 or not _HOST_RE.fullmatch(api_host):
        raise ValueError(f"api_host={api_host!r} is invalid: must be a host name or IPv4 address")
    _check_port("api_port", api_port)
    if (
        isinstance(scrape_interval_seconds, bool)
        or not isinstance(scrape_interval_seconds, int)
        or not 1 <= scrape_interval_seconds <= 3600
    ):
        raise ValueError(
            f"scrape_interval_seconds={scrape_interval_seconds!r} is invalid: must be an integer between 1 and 3600"
        )
    for job, target in (targets or {}).items():
        _check_target(f"targets[{job}]", target)
    if alertmanager is not None:
        _check_target("alertmanager", alertmanager)
    if blackbox is not None:
        _check_target("blackbox", blackbox[0])
        if urlsplit(blackbox[2]).scheme not in ("http", "https"):
            raise ValueError(f"blackbox url {blackbox[2]!r} is invalid: must be http(s)")
    interval = f"{scrape_interval_seconds}s"
    # Prometheus rejects a config whose scrape_timeout (default 10s) exceeds
    # the scrape interval.
    timeout = f"{min(10, scrape_interval_seconds)}s"
    document: dict[str, Any] = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": timeout,
            "evaluation_interval": interval,
        },
        "scrape_configs": [
            {
                "job_name": "catalog-api",
                "metrics_path": "/metrics",
                "scheme": "http",
                "dns_sd_configs": [
                    {
                        "names": [api_host],
                        "type": "A",
                        "port": api_port,
                        # Re-resolve as often as we scrape, so replaced
                        # replicas (new IPs) are picked up quickly.
                        "refresh_interval": interval,
                    }
                ],
                "relabel_configs": [
                    # Same label as the reference config's static target.
                    {"target_label": "service", "replacement": "catalog-api"},
                ],
            },
            {
                "job_name": "prometheus",
                "static_configs": [{"targets": ["localhost:9090"]}],
            },
        ],
    }
    for job, target in (targets or {}).items():
        document["scrape_configs"].append({"job_name": job, "static_configs": [{"targets": [target]}]})
    if blackbox is not None:
        exporter, module, url = blackbox
        document["scrape_configs"].append(
            {
                "job_name": "blackbox",
                "metrics_path": "/probe",
                "params": {"module": [module]},
                "static_configs": [{"targets": [url]}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": exporter},
                ],
            }
        )
    if alertmanager is not None:
        document["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    if rule_files:
        document["rule_files"] = list(rule_files)
    return _dump(
        "Generated by catalogizer-deploy (rendering/monitoring.py). Do not edit by hand.\n"
        "JSON is valid YAML; Prometheus reads this file as YAML.",
        document,
    )


def render_grafana_datasource(prometheus_url: str) -> str:
    """Grafana provisioning file with one default Prometheus datasource."""
    if not isinstance(prometheus_url, str):
        raise ValueError(f"prometheus_url={prometheus_url!r} is invalid: must be a string")
    parts = urlsplit(prometheus_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in prometheus_url):
        raise ValueError(
            f"prometheus_url={prometheus_url!r} is invalid: must be an http(s) URL with a host, e.g. http://prometheus:9090"
        )
    document: dict[str, Any] = {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "type": "prometheus",
                # A fixed uid lets provisioned dashboards reference the datasource.
                "uid": PROMETHEUS_DATASOURCE_UID,
                # "proxy": the Grafana server queries Prometheus inside the
                # Docker network; browsers never need to reach it.
                "access": "proxy",
                "url": prometheus_url,
                "isDefault": True,
                "editable": False,
            }
        ],
    }
    return _dump(
        "Generated by catalogizer-deploy (rendering/monitoring.py). Do not edit by hand.\n"
        "JSON is valid YAML; Grafana reads this file as YAML.",
        document,
    )
