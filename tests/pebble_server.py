"""Pebble, Let's Encrypt's test ACME server (Debian's package, tests/images/pebble), for issue 13's tests.

Read from letsencrypt/pebble v2.4.0 (the version Debian bookworm packages):
- the config file's `httpPort` is the port its VA fetches HTTP-01 tokens from, at the
  identifier's name (va/va.go fetchHTTP), resolved by the system resolver when -dnsserver is
  unset (resolveIP): in a container, Docker's DNS of its networks;
- PEBBLE_VA_NOSLEEP=1 skips the random wait before each validation, PEBBLE_WFE_NONCEREJECT=0 the
  deliberate rejection of a share of good nonces (README, "Testing at full speed", "Invalid
  Anti-Replay Nonce Errors");
- its issuing root is made anew at each start and served at /roots/0 on the management port
  (README, "CA Root and Intermediate Certificates").
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from certs import CertPair, write_self_signed
from docker.models.containers import Container
from docker.models.networks import Network
from docker_harness import DockerScope
from ports import free_port

PEBBLE_DIR = Path(__file__).resolve().parent / "images" / "pebble"
PEBBLE_TAG = "catalogizer-test/pebble:bookworm"
PEBBLE_PORT, MANAGEMENT_PORT = 14000, 15000
# The alias it has on its networks: the ACME directory is https://pebble:14000/dir.
ALIAS = "pebble"
DIRECTORY = f"https://{ALIAS}:{PEBBLE_PORT}/dir"


@dataclass
class Pebble:
    container: Container
    # Its HTTPS certificate (for `pebble`): what an ACME client must trust to talk to it.
    tls: CertPair
    # Its management interface, published on 127.0.0.1.
    management_port: int

    def root(self, timeout: float = 30) -> str:
        """The root Pebble issues under (GET /roots/0), retried until it answers."""
        context = ssl.create_default_context(cadata=self.tls.cert_pem)
        context.check_hostname = False  # the certificate names `pebble`; the connection is to 127.0.0.1
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", self.management_port, context=context, timeout=5)
                conn.request("GET", "/roots/0")
                response = conn.getresponse()
                if response.status == 200:
                    return response.read().decode()
            except OSError:
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"Pebble's /roots/0 did not answer within {timeout:.0f}s")
            time.sleep(0.5)


def start_pebble(scope: DockerScope, network: Network, folder: Path, http_port: int) -> Pebble:
    """Builds the image (cached after the first time) and starts Pebble on `network` as `pebble`,
    validating HTTP-01 on `http_port`."""
    scope.client.images.build(path=str(PEBBLE_DIR), tag=PEBBLE_TAG, rm=True)
    tls = write_self_signed(folder, ALIAS, (ALIAS,))
    config = {
        "pebble": {
            "listenAddress": f"0.0.0.0:{PEBBLE_PORT}",
            "managementListenAddress": f"0.0.0.0:{MANAGEMENT_PORT}",
            "certificate": "/etc/pebble/cert.pem",
            "privateKey": "/etc/pebble/key.pem",
            "httpPort": http_port,
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    management_port = free_port()
    container = scope.container(
        PEBBLE_TAG,
        "pebble",
        network=network,
        aliases=[ALIAS],
        command=["-config", "/etc/pebble/config.json"],
        environment={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"},
        files={
            "/etc/pebble/config.json": json.dumps(config),
            "/etc/pebble/cert.pem": tls.cert_pem,
            "/etc/pebble/key.pem": tls.key_pem,
        },
        ports={MANAGEMENT_PORT: management_port},
    )
    return Pebble(container, tls, management_port)
