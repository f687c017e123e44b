"""Issue 13 rehearsed: `pulumi up` with tls.mode=acme against Pebble, on the real engine.

The rehearsal stack (Pulumi.rehearsal.yaml) with tls.mode=acme, acmeServer = a Pebble of the
test's own (Debian's package, tests/images/pebble) and acmeCaBundle = Pebble's HTTPS
certificate plus its issuing root. Pebble runs on a network of the test's; once the program
has created its front network, the test attaches Pebble there too (alias `pebble`), the
network nginx and, through nginx's namespace, the sidecar are on. Pebble's VA fetches
http://<domain>:80/.well-known/acme-challenge/<token> with the system resolver (pebble
va/va.go fetchHTTP and resolveIP, no -dnsserver): Docker's DNS on that network, which knows
the nginx container by its name.

1. domain = a name no DNS knows: `up` fails naming the ACME server's DNS problem; nginx
   keeps serving the bootstrap certificate.
2. domain = the nginx container's name: `up` succeeds; the served chain verifies against
   Pebble's root alone; tlsCertificate / tlsExpiry are the served certificate.
3. acmeServer = an address where no ACME server answers: `up` fails naming it; the
   certificate of step 2 still serves.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator

import docker.errors
import pytest
from docker_harness import DockerScope, docker_client
from images.ensure import ensure_images
from pebble_server import ALIAS, DIRECTORY, PEBBLE_PORT, Pebble, start_pebble
from rehearsal_engine import DeploymentFailed
from rehearsal_stack import Stack, say

UNRESOLVABLE = "catalog.rehearsal.test"


class Attacher:
    """Attaches Pebble to the stack's front network as soon as the program has created it."""

    def __init__(self, scope: DockerScope, pebble: Pebble) -> None:
        self.scope = scope
        self.pebble = pebble
        self.attached: str | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def attach_when_created(self, network: str) -> None:
        def watch() -> None:
            deadline = time.monotonic() + 600
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    self.scope.client.networks.get(network).connect(self.pebble.container, aliases=[ALIAS])
                    self.attached = network
                    return
                except docker.errors.NotFound:
                    time.sleep(0.2)

        self._watcher = threading.Thread(target=watch, daemon=True)
        self._watcher.start()

    def detach(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        if self.attached:
            try:
                self.scope.client.networks.get(self.attached).disconnect(self.pebble.container, force=True)
            except docker.errors.APIError as exc:
                sys.stderr.write(f"[rehearsal] acme: cannot detach pebble: {exc}\n")


@pytest.fixture(scope="module")
def acme_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    client = docker_client()
    ensure_images()
    with DockerScope(client, test_name=request.node.nodeid) as scope:
        root = tmp_path_factory.mktemp("acme")
        # nginx's port 80 inside the network (components/proxy.py HTTP_PORT).
        pebble = start_pebble(scope, scope.network("pebble-net"), root / "pebble", 80)
        attacher = Attacher(scope, pebble)
        stack = Stack(scope, root, request.config)
        bundle = root / "acme-ca.pem"
        bundle.write_text(pebble.tls.cert_pem + pebble.root())
        stack.overrides["api"]["replicas"] = 1
        stack.overrides["tls"] = {
            "mode": "acme",
            "acmeEmail": "ops@example.com",
            "acmeServer": DIRECTORY,
            "acmeCaBundle": str(bundle),
        }
        stack.notes["pebble"], stack.notes["attacher"] = pebble, attacher
        attacher.attach_when_created(f"{stack.prefix}-front")
        try:
            yield stack
        finally:
            if not stack.results.get("acme"):
                say(request.config, "[rehearsal] acme failed; the engine's last steps:")
                for line in stack.log_lines[-120:]:
                    say(request.config, "  " + line)
            attacher.detach()
            problems = stack.remove_everything()
            if problems:
                sys.stderr.write("[rehearsal] acme teardown: " + "; ".join(problems) + "\n")
    client.close()


def served(stack: Stack, name: str, ca_pem: str | None) -> tuple[bytes, int]:
    """The leaf nginx presents for `name` and /health's status; verified against `ca_pem` when given."""
    if ca_pem is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cadata=ca_pem)
    with (
        socket.create_connection(("127.0.0.1", stack.https_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        leaf = tls.getpeercert(binary_form=True)
        assert leaf is not None
        conn = http.client.HTTPConnection(name, stack.https_port, timeout=10)
        conn.sock = tls
        conn.request("GET", "/health")
        return leaf, conn.getresponse().status


def test_acme_issuance_and_failures(acme_stack: Stack) -> None:
    stack = acme_stack
    pebble: Pebble = stack.notes["pebble"]
    root = pebble.root()
    started = time.monotonic()

    # 1. A name no DNS knows: the challenge fails, `up` names the ACME server's DNS problem.
    stack.plain["domain"] = UNRESOLVABLE
    stack.public_name = UNRESOLVABLE
    with pytest.raises(DeploymentFailed) as caught:
        stack.up()
    failures = [f for f in caught.value.failures if "acme-issue" in f]
    assert len(failures) == 1, caught.value.failures
    assert "the ACME server did not issue a certificate for catalog.rehearsal.test" in failures[0]
    # Pebble's VA wraps any failed lookup of the name this way (va/va.go fetchHTTP's DialContext),
    # whatever the resolver answered (NXDOMAIN here; a timeout on a host without upstream DNS).
    assert "urn:ietf:params:acme:error:" in failures[0], failures[0]
    assert f'error occurred while resolving URL "http://{UNRESOLVABLE}:80/' in failures[0], failures[0]
    assert stack.notes["attacher"].attached == f"{stack.prefix}-front"
    # The health check never ran; nginx serves the bootstrap certificate, which Pebble did not sign.
    bootstrap, status = served(stack, UNRESOLVABLE, None)
    assert status == 200
    with pytest.raises(ssl.SSLCertVerificationError):
        served(stack, UNRESOLVABLE, root)
    reason = next(line for line in failures[0].splitlines() if "urn:ietf:params:acme:error:" in line)[:200]
    say(stack.pytest_config, f"[rehearsal] acme failed challenge: {reason}")

    # 2. The nginx container's name, which Docker's DNS resolves on the front network: issued.
    name = f"{stack.prefix}-nginx"
    stack.plain["domain"] = name
    stack.public_name = name
    nginx_before = stack.scope.client.containers.get(name).id
    stack.up()
    leaf, status = served(stack, name, root)  # raises unless the chain verifies against Pebble's root alone
    assert status == 200 and leaf != bootstrap
    # tlsCertificate is the served chain (leaf first, then Pebble's intermediate).
    first_pem = stack.outputs["tlsCertificate"].split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    assert ssl.PEM_cert_to_DER_cert(first_pem) == leaf
    assert stack.outputs["acme"]["sha256"] == hashlib.sha256(leaf).hexdigest()
    assert stack.outputs["tlsExpiry"] == stack.outputs["acme"]["notAfter"]
    assert stack.outputs["health"]["status"] == "healthy", stack.outputs["health"]
    sidecar = stack.scope.client.containers.get(stack.outputs["containers"]["acme"])
    nginx = stack.scope.client.containers.get(name)
    assert sidecar.attrs["HostConfig"]["PidMode"] == f"container:{nginx.id}"
    assert sidecar.attrs["HostConfig"]["NetworkMode"] == f"container:{nginx.id}"
    assert sidecar.attrs["State"]["Health"]["Status"] == "healthy"

    # 3. An ACME server that does not answer: `up` fails naming it; step 2's certificate serves on.
    stack.overrides["tls"]["acmeServer"] = f"https://pebble:{PEBBLE_PORT + 1}/dir"
    with pytest.raises(DeploymentFailed) as caught:
        stack.up()
    failures = [f for f in caught.value.failures if "acme-issue" in f]
    assert len(failures) == 1, caught.value.failures
    assert f"get directory at 'https://pebble:{PEBBLE_PORT + 1}/dir'" in failures[0], failures[0]
    assert "The certificate nginx served before still serves." in failures[0]
    assert served(stack, name, root) == (leaf, 200)
    assert stack.scope.client.containers.get(name).id == nginx.id  # nginx never replaced
    seconds = time.monotonic() - started
    stack.results["acme"] = True
    stack.summary(
        "acme",
        seconds,
        f"challenge failure and unreachable server fail `up`, the served certificate unchanged; "
        f"issued by Pebble with nginx {'kept' if nginx_before == nginx.id else 'replaced'} on the domain change",
    )
