"""The public edge: nginx's ports and the TLS certificate it serves."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from settings.model import TLS_MODES, ProxySettings, TlsSettings
from settings.reader import ConfigError, Loader, port, resolve


def load_proxy(loader: Loader) -> ProxySettings:
    s = loader.section("proxy")
    image = s.text("image", "nginx:1.27-alpine")
    http_port = port(s, "httpPort", 80)
    https_port = port(s, "httpsPort", 443)
    assert image is not None and http_port is not None and https_port is not None
    return ProxySettings(image=image, http_port=http_port, https_port=https_port)


def load_tls(loader: Loader, app_env: str) -> TlsSettings:
    s = loader.section("tls")
    mode = s.choice("mode", "selfSigned", TLS_MODES)
    if mode == "off" and app_env == "production":
        raise ConfigError(
            f"{s.key}.mode: 'off' (plain HTTP) is refused for appEnv=production; "
            "use 'files' with your certificate or 'selfSigned'."
        )
    if mode != "files":
        for name in ("certFile", "keyFile"):
            if name in s.raw:
                raise ConfigError(f"{s.key}.{name}: only used with mode=files; remove it or set mode=files.")
        return TlsSettings(mode=mode, cert_file=None, key_file=None)
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
    )
