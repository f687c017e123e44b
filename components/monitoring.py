"""Prometheus scraping every API replica, the exporters and the backup scheduler, evaluating
the alert rules and sending to Alertmanager; Grafana with Prometheus and the dashboard provisioned."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.acme import RENEW_DAYS as ACME_RENEW_DAYS
from components.alertmanager import NETWORK_ALIAS as ALERTMANAGER_ALIAS
from components.alertmanager import PORT as ALERTMANAGER_PORT
from components.api import NETWORK_ALIAS as API_ALIAS
from components.backup_scheduler import METRICS_PORT as SCHEDULER_METRICS_PORT
from components.backup_scheduler import NETWORK_ALIAS as SCHEDULER_ALIAS
from components.container_defaults import container_options, healthcheck, managed_container
from components.exporters import PORTS as EXPORTER_PORTS
from components.exporters import probe_url
from rendering.alerts import BLACKBOX_MODULE, RuleParams, render_alert_rules
from rendering.dashboard import render_dashboard, render_dashboard_provider
from rendering.monitoring import render_grafana_datasource, render_prometheus_yml
from settings import API_PORT, Settings

PROMETHEUS_CONF = "/etc/prometheus/prometheus.yml"
PROMETHEUS_RULES = "/etc/prometheus/alerts.yml"
GRAFANA_DATASOURCE = "/etc/grafana/provisioning/datasources/prometheus.yaml"
# Grafana reads any setting's GF_<SECTION>_<KEY>__FILE variable from that file (grafana docs,
# "Configure Grafana": override configuration with environment variables / __FILE). The image
# runs as uid 472 with group 0, which reads the root-owned 0640 upload.
GRAFANA_PASSWORD_FILE = "/etc/grafana/catalogizer-admin-password"
GRAFANA_DASHBOARDS = "/etc/grafana/provisioning/dashboards/catalogizer.yaml"
GRAFANA_DASHBOARD_DIR = "/var/lib/catalogizer-dashboards"
PROMETHEUS_ALIAS = "prometheus"
MEMORY_MB = 512


def prometheus_config(settings: Settings) -> str:
    """prometheus.yml for this stack: every exporter, the probe, the scheduler when it runs."""
    targets = {
        job: f"{alias}:{EXPORTER_PORTS[alias]}"
        for job, alias in (("postgres", "postgres-exporter"), ("redis", "redis-exporter"), ("nginx", "nginx-exporter"))
    }
    if settings.backup.scheduler:
        targets["backup-scheduler"] = f"{SCHEDULER_ALIAS}:{SCHEDULER_METRICS_PORT}"
    blackbox = (f"blackbox-exporter:{EXPORTER_PORTS['blackbox-exporter']}", BLACKBOX_MODULE, probe_url(settings))
    return render_prometheus_yml(
        API_ALIAS,
        API_PORT,
        settings.monitoring.scrape_interval_seconds,
        targets=targets,
        blackbox=blackbox,
        alertmanager=f"{ALERTMANAGER_ALIAS}:{ALERTMANAGER_PORT}",
        rule_files=[PROMETHEUS_RULES],
    )


def alert_rules(settings: Settings) -> str:
    return render_alert_rules(
        RuleParams(
            error_ratio_percent=settings.alerts.error_ratio_percent,
            min_free_gb=settings.preflight.min_free_gb,
            acme_renew_days=ACME_RENEW_DAYS if settings.tls.mode == "acme" else None,
        )
    )


# Explicit rather than the image's CMD: the same flags then hold for prom/prometheus and
# Debian's package (whose built-in defaults differ), see `prometheus --help`.
PROMETHEUS_COMMAND = [
    f"--config.file={PROMETHEUS_CONF}",
    "--storage.tsdb.path=/prometheus",
    "--web.listen-address=0.0.0.0:9090",
]


@dataclass(frozen=True)
class MonitoringArgs:
    settings: Settings
    network_name: pulumi.Input[str]
    prometheus_volume: pulumi.Input[str]
    grafana_volume: pulumi.Input[str]
    grafana_password: pulumi.Input[str]
    # Runs first: the preflight checks.
    wait_for: Sequence[pulumi.Resource] = ()


class Monitoring(pulumi.ComponentResource):
    container_names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:monitoring:Monitoring", name, None, opts)
        settings = args.settings
        mon = settings.monitoring
        child = pulumi.ResourceOptions(parent=self)
        network = [docker.ContainerNetworksAdvancedArgs(name=args.network_name, aliases=[PROMETHEUS_ALIAS])]
        prom_image = docker.RemoteImage(
            f"{name}-prometheus-image", name=mon.prometheus_image, keep_locally=True, opts=child
        )
        prometheus = docker.Container(
            f"{name}-prometheus",
            name=f"{settings.name_prefix}-prometheus",
            image=prom_image.image_id,
            command=PROMETHEUS_COMMAND,
            uploads=[
                docker.ContainerUploadArgs(file=PROMETHEUS_CONF, content=prometheus_config(settings)),
                docker.ContainerUploadArgs(file=PROMETHEUS_RULES, content=alert_rules(settings)),
            ],
            # Monitoring UIs stay on loopback; reach them through an SSH tunnel.
            ports=[docker.ContainerPortArgs(internal=9090, external=mon.prometheus_port, ip="127.0.0.1")],
            mounts=[docker.ContainerMountArgs(target="/prometheus", type="volume", source=args.prometheus_volume)],
            healthcheck=healthcheck(["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9090/-/ready"]),
            networks_advanced=network,
            **managed_container(settings, "prometheus", memory_mb=MEMORY_MB),
            opts=container_options(self, fixed_name=True, depends_on=args.wait_for),
        )
        grafana_image = docker.RemoteImage(
            f"{name}-grafana-image", name=mon.grafana_image, keep_locally=True, opts=child
        )
        grafana = docker.Container(
            f"{name}-grafana",
            name=f"{settings.name_prefix}-grafana",
            image=grafana_image.image_id,
            envs=[
                "GF_SECURITY_ADMIN_USER=admin",
                f"GF_SECURITY_ADMIN_PASSWORD__FILE={GRAFANA_PASSWORD_FILE}",
                "GF_USERS_ALLOW_SIGN_UP=false",
            ],
            uploads=[
                docker.ContainerUploadArgs(
                    file=GRAFANA_PASSWORD_FILE,
                    content=pulumi.Output.secret(args.grafana_password),
                    permissions="0640",
                ),
                docker.ContainerUploadArgs(
                    file=GRAFANA_DATASOURCE,
                    content=render_grafana_datasource(f"http://{PROMETHEUS_ALIAS}:9090"),
                ),
                docker.ContainerUploadArgs(
                    file=GRAFANA_DASHBOARDS, content=render_dashboard_provider(GRAFANA_DASHBOARD_DIR)
                ),
                docker.ContainerUploadArgs(
                    file=f"{GRAFANA_DASHBOARD_DIR}/catalogizer.json", content=render_dashboard()
                ),
            ],
            ports=[docker.ContainerPortArgs(internal=3000, external=mon.grafana_port, ip="127.0.0.1")],
            mounts=[docker.ContainerMountArgs(target="/var/lib/grafana", type="volume", source=args.grafana_volume)],
            healthcheck=healthcheck(["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:3000/api/health"]),
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name)],
            **managed_container(settings, "grafana", memory_mb=MEMORY_MB),
            opts=container_options(self, fixed_name=True, depends_on=[prometheus, *args.wait_for]),
        )
        self.container_names = {"prometheus": prometheus.name, "grafana": grafana.name}
        self.register_outputs(dict(self.container_names))
