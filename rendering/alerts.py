"""Render the alert rules, Alertmanager's configuration and the blackbox exporter's modules.

Pure functions; the output is ``#`` comment lines plus JSON, which Prometheus, Alertmanager
and the blackbox exporter read as YAML (see rendering/monitoring.py). Each rule's summary
says what to do and its ``runbook`` annotation names the section of docs/operations.md
(its "Alerts" part) with the steps; tests/unit/test_operations_guide.py checks every
alert has one.

Metric names come from the exporters and programs that serve them:
- ``up``: Prometheus sets it per scrape target (1 = the scrape succeeded).
- ``pg_up`` (postgres_exporter: 0 when it cannot reach the server), ``redis_up``,
  ``redis_memory_used_bytes`` and ``redis_memory_max_bytes`` (redis_exporter, from INFO).
- ``probe_success`` and ``probe_ssl_earliest_cert_expiry`` (blackbox exporter's http prober;
  with tls.mode=acme also the source of AcmeRenewalOverdue).
- ``catalogizer_http_requests_total{status}`` (Catalogizer catalog-api internal/metrics).
- ``catalogizer_backup_*``, ``catalogizer_disk_free_bytes`` and ``catalogizer_restore_drill_*``:
  scripts/backup_scheduler.py's /metrics (the off-host push and drill gauges exist only with
  catalogizer:backup.repository, once a push or drill has run; until then their rules stay silent).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "ALERT_NAMES",
    "AlertRoute",
    "EmailReceiver",
    "RuleParams",
    "alert_rules",
    "render_alert_rules",
    "render_alertmanager_yml",
    "render_blackbox_yml",
]

RUNBOOK = "docs/operations.md"
GB = 1024**3  # the unit of preflight.minFreeGb (scripts/preflight.py)
DAY = 86400

# Jobs in prometheus.yml (rendering/monitoring.py uses the same names).
JOB_API = "catalog-api"
JOB_POSTGRES = "postgres"
JOB_REDIS = "redis"
JOB_NGINX = "nginx"
JOB_BLACKBOX = "blackbox"
JOB_SCHEDULER = "backup-scheduler"
BLACKBOX_MODULE = "public_health"


@dataclass(frozen=True)
class RuleParams:
    error_ratio_percent: int = 5
    min_free_gb: int = 10
    # Certificate warning and critical thresholds (days left).
    cert_warning_days: int = 14
    cert_critical_days: int = 7
    # tls.mode=acme: the sidecar renews this many days ahead (components/acme.py RENEW_DAYS);
    # None (other modes) renders no AcmeRenewalOverdue rule.
    acme_renew_days: int | None = None


def _rule(alert: str, expr: str, for_: str, severity: str, summary: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": alert, "expr": expr}
    if for_ != "0m":
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "runbook": f"{RUNBOOK}#{alert.lower()}"}
    return rule


def alert_rules(params: RuleParams) -> list[dict[str, Any]]:
    """The rules as data (also what the promtool tests iterate over)."""
    ratio = params.error_ratio_percent / 100
    requests = f'catalogizer_http_requests_total{{job="{JOB_API}"}}'
    errors = f'catalogizer_http_requests_total{{job="{JOB_API}",status=~"5.."}}'
    expiry = f'probe_ssl_earliest_cert_expiry{{job="{JOB_BLACKBOX}"}} - time()'
    rules = [
        _rule(
            "ApiDown",
            f'sum(up{{job="{JOB_API}"}}) == 0 or absent(up{{job="{JOB_API}"}})',
            "1m",
            "critical",
            "No API replica answers /metrics: check `docker ps` and the API logs, then redeploy or roll back.",
        ),
        _rule(
            "ApiReplicaDown",
            f'up{{job="{JOB_API}"}} == 0',
            "3m",
            "warning",
            "API replica {{ $labels.instance }} does not answer: read its logs; `./deploy.sh` replaces it.",
        ),
        _rule(
            "PublicUrlDown",
            f'probe_success{{job="{JOB_BLACKBOX}"}} == 0',
            "2m",
            "critical",
            "The public /health through nginx fails: check the nginx and API containers and the certificate.",
        ),
        _rule(
            "ApiHighErrorRatio",
            f"sum(rate({errors}[5m])) / sum(rate({requests}[5m])) > {ratio:g}",
            "5m",
            "warning",
            f"More than {params.error_ratio_percent} % of API responses are 5xx: read the API logs "
            "(database? a bad release?); roll back if a deploy started it.",
        ),
        _rule(
            "PostgresDown",
            f'pg_up{{job="{JOB_POSTGRES}"}} == 0',
            "1m",
            "critical",
            "PostgreSQL does not answer: `docker logs catalogizer-postgres`; start it or free its disk.",
        ),
        _rule(
            "RedisDown",
            f'redis_up{{job="{JOB_REDIS}"}} == 0',
            "1m",
            "critical",
            "Redis does not answer (the API falls back to in-memory limits): `docker logs` the redis container.",
        ),
        _rule(
            "RedisMemoryNearLimit",
            f'redis_memory_used_bytes{{job="{JOB_REDIS}"}} / redis_memory_max_bytes{{job="{JOB_REDIS}"}} > 0.9'
            f' and redis_memory_max_bytes{{job="{JOB_REDIS}"}} > 0',
            "10m",
            "warning",
            "Redis uses over 90 % of maxmemory and will evict keys: raise catalogizer:redis.memoryMb and deploy.",
        ),
        _rule(
            "DiskFreeLow",
            f"catalogizer_disk_free_bytes < {params.min_free_gb * GB}",
            "5m",
            "warning",
            f"Less than {params.min_free_gb} GB free on {{{{ $labels.path }}}}: prune images and old dumps; "
            "deploys and dumps will fail below it.",
        ),
        _rule(
            "CertificateExpiringSoon",
            f"{expiry} < {params.cert_warning_days * DAY}",
            "10m",
            "warning",
            f"The certificate served at the public URL expires within {params.cert_warning_days} days: "
            "renew it, copy it to ssl/ and deploy.",
        ),
        _rule(
            "CertificateExpiryCritical",
            f"{expiry} < {params.cert_critical_days * DAY}",
            "10m",
            "critical",
            f"The certificate expires within {params.cert_critical_days} days: renew it now, copy it to ssl/ "
            "and deploy.",
        ),
        _rule(
            "BackupOverdue",
            "catalogizer_backup_overdue == 1",
            "0m",
            "critical",
            "No successful scheduled dump since the last due time plus grace: read the scheduler's logs and "
            "take a dump by hand.",
        ),
        _rule(
            "OffsitePushFailed",
            "catalogizer_backup_offsite_last_push_success == 0",
            "0m",
            "critical",
            "The last off-host copy of the backups failed: dumps exist only on this host; read the scheduler's logs.",
        ),
        _rule(
            "RestoreDrillFailed",
            "catalogizer_restore_drill_last_success == 0",
            "0m",
            "critical",
            "The last restore drill failed: the backups may not restore; read the drill's output and fix it today.",
        ),
        _rule(
            "BackupSchedulerDown",
            f'up{{job="{JOB_SCHEDULER}"}} == 0',
            "3m",
            "critical",
            "The backup scheduler does not answer: no dumps are being taken; `docker logs` it and redeploy.",
        ),
        _rule(
            "ExporterDown",
            f'up{{job=~"{JOB_POSTGRES}|{JOB_REDIS}|{JOB_NGINX}|{JOB_BLACKBOX}"}} == 0',
            "5m",
            "warning",
            "The {{ $labels.job }} exporter does not answer: its alerts are blind; `docker logs` it.",
        ),
    ]
    if params.acme_renew_days is not None:
        # The sidecar tries twice a day from `acme_renew_days` left on (scripts/acme_client.py):
        # a day later at least two attempts failed. Read from the served certificate, so it
        # also fires when the sidecar is gone.
        rules.append(
            _rule(
                "AcmeRenewalOverdue",
                f"{expiry} < {(params.acme_renew_days - 1) * DAY}",
                "10m",
                "warning",
                f"The served certificate was due for ACME renewal {params.acme_renew_days} days before expiry "
                "and still is not renewed: `docker logs` the acme container, fix the cause (DNS, port 80, "
                "rate limit) and renew by hand.",
            )
        )
    return rules


# Every alert a stack can render (AcmeRenewalOverdue only with tls.mode=acme).
ALERT_NAMES = tuple(rule["alert"] for rule in alert_rules(RuleParams(acme_renew_days=30)))


def _dump(what: str, document: dict[str, Any]) -> str:
    header = f"# Generated by catalogizer-deploy (rendering/alerts.py): {what}. Do not edit by hand.\n"
    return header + "# JSON is valid YAML.\n" + json.dumps(document, indent=2) + "\n"


def render_alert_rules(params: RuleParams) -> str:
    """Prometheus rule file (rule_files in prometheus.yml)."""
    for name in ("error_ratio_percent", "min_free_gb", "cert_warning_days", "cert_critical_days"):
        value = getattr(params, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}={value!r} is invalid: must be a whole number >= 0")
    if params.cert_critical_days >= params.cert_warning_days:
        raise ValueError("cert_critical_days must be below cert_warning_days")
    if params.acme_renew_days is not None and not params.cert_warning_days < params.acme_renew_days - 1:
        raise ValueError("acme_renew_days must leave a day before the renewal alert and stay above cert_warning_days")
    return _dump("alert rules", {"groups": [{"name": "catalogizer", "rules": alert_rules(params)}]})


@dataclass(frozen=True)
class EmailReceiver:
    to: str
    sender: str
    smarthost: str
    username: str | None
    # None without username; never logged, only written into the uploaded 0600 file.
    password: str | None


@dataclass(frozen=True)
class AlertRoute:
    webhook_urls: Sequence[str] = ()
    email: EmailReceiver | None = None
    repeat_interval_hours: int = 4
    # Alertmanager's wait before the first notification of a group and between updates.
    group_wait_seconds: int = 30
    group_interval_seconds: int = 60


def _is_slack(url: str) -> bool:
    # Slack's incoming webhooks take Slack's message JSON, not Alertmanager's webhook JSON.
    return (urlsplit(url).hostname or "").lower() == "hooks.slack.com"


def render_alertmanager_yml(route: AlertRoute) -> str:
    """Alertmanager configuration: one receiver holding every configured channel.

    Without channels the receiver is empty: alerts still group, show in the UI and resolve.
    Holds secrets (SMTP password, Slack webhook tokens): upload it 0600, owned by the
    user Alertmanager runs as (components/alertmanager.py).
    """
    for url in route.webhook_urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook url {url!r} is invalid: must be http(s) with a host")
    for name in ("repeat_interval_hours", "group_wait_seconds", "group_interval_seconds"):
        value = getattr(route, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} is invalid: must be a whole number >= 1")
    receiver: dict[str, Any] = {"name": "operators"}
    webhooks = [
        # send_resolved: the "resolve by themselves" reaches people too.
        {"url": url, "send_resolved": True, "max_alerts": 0}
        for url in route.webhook_urls
        if not _is_slack(url)
    ]
    slack = [
        {
            "api_url": url,
            "send_resolved": True,
            "title": "{{ .Status | toUpper }}: {{ .CommonLabels.alertname }}",
            "text": "{{ range .Alerts }}{{ .Annotations.summary }} ({{ .Annotations.runbook }})\n{{ end }}",
        }
        for url in route.webhook_urls
        if _is_slack(url)
    ]
    if webhooks:
        receiver["webhook_configs"] = webhooks
    if slack:
        receiver["slack_configs"] = slack
    if route.email is not None:
        mail: dict[str, Any] = {
            "to": route.email.to,
            "from": route.email.sender,
            "smarthost": route.email.smarthost,
            "send_resolved": True,
        }
        if route.email.username is not None:
            if not route.email.password:
                raise ValueError("email.password is required with email.username")
            mail["auth_username"] = route.email.username
            mail["auth_password"] = route.email.password
        receiver["email_configs"] = [mail]
    document = {
        "route": {
            "receiver": "operators",
            "group_by": ["alertname"],
            "group_wait": f"{route.group_wait_seconds}s",
            "group_interval": f"{route.group_interval_seconds}s",
            "repeat_interval": f"{route.repeat_interval_hours}h",
        },
        "receivers": [receiver],
    }
    return _dump("Alertmanager configuration", document)


def render_blackbox_yml(server_name: str, ca_file: str | None, tls_on: bool | None = None) -> str:
    """Blackbox exporter module ``public_health``: GET /health, 200 expected.

    The probe connects to nginx on the stack's network but presents the public name (SNI and
    Host), so it checks the certificate and virtual host the public URL serves. With
    ``ca_file`` (TLS on) the certificate must verify against it: the stack's own certificate,
    which Go's verifier accepts as a trust anchor for itself (crypto/x509 Verify); expiry is
    then ``probe_ssl_earliest_cert_expiry``. Without it (tls.mode=off) plain HTTP is probed,
    unless ``tls_on`` (tls.mode=acme with a public CA): then the system's roots verify it.
    """
    if not isinstance(server_name, str) or not server_name or any(c.isspace() or c in "/:" for c in server_name):
        raise ValueError(f"server_name={server_name!r} is invalid: must be a host name")
    http: dict[str, Any] = {
        "valid_status_codes": [200],
        "method": "GET",
        "headers": {"Host": server_name},
        "preferred_ip_protocol": "ip4",
    }
    if tls_on if tls_on is not None else ca_file is not None:
        http["fail_if_not_ssl"] = True
        http["tls_config"] = {"server_name": server_name, **({"ca_file": ca_file} if ca_file else {})}
    module = {"prober": "http", "timeout": "5s", "http": http}
    return _dump("blackbox exporter modules", {"modules": {BLACKBOX_MODULE: module}})
