"""pulumi-random and pulumi-tls: the generated secrets and the self-signed certificate."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
import string
from collections.abc import Mapping
from typing import Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from engine_base import Change, Diff, Inputs, Provider, Refused, RehearsalError, Spec
from engine_base import to_int as _int


class RandomPasswordProvider(Provider):
    token = "random:index/randomPassword:RandomPassword"
    spec = Spec({"length", "special", "upper", "lower", "numeric", "minLower", "minUpper", "minNumeric", "minSpecial"})
    SPECIAL = "!@#$%&*()-_=+[]{}<>:?"

    def create(self, name: str, inputs: Inputs) -> Change:
        length = _int(inputs["length"])
        sets = []
        for flag, minimum, chars in (
            ("lower", "minLower", string.ascii_lowercase),
            ("upper", "minUpper", string.ascii_uppercase),
            ("numeric", "minNumeric", string.digits),
            ("special", "minSpecial", self.SPECIAL),
        ):
            if inputs.get(flag, True) is not False:
                sets.append((chars, _int(inputs.get(minimum))))
        rng = secrets.SystemRandom()
        chars = [rng.choice(cs) for cs, minimum in sets for _ in range(minimum)]
        if len(chars) > length:
            raise RehearsalError(f"{name}: the minimum counts add up to more than length {length}")
        pool = "".join(cs for cs, _ in sets)
        chars += [rng.choice(pool) for _ in range(length - len(chars))]
        rng.shuffle(chars)
        outputs = {
            "length": length,
            "lower": inputs.get("lower", True),
            "upper": inputs.get("upper", True),
            "numeric": inputs.get("numeric", True),
            "special": inputs.get("special", True),
            **inputs,
            "result": "".join(chars),
        }
        return Change("none", outputs)

    def delete(self, entry: Mapping[str, Any]) -> None:
        pass


class PrivateKeyProvider(Provider):
    token = "tls:index/privateKey:PrivateKey"
    spec = Spec({"algorithm", "ecdsaCurve", "rsaBits"})
    CURVES: ClassVar[Any] = {"P224": ec.SECP224R1, "P256": ec.SECP256R1, "P384": ec.SECP384R1, "P521": ec.SECP521R1}

    def create(self, name: str, inputs: Inputs) -> Change:
        algorithm = inputs["algorithm"]
        traditional = serialization.PrivateFormat.TraditionalOpenSSL
        if algorithm == "ECDSA":
            key: Any = ec.generate_private_key(self.CURVES[inputs.get("ecdsaCurve") or "P224"]())
        elif algorithm == "RSA":
            key = rsa.generate_private_key(public_exponent=65537, key_size=_int(inputs.get("rsaBits"), 2048))
        elif algorithm == "ED25519":
            key, traditional = ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.PKCS8
        else:
            raise Refused(f"{name}: input 'algorithm' value {algorithm!r} is not implemented")
        pem = serialization.Encoding.PEM
        none = serialization.NoEncryption()
        public_pem = key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        outputs = {
            **inputs,
            "privateKeyPem": key.private_bytes(pem, traditional, none).decode(),
            "privateKeyPemPkcs8": key.private_bytes(pem, serialization.PrivateFormat.PKCS8, none).decode(),
            "publicKeyPem": public_pem,
        }
        return Change(hashlib.sha1(public_pem.encode()).hexdigest(), outputs)

    def delete(self, entry: Mapping[str, Any]) -> None:
        pass


class SelfSignedCertProvider(Provider):
    token = "tls:index/selfSignedCert:SelfSignedCert"
    spec = Spec(
        {
            "privateKeyPem",
            "subject",
            "dnsNames",
            "ipAddresses",
            "validityPeriodHours",
            "earlyRenewalHours",
            "allowedUses",
            "isCaCertificate",
        },
        {"subject": Spec({"commonName", "organization", "organizationalUnit", "country", "locality", "province"})},
    )
    SUBJECT: ClassVar[Any] = {
        "commonName": NameOID.COMMON_NAME,
        "organization": NameOID.ORGANIZATION_NAME,
        "organizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "country": NameOID.COUNTRY_NAME,
        "locality": NameOID.LOCALITY_NAME,
        "province": NameOID.STATE_OR_PROVINCE_NAME,
    }
    KEY_USAGE: ClassVar[Any] = {
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "cert_signing",
        "crl_signing",
        "encipher_only",
        "decipher_only",
    }
    KEY_USAGE_ARG: ClassVar[Any] = {"cert_signing": "key_cert_sign", "crl_signing": "crl_sign"}
    EXT_USAGE: ClassVar[Any] = {
        "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
        "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
        "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
        "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
        "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
        "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    }

    def diff(self, old: Mapping[str, Any], inputs: Inputs) -> Diff:
        # hashicorp/terraform-provider-tls internal/provider, modifyPlanIfCertificateReadyForRenewal:
        # inside the early-renewal window the plan marks
        # `ready_for_renewal` as changed and requiring replacement (every input is RequiresReplace).
        result = super().diff(old, inputs)
        end = dt.datetime.strptime(old["outputs"]["validityEndTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        early = dt.timedelta(hours=_int(inputs.get("earlyRenewalHours")))
        if dt.datetime.now(dt.UTC) >= end - early:
            result.changed.add("readyForRenewal")
            result.replace_keys.add("readyForRenewal")
        return result

    def create(self, name: str, inputs: Inputs) -> Change:
        key: Any = serialization.load_pem_private_key(inputs["privateKeyPem"].encode(), password=None)
        subject = x509.Name(
            [x509.NameAttribute(self.SUBJECT[k], v) for k, v in (inputs.get("subject") or {}).items() if v]
        )
        start = dt.datetime.now(dt.UTC).replace(microsecond=0)
        end = start + dt.timedelta(hours=_int(inputs["validityPeriodHours"]))
        uses = list(inputs.get("allowedUses") or [])
        unknown = [u for u in uses if u not in self.KEY_USAGE and u not in self.EXT_USAGE]
        if unknown:
            raise Refused(f"{name}: input 'allowedUses' value {unknown[0]!r} is not implemented")
        is_ca = bool(inputs.get("isCaCertificate"))
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        )
        usage = {self.KEY_USAGE_ARG.get(u, u): u in uses for u in self.KEY_USAGE}
        if any(usage.values()):
            builder = builder.add_extension(x509.KeyUsage(**usage), critical=True)
        ext = [self.EXT_USAGE[u] for u in uses if u in self.EXT_USAGE]
        if ext:
            builder = builder.add_extension(x509.ExtendedKeyUsage(ext), critical=False)
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in inputs.get("dnsNames") or []]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in inputs.get("ipAddresses") or []]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        cert = builder.sign(key, algorithm)
        outputs = {
            **inputs,
            "certPem": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "validityStartTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "validityEndTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "readyForRenewal": False,
        }
        return Change(str(cert.serial_number), outputs)

    def delete(self, entry: Mapping[str, Any]) -> None:
        pass
