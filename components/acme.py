"""Let's Encrypt (any ACME server): a sidecar that obtains and renews nginx's certificate.

nginx starts on the bootstrap certificate (components/tls.py, seeded by the proxy hook into
the `acme-certs` volume); the `acme-issue` hook then has the sidecar obtain the real one
through nginx's own HTTP-01 path and apply it by reload, and `pulumi up` goes on only when
nginx serves it. Afterwards the sidecar renews on its own (scripts/acme_client.py).

Volumes: `acme-data` (lego's account key and certificates; the sidecar's alone, protected),
`acme-certs` (the served chain and key in slots a/b; nginx reads it), `acme-challenge` (the
HTTP-01 webroot; nginx serves it at /.well-known/acme-challenge/).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.container_defaults import container_options, healthcheck, managed_container, sidecar_image
from components.hook_support import PROJECT_DIR, docker_env, exported_summary, hook_command
from settings import Settings

DOCKERFILE = PROJECT_DIR / "dockerfiles" / "acme" / "Dockerfile"
# Mounted at the same path in nginx (read-only) and the sidecar: the paths in nginx.conf
# and in the sidecar's `nginx -t` are the same files.
CERTS_DIR = "/etc/nginx/acme-certs"
SERVED_CERT = f"{CERTS_DIR}/current/fullchain.pem"
SERVED_KEY = f"{CERTS_DIR}/current/key.pem"
# rendering/nginx_site.py's acme_webroot: the folder nginx serves the challenge from.
WEBROOT = "/var/www/acme"
DATA_DIR = "/var/lib/catalogizer-acme"
# Twice a day, renewing 30 days ahead: Let's Encrypt's own advice for clients
# (letsencrypt.org/docs/integration-guide), and certbot's and lego's renewal default.
CHECK_SECONDS = 12 * 3600
RENEW_DAYS = 30
MEMORY_MB = 128
SUMMARY_KEYS = ("status", "renewed", "asked", "notAfter", "serial", "sha256")
VOLUME_ROLES = ("acme-data", "acme-certs", "acme-challenge")


def sidecar_env(settings: Settings) -> list[str]:
    """The sidecar's environment: nothing secret (the account key is made inside, on its volume)."""
    acme = settings.tls.acme
    assert acme is not None
    env = [
        f"ACME_DOMAIN={settings.domain}",
        f"ACME_EMAIL={acme.email}",
        f"ACME_SERVER={acme.server}",
        f"ACME_PATH={DATA_DIR}",
        f"ACME_CERTS={CERTS_DIR}",
        f"ACME_WEBROOT={WEBROOT}",
        f"ACME_RENEW_DAYS={RENEW_DAYS}",
        f"ACME_CHECK_SECONDS={CHECK_SECONDS}",
        # nginx's own port inside the shared network namespace (components/proxy.py HTTPS_PORT).
        "ACME_HTTPS_PORT=443",
    ]
    if acme.ca_bundle_pem is not None:
        env.append(f"ACME_CA_BUNDLE_PEM={acme.ca_bundle_pem}")
    return env


@dataclass(frozen=True)
class AcmeArgs:
    settings: Settings
    # The sidecar joins this container's network and PID namespaces.
    nginx: docker.Container
    volumes: dict[str, pulumi.Output[str]]
    wait_for: Sequence[pulumi.Resource] = ()


class Acme(pulumi.ComponentResource):
    container: docker.Container
    issue: command.local.Command
    summary: pulumi.Output[dict[str, object]]
    cert_pem: pulumi.Output[str]
    expires_at: pulumi.Output[str]

    def __init__(self, name: str, args: AcmeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:security:Acme", name, None, opts)
        settings = args.settings
        # On the stack's nginx image: the sidecar's `nginx -t` is the serving nginx's own.
        image = sidecar_image(settings, f"{name}-image", "acme", DOCKERFILE, settings.proxy.image, parent=self)
        # The ID, not the name: a replaced nginx has a new one, and pid_mode/network_mode are
        # ForceNew (terraform-provider-docker resource_docker_container.go), so the sidecar
        # follows it instead of pointing at namespaces that are gone.
        joined = args.nginx.id.apply(lambda nginx_id: f"container:{nginx_id}")
        self.container = docker.Container(
            f"{name}-container",
            name=f"{settings.name_prefix}-acme",
            image=image.repo_digest,
            envs=sidecar_env(settings),
            # nginx's network namespace: lego reaches the ACME server the way nginx is reached,
            # and the confirmation handshake goes to 127.0.0.1:443, nginx itself. Its PID
            # namespace: PID 1 is nginx's master, which the sidecar (root, as nginx's master
            # is) sends SIGHUP after a renewal; no Docker socket anywhere. When nginx restarts,
            # its PID namespace ends, the kernel kills the sidecar with it, and its restart policy
            # brings it back in nginx's new namespaces (checked on Docker 20.10: same net namespace
            # as nginx's PID 1 after `docker restart` of nginx).
            network_mode=joined,
            pid_mode=joined,
            mounts=[
                docker.ContainerMountArgs(target=DATA_DIR, type="volume", source=args.volumes["acme-data"]),
                docker.ContainerMountArgs(target=CERTS_DIR, type="volume", source=args.volumes["acme-certs"]),
                docker.ContainerMountArgs(target=WEBROOT, type="volume", source=args.volumes["acme-challenge"]),
            ],
            # Every 10 s: the first check (and so `wait`) passes 10 s after the start, not 30.
            healthcheck=healthcheck(["CMD", "python3", "/app/acme_client.py", "--check"], interval=10, retries=3),
            **managed_container(settings, "acme", memory_mb=MEMORY_MB),
            opts=container_options(self, fixed_name=True, depends_on=[args.nginx, *args.wait_for]),
        )
        self.issue = hook_command(
            f"{name}-issue",
            "acme_issue.py",
            environment={"ACME_CONTAINER": self.container.name, **docker_env(settings)},
            # Every `pulumi up` (a new value each run): the served certificate changes outside
            # Pulumi (renewals), and only so do tlsCertificate/tlsExpiry show the live one. When
            # nothing is due the sidecar asks no ACME server (scripts/acme_client.py attempt).
            triggers=[self.container.id, uuid.uuid4().hex],
            parent=self,
            depends_on=[self.container],
        )
        self.summary = exported_summary(self.issue.stdout, SUMMARY_KEYS)
        self.cert_pem = exported_summary(self.issue.stdout, ("certificate",)).apply(
            lambda picked: str(picked.get("certificate", ""))
        )
        self.expires_at = self.summary.apply(lambda picked: str(picked.get("notAfter", "")))
        self.register_outputs({"summary": self.summary, "container_name": self.container.name})
