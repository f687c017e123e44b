"""Alertmanager: groups the stack's alerts and delivers them to the configured people.

Its configuration can hold secrets (the SMTP password, Slack webhook tokens), so it is
uploaded as a secret, mode 0600, owned by the user the image runs as (`nobody`, 65534, in
prom/alertmanager and in the Debian test image) and never passed on a command line. With
no receivers the alerts still show in its UI, published on 127.0.0.1 only.

Flags (alertmanager --help, 0.25 and 0.27): --config.file, --storage.path,
--web.external-url (the links in notifications), --cluster.listen-address="" (an empty
address turns the HA gossip off: one instance, nothing to peer with).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.container_defaults import container_options, healthcheck, managed_container
from rendering.alerts import AlertRoute, EmailReceiver, render_alertmanager_yml
from settings import Settings

CONF_PATH = "/etc/alertmanager/alertmanager.yml"
DATA_DIR = "/alertmanager"
NETWORK_ALIAS = "alertmanager"
PORT = 9093
RUNS_AS = "65534"
MEMORY_MB = 128


def alert_route(settings: Settings, smtp_password: str | None) -> AlertRoute:
    """The receivers and timings from the settings. Grouping waits follow the scrape
    interval, so a short interval (tests) also shortens the time to a notification."""
    alerts = settings.alerts
    email = None
    if alerts.email is not None:
        email = EmailReceiver(
            to=alerts.email.to,
            sender=alerts.email.sender,
            smarthost=alerts.email.smarthost,
            username=alerts.email.username,
            password=smtp_password if alerts.email.username is not None else None,
        )
    interval = settings.monitoring.scrape_interval_seconds
    return AlertRoute(
        webhook_urls=alerts.webhook_urls,
        email=email,
        repeat_interval_hours=alerts.repeat_interval_hours,
        group_wait_seconds=2 * interval,
        group_interval_seconds=4 * interval,
    )


def alertmanager_command(settings: Settings) -> list[str]:
    return [
        f"--config.file={CONF_PATH}",
        f"--storage.path={DATA_DIR}",
        f"--web.external-url=http://127.0.0.1:{settings.monitoring.alertmanager_port}/",
        "--cluster.listen-address=",
    ]


@dataclass(frozen=True)
class AlertmanagerArgs:
    settings: Settings
    network_name: pulumi.Input[str]
    # catalogizer:alertsSmtpPassword, when e-mail with authentication is configured.
    smtp_password: pulumi.Input[str] | None = None
    wait_for: Sequence[pulumi.Resource] = ()


class Alertmanager(pulumi.ComponentResource):
    container: docker.Container

    def __init__(self, name: str, args: AlertmanagerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:monitoring:Alertmanager", name, None, opts)
        settings = args.settings
        mon = settings.monitoring
        image = docker.RemoteImage(
            f"{name}-image", name=mon.alertmanager_image, keep_locally=True, opts=pulumi.ResourceOptions(parent=self)
        )
        password = pulumi.Output.secret(args.smtp_password if args.smtp_password is not None else "")
        content = pulumi.Output.secret(
            password.apply(lambda pw: render_alertmanager_yml(alert_route(settings, pw or None)))
        )
        self.container = docker.Container(
            f"{name}-container",
            name=f"{settings.name_prefix}-alertmanager",
            image=image.image_id,
            command=alertmanager_command(settings),
            uploads=[
                docker.ContainerUploadArgs(
                    file=CONF_PATH, content=content, owner=RUNS_AS, group=RUNS_AS, permissions="0600"
                )
            ],
            ports=[docker.ContainerPortArgs(internal=PORT, external=mon.alertmanager_port, ip="127.0.0.1")],
            healthcheck=healthcheck(["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{PORT}/-/ready"]),
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name, aliases=[NETWORK_ALIAS])],
            **managed_container(settings, "alertmanager", memory_mb=MEMORY_MB),
            opts=container_options(self, fixed_name=True, depends_on=args.wait_for),
        )
        self.register_outputs({"container_name": self.container.name})
