"""The public edge: nginx's ports and the TLS certificate it serves."""

from __future__ import annotations

import datetime
import re
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AuthorityInformationAccessOID

from settings.checks import check_image
from settings.model import TLS_MODES, AcmeSettings, ProxySettings, TlsSettings
from settings.reader import ConfigError, Loader, Section, cpus, port, resolve


def load_proxy(loader: Loader) -> ProxySettings:
    s = loader.section("proxy")
    image = s.text("image", "nginx:1.27-alpine")
    http_port = port(s, "httpPort", 80)
    https_port = port(s, "httpsPort", 443)
    assert image is not None and http_port is not None and https_port is not None
    check_image(f"{s.key}.image", image)
    return ProxySettings(image=image, http_port=http_port, https_port=https_port, cpus=cpus(s, "cpus", "0.5"))


# Let's Encrypt's ACME v2 directories (letsencrypt.org/docs/acme-protocol-updates and
# letsencrypt.org/docs/staging-environment); `staging` is a shortcut for the second.
LETSENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
ACME_KEYS = ("acmeEmail", "acmeServer", "acmeCaBundle")
FILES_KEYS = ("certFile", "keyFile")
# One @, a dotted domain, no spaces: what an ACME server accepts as a mailto: contact.
_EMAIL_RE = re.compile(r"^[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def load_tls(loader: Loader, app_env: str) -> TlsSettings:
    s = loader.section("tls")
    mode = s.choice("mode", "selfSigned", TLS_MODES)
    include_subdomains = s.boolean("hstsIncludeSubdomains", True)
    if app_env == "production" and mode not in ("acme", "files"):
        raise ConfigError(
            f"{s.key}.mode: {mode!r} is refused for appEnv=production, where browsers must trust the "
            "certificate; use 'acme' (Let's Encrypt, with tls.acmeEmail) or 'files' with your certificate."
        )
    _refuse_foreign_keys(s, mode)
    if mode == "acme":
        return TlsSettings(
            mode=mode, cert_file=None, key_file=None, hsts_include_subdomains=include_subdomains, acme=load_acme(s)
        )
    if mode != "files":
        return TlsSettings(mode=mode, cert_file=None, key_file=None, hsts_include_subdomains=include_subdomains)
    paths = {}
    contents = {}
    for name in ("certFile", "keyFile"):
        text = s.text(name, None)
        if text is None:
            example = "ssl/cert.pem" if name == "certFile" else "ssl/key.pem"
            raise ConfigError(
                f"{s.key}.{name}: required with mode=files; e.g. `pulumi config set --path '{s.key}.{name}' {example}`."
            )
        path = resolve(text)
        try:
            contents[name] = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"{s.key}.{name}: cannot read {path}: {exc.strerror}. Check the path and permissions."
            ) from None
        paths[name] = path
    try:
        cert = x509.load_pem_x509_certificates(contents["certFile"])[0]
    except ValueError:
        raise ConfigError(f"{s.key}.certFile: {paths['certFile']} is not a PEM certificate.") from None
    try:
        key = serialization.load_pem_private_key(contents["keyFile"], password=None)
    except (ValueError, TypeError):
        # The parser's message could quote key material, so it is not repeated here.
        raise ConfigError(f"{s.key}.keyFile: {paths['keyFile']} is not an unencrypted PEM private key.") from None
    public_der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*public_der) != cert.public_key().public_bytes(*public_der):
        raise ConfigError(
            f"{s.key}.keyFile: the key in {paths['keyFile']} does not match the certificate in "
            f"{paths['certFile']}; use the key the certificate was issued for."
        )
    not_after = cert.not_valid_after_utc
    if not_after <= datetime.datetime.now(datetime.UTC):
        raise ConfigError(
            f"{s.key}.certFile: the certificate in {paths['certFile']} expired on {not_after:%Y-%m-%d}; renew it."
        )
    return TlsSettings(
        mode=mode,
        cert_file=paths["certFile"],
        key_file=paths["keyFile"],
        cert_pem=contents["certFile"].decode(),
        key_pem=contents["keyFile"].decode(),
        not_after=not_after,
        hsts_include_subdomains=include_subdomains,
        ocsp_responder=_names_ocsp_responder(cert),
    )


def _names_ocsp_responder(cert: x509.Certificate) -> bool:
    """True when the certificate's Authority Information Access lists an OCSP URL (RFC 5280
    4.2.2.1), the only case in which nginx's ssl_stapling has a responder to ask."""
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return False
    return any(d.access_method == AuthorityInformationAccessOID.OCSP for d in access)


def _refuse_foreign_keys(s: Section, mode: str) -> None:
    for keys, owner in ((FILES_KEYS, "files"), (ACME_KEYS, "acme")):
        for name in keys:
            if name in s.raw and mode != owner:
                raise ConfigError(f"{s.key}.{name}: only used with mode={owner}; remove it or set mode={owner}.")


def load_acme(s: Section) -> AcmeSettings:
    email = s.text("acmeEmail", None)
    if email is None:
        raise ConfigError(
            f"{s.key}.acmeEmail: required with mode=acme (the ACME account's contact for expiry notices); "
            f"e.g. `pulumi config set --path '{s.key}.acmeEmail' ops@example.com`."
        )
    if not _EMAIL_RE.match(email):
        raise ConfigError(f"{s.key}.acmeEmail: {email!r} is not an e-mail address; use e.g. ops@example.com.")
    server = s.text("acmeServer", LETSENCRYPT_PRODUCTION)
    assert server is not None
    if server == "staging":
        server = LETSENCRYPT_STAGING
    parsed = urllib.parse.urlsplit(server)
    # RFC 8555 section 6.1: ACME runs over HTTPS only.
    if parsed.scheme != "https" or not parsed.hostname or parsed.username or parsed.fragment:
        raise ConfigError(
            f"{s.key}.acmeServer: {server!r} is not an ACME directory URL; use an https:// URL "
            f"(e.g. {LETSENCRYPT_PRODUCTION}), 'staging' for Let's Encrypt's staging, or remove it for production."
        )
    bundle_text = s.text("acmeCaBundle", None)
    if bundle_text is None:
        return AcmeSettings(email=email, server=server)
    path = resolve(bundle_text)
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{s.key}.acmeCaBundle: cannot read {path}: {exc.strerror}. Check the path and permissions."
        ) from None
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise ConfigError(
            f"{s.key}.acmeCaBundle: {path} is not a PEM certificate bundle; give the private ACME server's CA "
            "certificate(s) in PEM."
        ) from None
    return AcmeSettings(email=email, server=server, ca_bundle_file=path, ca_bundle_pem=pem.decode())


def check_acme_domain(domain: str, tls: TlsSettings) -> None:
    """Let's Encrypt issues only for public DNS names (no bare IP addresses, no single labels
    such as localhost: letsencrypt.org/docs/certificates-for-localhost); a private ACME server
    decides for itself."""
    if tls.acme is None or tls.acme.server not in (LETSENCRYPT_PRODUCTION, LETSENCRYPT_STAGING):
        return
    if "." not in domain or re.fullmatch(r"[0-9.]+", domain) or domain.endswith(".localhost"):
        raise ConfigError(
            f"catalogizer:domain: {domain!r} cannot get a certificate from Let's Encrypt, which needs a public "
            "DNS name pointing at this host (e.g. catalog.example.com); set catalogizer:domain, or point "
            "tls.acmeServer at a private ACME server."
        )
