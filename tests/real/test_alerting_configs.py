"""Everything the program renders for monitoring, checked by the tools of the versions that run it:
promtool (Prometheus 2.42), amtool (Alertmanager 0.25) and the blackbox exporter's own
--config.check, all from Debian's packages in the test images; and every alert rule under
`promtool test rules` with a case that fires and one that does not.

The tools run inside the test images (nothing on the host), on the files the program
uploads, at the paths it uploads them to, so references between them (rule_files, ca_file)
resolve as in the real containers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from alerting_support import uploads
from docker_harness import DockerScope
from images import tags
from program import Deployment
from workspace import Workspace

from components.alertmanager import CONF_PATH as ALERTMANAGER_CONF
from components.exporters import BLACKBOX_CONF
from components.monitoring import PROMETHEUS_CONF, PROMETHEUS_RULES
from rendering.alerts import ALERT_NAMES, RuleParams, alert_rules, render_alert_rules

RECEIVERS = {
    "webhookUrls": ["https://alerts.example.com/hook", "https://hooks.slack.com/services/T000/B000/XXXX"],
    "email": {"to": "ops@example.com", "from": "cz@example.com", "smarthost": "smtp.example.com:587", "username": "cz"},
}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    workspace = Workspace(tmp_path_factory.mktemp("alerting-configs"))
    # tls.mode=acme: every rule a stack can render (AcmeRenewalOverdue too), and the blackbox
    # module that verifies the served chain against the system's roots (no CA file).
    acme = {"mode": "acme", "acmeEmail": "ops@example.com", "certFile": None, "keyFile": None}
    return workspace.deploy(
        "prod", {"alerts": RECEIVERS, "tls": acme}, secrets={"alertsSmtpPassword": "smtp-password-1"}
    )


def _tool(scope: DockerScope, image: str, entrypoint: str, args: list[str], files: dict[str, str]) -> str:
    code, output = scope.run_once(image, args, entrypoint=[entrypoint], files=files, user="root")
    assert code == 0, f"{entrypoint} {' '.join(args)} failed:\n{output}"
    return output


def test_prometheus_config_and_rules_pass_promtool(docker_scope: DockerScope, deployment: Deployment) -> None:
    files = {path: u["content"] for path, u in uploads(deployment.container("prometheus")).items()}
    out = _tool(docker_scope, tags.MONITORING["prometheus"], "promtool", ["check", "config", PROMETHEUS_CONF], files)
    assert "SUCCESS: 1 rule files found" in out or "SUCCESS" in out
    out = _tool(docker_scope, tags.MONITORING["prometheus"], "promtool", ["check", "rules", PROMETHEUS_RULES], files)
    assert f"SUCCESS: {len(ALERT_NAMES)} rules found" in out


def test_alertmanager_config_with_every_receiver_passes_amtool(
    docker_scope: DockerScope, deployment: Deployment
) -> None:
    files = {path: u["content"] for path, u in uploads(deployment.container("alertmanager")).items()}
    out = _tool(docker_scope, tags.MONITORING["alertmanager"], "amtool", ["check-config", ALERTMANAGER_CONF], files)
    assert "SUCCESS" in out and "1 receivers" in out


def test_blackbox_modules_pass_config_check(docker_scope: DockerScope, deployment: Deployment) -> None:
    files = {path: u["content"] for path, u in uploads(deployment.container("blackbox-exporter")).items()}
    image = tags.MONITORING["blackbox-exporter"]
    out = _tool(
        docker_scope, image, "prometheus-blackbox-exporter", [f"--config.file={BLACKBOX_CONF}", "--config.check"], files
    )
    assert "Config file is ok" in out


# --- promtool test rules -----------------------------------------------------------------
API = 'job="catalog-api"'
PROBE = 'job="blackbox",instance="https://nginx:443/health"'
EVAL_MINUTES = 20
NOW = EVAL_MINUTES * 60  # time() at the evaluation


def _expiry_in(days: float) -> str:
    return f"{NOW + days * 86400:.0f}x{EVAL_MINUTES}"


# alert -> (series that fire it, labels it fires with, series that do not)
CASES: dict[str, tuple[dict[str, str], dict[str, str], dict[str, str]]] = {
    "ApiDown": ({f"up{{{API},instance='a'}}": "0x20"}, {}, {f"up{{{API},instance='a'}}": "1x20"}),
    "ApiReplicaDown": (
        {f"up{{{API},instance='a'}}": "1x20", f"up{{{API},instance='b'}}": "0x20"},
        {"job": "catalog-api", "instance": "b"},
        {f"up{{{API},instance='a'}}": "1x20", f"up{{{API},instance='b'}}": "1x20"},
    ),
    "PublicUrlDown": (
        {f"probe_success{{{PROBE}}}": "0x20"},
        {"job": "blackbox", "instance": "https://nginx:443/health"},
        {f"probe_success{{{PROBE}}}": "1x20"},
    ),
    "ApiHighErrorRatio": (
        {
            f"catalogizer_http_requests_total{{{API},instance='a',status='200'}}": "0+100x20",
            f"catalogizer_http_requests_total{{{API},instance='a',status='502'}}": "0+10x20",
        },
        {},
        {
            f"catalogizer_http_requests_total{{{API},instance='a',status='200'}}": "0+100x20",
            f"catalogizer_http_requests_total{{{API},instance='a',status='502'}}": "0+1x20",
        },
    ),
    "PostgresDown": (
        {"pg_up{job='postgres',instance='pe:9187'}": "0x20"},
        {"job": "postgres", "instance": "pe:9187"},
        {"pg_up{job='postgres',instance='pe:9187'}": "1x20"},
    ),
    "RedisDown": (
        {"redis_up{job='redis',instance='re:9121'}": "0x20"},
        {"job": "redis", "instance": "re:9121"},
        {"redis_up{job='redis',instance='re:9121'}": "1x20"},
    ),
    "RedisMemoryNearLimit": (
        {
            "redis_memory_used_bytes{job='redis',instance='r'}": "95x20",
            "redis_memory_max_bytes{job='redis',instance='r'}": "100x20",
        },
        {"job": "redis", "instance": "r"},
        {
            "redis_memory_used_bytes{job='redis',instance='r'}": "50x20",
            "redis_memory_max_bytes{job='redis',instance='r'}": "100x20",
        },
    ),
    "DiskFreeLow": (
        {"catalogizer_disk_free_bytes{job='backup-scheduler',instance='s',path='backups'}": f"{1024**3}x20"},
        {"job": "backup-scheduler", "instance": "s", "path": "backups"},
        {"catalogizer_disk_free_bytes{job='backup-scheduler',instance='s',path='backups'}": f"{20 * 1024**3}x20"},
    ),
    "CertificateExpiringSoon": (
        {f"probe_ssl_earliest_cert_expiry{{{PROBE}}}": _expiry_in(10)},
        {"job": "blackbox", "instance": "https://nginx:443/health"},
        {f"probe_ssl_earliest_cert_expiry{{{PROBE}}}": _expiry_in(30)},
    ),
    "CertificateExpiryCritical": (
        {f"probe_ssl_earliest_cert_expiry{{{PROBE}}}": _expiry_in(3)},
        {"job": "blackbox", "instance": "https://nginx:443/health"},
        {f"probe_ssl_earliest_cert_expiry{{{PROBE}}}": _expiry_in(10)},
    ),
    "BackupOverdue": (
        {"catalogizer_backup_overdue{job='backup-scheduler',instance='s'}": "0x10 1x10"},
        {"job": "backup-scheduler", "instance": "s"},
        {"catalogizer_backup_overdue{job='backup-scheduler',instance='s'}": "1x10 0x10"},
    ),
    "OffsitePushFailed": (
        {"catalogizer_backup_offsite_last_push_success{job='backup-scheduler',instance='s'}": "0x20"},
        {"job": "backup-scheduler", "instance": "s"},
        {"catalogizer_backup_offsite_last_push_success{job='backup-scheduler',instance='s'}": "1x20"},
    ),
    "RestoreDrillFailed": (
        {"catalogizer_restore_drill_last_success{job='backup-scheduler',instance='s'}": "0x20"},
        {"job": "backup-scheduler", "instance": "s"},
        {"catalogizer_restore_drill_last_success{job='backup-scheduler',instance='s'}": "1x20"},
    ),
    "BackupSchedulerDown": (
        {"up{job='backup-scheduler',instance='s'}": "0x20"},
        {"job": "backup-scheduler", "instance": "s"},
        {"up{job='backup-scheduler',instance='s'}": "1x20"},
    ),
    # tls.mode=acme only: 20 days left is 10 days past the renewal window's start; 29.5 days is not yet overdue.
    "AcmeRenewalOverdue": (
        {f"probe_ssl_earliest_cert_expiry{{{PROBE}}}": _expiry_in(20)},
        {"job": "blackbox", "instance": "https://nginx:443/health"},
        {f"probe_ssl_earliest_cert_expiry{{{PROBE}}}": _expiry_in(29.5)},
    ),
    "ExporterDown": (
        {"up{job='redis',instance='re:9121'}": "0x20"},
        {"job": "redis", "instance": "re:9121"},
        {"up{job='redis',instance='re:9121'}": "1x20", "up{job='postgres',instance='p'}": "1x20"},
    ),
}


def _annotations(rule: dict[str, Any], labels: dict[str, str]) -> dict[str, str]:
    # promtool compares the expanded annotations; only {{ $labels.x }} templates are used.
    def expand(text: str) -> str:
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), text)

    return {key: expand(value) for key, value in rule["annotations"].items()}


def _series(spec: dict[str, str]) -> list[dict[str, str]]:
    return [{"series": name.replace("'", '"'), "values": values} for name, values in spec.items()]


def rule_tests(params: RuleParams) -> dict[str, Any]:
    tests = []
    for rule in alert_rules(params):
        firing, labels, quiet = CASES[rule["alert"]]
        expected = {**labels, "severity": rule["labels"]["severity"]}
        for series, alerts in (
            (firing, [{"exp_labels": expected, "exp_annotations": _annotations(rule, expected)}]),
            (quiet, []),
        ):
            tests.append(
                {
                    "interval": "1m",
                    "input_series": _series(series),
                    "alert_rule_test": [
                        {"eval_time": f"{EVAL_MINUTES}m", "alertname": rule["alert"], "exp_alerts": alerts}
                    ],
                }
            )
    # ApiDown also fires when no replica is scraped at all (absent(up)), labelled with the job.
    absent_rule = next(r for r in alert_rules(params) if r["alert"] == "ApiDown")
    absent_labels = {"job": "catalog-api", "severity": "critical"}
    tests.append(
        {
            "interval": "1m",
            "input_series": _series({"up{job='redis',instance='r'}": "1x20"}),
            "alert_rule_test": [
                {
                    "eval_time": f"{EVAL_MINUTES}m",
                    "alertname": "ApiDown",
                    "exp_alerts": [
                        {"exp_labels": absent_labels, "exp_annotations": _annotations(absent_rule, absent_labels)}
                    ],
                }
            ],
        }
    )
    return {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}


def test_every_rule_has_a_firing_and_a_quiet_case_under_promtool(docker_scope: DockerScope, tmp_path: Path) -> None:
    params = RuleParams(acme_renew_days=30)  # every rule a stack can render
    assert set(CASES) == set(ALERT_NAMES), "every rule needs its cases here"
    files = {"/tests/rules.yml": render_alert_rules(params), "/tests/tests.yml": json.dumps(rule_tests(params))}
    out = _tool(docker_scope, tags.MONITORING["prometheus"], "promtool", ["test", "rules", "/tests/tests.yml"], files)
    assert "SUCCESS" in out
