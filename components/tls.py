"""TLS material for nginx: a self-signed pair (also ACME's bootstrap), the operator's files, or nothing."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import pulumi
import pulumi_tls as tls

from settings import Settings

SELF_SIGNED_VALIDITY_HOURS = 365 * 24
# Replaced on the first `pulumi up` inside the last 30 days, long before browsers complain.
SELF_SIGNED_EARLY_RENEWAL_HOURS = 30 * 24
# An operator's certificate this close to expiry gets a warning on every `pulumi up`.
EXPIRY_WARNING_DAYS = 30


@dataclass(frozen=True)
class TlsArgs:
    settings: Settings


class Tls(pulumi.ComponentResource):
    """``cert_pem``/``key_pem``/``expires_at`` are None when TLS is off."""

    cert_pem: pulumi.Output[str] | None
    key_pem: pulumi.Output[str] | None
    expires_at: pulumi.Output[str] | None

    def __init__(self, name: str, args: TlsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:security:Tls", name, None, opts)
        settings = args.settings
        mode = settings.tls.mode
        self.cert_pem = self.key_pem = self.expires_at = None
        # acme: the same pair bootstraps nginx until the sidecar's first certificate (components/acme.py).
        if mode in ("selfSigned", "acme"):
            key = tls.PrivateKey(
                f"{name}-key",
                algorithm="ECDSA",
                ecdsa_curve="P256",
                opts=pulumi.ResourceOptions(parent=self),
            )
            dns_names = list(dict.fromkeys([settings.domain, "localhost"]))
            cert = tls.SelfSignedCert(
                f"{name}-cert",
                private_key_pem=key.private_key_pem,
                subject=tls.SelfSignedCertSubjectArgs(common_name=settings.domain, organization="Catalogizer"),
                dns_names=dns_names,
                ip_addresses=["127.0.0.1"],
                validity_period_hours=SELF_SIGNED_VALIDITY_HOURS,
                early_renewal_hours=SELF_SIGNED_EARLY_RENEWAL_HOURS,
                allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.cert_pem = cert.cert_pem
            self.key_pem = pulumi.Output.secret(key.private_key_pem)
            self.expires_at = cert.validity_end_time
        elif mode == "files":
            material = settings.tls
            assert material.cert_pem and material.key_pem and material.not_after
            days_left = (material.not_after - datetime.datetime.now(datetime.UTC)).days
            if days_left < EXPIRY_WARNING_DAYS:
                pulumi.log.warn(
                    f"catalogizer:tls.certFile: the certificate in {material.cert_file} expires on "
                    f"{material.not_after:%Y-%m-%d} (in {days_left} days); renew it and run `pulumi up` again.",
                    resource=self,
                )
            self.cert_pem = pulumi.Output.from_input(material.cert_pem)
            self.key_pem = pulumi.Output.secret(material.key_pem)
            self.expires_at = pulumi.Output.from_input(material.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.register_outputs({"cert_pem": self.cert_pem, "expires_at": self.expires_at})
