"""A 3-node Docker Swarm on this machine, for the swarm tests: built, checked and torn down.

Each node is its own Docker engine (Debian's dockerd) in its own network namespace with its own
data root, exec root and socket, joined by veth pairs to a bridge the run creates. A registry
(Debian's docker-registry) listens on the bridge's address. Node 1 is the manager and carries
catalogizer.edge=true, node 2 carries catalogizer.data=true, node 3 is a plain worker.

Everything is named after a random run id (`cz14<4 hex>`), so nothing clashes with a leftover
or a parallel run, and `down()` removes all of it whatever state `up()` reached: each engine
leaves the swarm and is stopped by its pid file, then the namespaces, the bridge, the FORWARD
rule, the registry and the roots go. Every wait is bounded.

Why namespaces and not containers: `ip netns` gives each engine its own addresses without
touching the main engine. `nsenter --net=` keeps the host's /sys mounted (`ip netns exec`
remounts /sys and dockerd then stops with "Devices cgroup isn't mounted").
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

EDGE_LABEL = "catalogizer.edge"
DATA_LABEL = "catalogizer.data"
REGISTRY_PORT = 5000
# Each bounded wait of the harness; the whole `up()` stays well under a minute on two cores.
ENGINE_START_SECONDS = 60
NODE_READY_SECONDS = 60


class ClusterError(RuntimeError):
    """The cluster could not be built; the message says which step and shows its output."""


def run(argv: Sequence[str], *, timeout: float = 60, check: bool = True, **kw: object) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False, **kw)  # type: ignore[call-overload]
    if check and result.returncode != 0:
        output = result.stderr.strip() or result.stdout.strip()
        raise ClusterError(f"{' '.join(argv)} failed ({result.returncode}): {output}")
    return result


def wait_until(what: str, probe: Callable[[], bool], seconds: float, interval: float = 0.5) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if probe():
            return time.monotonic() - started
        time.sleep(interval)
    raise ClusterError(f"{what}: not within {seconds:.0f}s")


def kernel_has_ipsec_esp() -> bool:
    """An encrypted overlay carries its VXLAN traffic in IPsec ESP with rfc4106(gcm(aes)) (moby
    libnetwork drivers/overlay/encryption.go, buildAeadAlgo). Asks the kernel directly, in a
    namespace of its own: can it hold such a transport-mode state?"""
    probe = f"cz14esp{secrets.token_hex(2)}"
    run(["ip", "netns", "add", probe])
    try:
        result = run(
            [
                "ip",
                "netns",
                "exec",
                probe,
                "ip",
                "xfrm",
                "state",
                "add",
                "src",
                "10.9.0.1",
                "dst",
                "10.9.0.2",
                "proto",
                "esp",
                "spi",
                "0x100",
                "reqid",
                "1",
                "mode",
                "transport",
                "aead",
                "rfc4106(gcm(aes))",
                "0x" + "11" * 20,
                "64",
            ],
            check=False,
        )
        return result.returncode == 0
    finally:
        run(["ip", "netns", "delete", probe], check=False)


@dataclass
class Node:
    index: int
    namespace: str
    address: str
    root: Path
    exec_root: Path
    labels: dict[str, str] = field(default_factory=dict)
    node_id: str = ""
    process: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        """DOCKER_HOST of this engine."""
        return f"unix://{self.socket}"

    def docker(self, *args: str, timeout: float = 60, check: bool = True, **kw: object) -> subprocess.CompletedProcess:
        return run(["docker", "-H", self.host, *args], timeout=timeout, check=check, **kw)


class SwarmCluster:
    def __init__(self, say: Callable[[str], None] = print) -> None:
        self.run_id = f"cz14{secrets.token_hex(2)}"
        self.say = say
        self.bridge = self.run_id  # 8 characters: interface names stop at 15
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.run_id}-", dir="/var/tmp"))
        self.subnet = self._free_subnet()
        hosts = list(self.subnet.hosts())
        self.gateway = str(hosts[0])
        self.registry = f"{self.gateway}:{REGISTRY_PORT}"
        self.nodes = [
            Node(
                index=i,
                namespace=f"{self.run_id}-n{i}",
                address=str(hosts[9 + i]),
                root=self.workdir / f"n{i}",
                # Short: containerd's sockets live under it and unix socket paths stop at 108 bytes.
                exec_root=Path(f"/run/{self.run_id}-n{i}"),
                labels=labels,
            )
            for i, labels in ((1, {EDGE_LABEL: "true"}), (2, {DATA_LABEL: "true"}), (3, {}))
        ]
        self.registry_process: subprocess.Popen | None = None
        self._forward_rule = ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]
        self._created: list[str] = []

    # -- build -----------------------------------------------------------------------------------
    @staticmethod
    def _free_subnet() -> ipaddress.IPv4Network:
        used = run(["ip", "-4", "route", "show", "table", "all"]).stdout + run(["ip", "-4", "addr"]).stdout
        for _ in range(50):
            candidate = ipaddress.IPv4Network(f"10.214.{secrets.randbelow(250) + 2}.0/24")
            if f"10.214.{candidate.network_address.packed[2]}." not in used:
                return candidate
        raise ClusterError("no free 10.214.x.0/24 subnet for the test cluster")

    @property
    def manager(self) -> Node:
        return self.nodes[0]

    @property
    def data(self) -> Node:
        return self.nodes[1]

    @property
    def worker(self) -> Node:
        return self.nodes[2]

    def up(self) -> None:
        started = time.monotonic()
        self._network()
        self._registry()
        for node in self.nodes:
            self._start_engine(node)
        for node in self.nodes:
            wait_until(
                f"engine {node.namespace}",
                lambda n=node: n.docker("info", check=False).returncode == 0,
                ENGINE_START_SECONDS,
            )
        self._form_swarm()
        self.say(
            f"[swarm] cluster {self.run_id}: 3 nodes on {self.subnet}, registry {self.registry}, "
            f"up in {time.monotonic() - started:.1f}s"
        )

    def _network(self) -> None:
        run(["ip", "link", "add", self.bridge, "type", "bridge"])
        self._created.append("bridge")
        run(["ip", "addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])
        # The main engine's FORWARD policy is DROP and bridged frames pass iptables (br_netfilter):
        # without this rule the nodes cannot reach each other (swarm join times out).
        run(["iptables", "-I", *self._forward_rule])
        self._created.append("forward")
        for node in self.nodes:
            run(["ip", "netns", "add", node.namespace])
            self._created.append(f"netns:{node.namespace}")
            outside, inside = f"{self.run_id}v{node.index}", f"{self.run_id}p{node.index}"
            run(["ip", "link", "add", outside, "type", "veth", "peer", "name", inside])
            run(["ip", "link", "set", outside, "master", self.bridge, "up"])
            run(["ip", "link", "set", inside, "netns", node.namespace])
            ns = ["ip", "-n", node.namespace]
            run([*ns, "link", "set", inside, "name", "eth0"])
            run([*ns, "addr", "add", f"{node.address}/{self.subnet.prefixlen}", "dev", "eth0"])
            run([*ns, "link", "set", "eth0", "up"])
            run([*ns, "link", "set", "lo", "up"])
            run([*ns, "route", "add", "default", "via", self.gateway])

    def _registry(self) -> None:
        root = self.workdir / "registry"
        root.mkdir()
        config = root / "config.yml"
        # Debian's /etc/docker/registry/config.yml, minus htpasswd auth, on the bridge address only.
        config.write_text(
            "version: 0.1\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {root / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.registry}\n"
            "log:\n  level: warn\n"
        )
        log = (root / "registry.log").open("wb")
        self.registry_process = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_until("registry /v2/", self._registry_answers, 30)

    def _registry_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.registry}/v2/", timeout=2) as answer:
                return answer.headers.get("Docker-Distribution-API-Version") == "registry/2.0"
        except OSError:
            return False

    def _start_engine(self, node: Node) -> None:
        node.root.mkdir(parents=True)
        log = (node.root / "dockerd.log").open("wb")
        node.process = subprocess.Popen(
            [
                "nsenter",
                f"--net=/var/run/netns/{node.namespace}",
                "--",
                "dockerd",
                "--data-root",
                str(node.root / "data"),
                "--exec-root",
                str(node.exec_root),
                "--pidfile",
                str(node.root / "docker.pid"),
                "-H",
                node.host,
                # No docker0. iptables rules ARE needed (host-mode published ports are DNAT rules, and
                # nothing listens without them); they go into this engine's own network namespace
                # (netfilter tables are per namespace), never into the host's.
                "--bridge",
                "none",
                "--iptables=true",
                "--insecure-registry",
                self.registry,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _form_swarm(self) -> None:
        manager = self.manager
        manager.docker("swarm", "init", "--advertise-addr", manager.address, "--listen-addr", f"{manager.address}:2377")
        token = manager.docker("swarm", "join-token", "--quiet", "worker").stdout.strip()
        for node in self.nodes[1:]:
            node.docker("swarm", "join", "--token", token, f"{manager.address}:2377", timeout=90)
        for node in self.nodes:
            node.node_id = node.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
            for key, value in node.labels.items():
                manager.docker("node", "update", "--label-add", f"{key}={value}", node.node_id)
        wait_until("3 nodes Ready", lambda: self.ready_nodes() == 3, NODE_READY_SECONDS)

    def ready_nodes(self) -> int:
        listed = self.manager.docker("node", "ls", "--format", "{{json .}}", check=False)
        rows = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
        return sum(1 for row in rows if row.get("Status") == "Ready")

    # -- losing a node ---------------------------------------------------------------------------------
    def cut(self, node: Node) -> None:
        """The node drops off the network (its bridge port goes down): to the others it is lost, as a
        machine whose cable is pulled; its engine and containers keep running, unreachable."""
        run(["ip", "link", "set", f"{self.run_id}v{node.index}", "down"])

    def reconnect(self, node: Node) -> None:
        run(["ip", "link", "set", f"{self.run_id}v{node.index}", "up"])
        wait_until(f"node {node.index} Ready again", lambda: self.ready_nodes() == len(self.nodes), NODE_READY_SECONDS)

    # -- images ------------------------------------------------------------------------------------
    def load_image(self, node: Node, image: str) -> None:
        """Copies an image of the main engine into `node`'s engine (docker save | docker load)."""
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        try:
            node.docker("load", "--quiet", stdin=save.stdout, timeout=300)
        finally:
            if save.stdout is not None:
                save.stdout.close()
            save.wait(timeout=60)
        if save.returncode != 0:
            raise ClusterError(f"docker save {image} failed ({save.returncode})")

    def push_image(self, image: str) -> str:
        """Puts a main-engine image into the cluster's registry (through the manager, which trusts
        the plain-HTTP registry); returns its name there. Every node can pull it from then on."""
        self.load_image(self.manager, image)
        target = f"{self.registry}/{image}"
        self.manager.docker("tag", image, target)
        self.manager.docker("push", "--quiet", target, timeout=300)
        return target

    # -- teardown ----------------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Removes everything `up()` made; returns what could not be removed (empty: all gone)."""
        problems: list[str] = []
        running = [n for n in self.nodes if n.process is not None and n.process.poll() is None]
        for node in running:
            # Containers first: a task's containerd shim would outlive its engine.
            ids = node.docker("ps", "--all", "--quiet", check=False).stdout.split()
            if ids:
                node.docker("rm", "--force", *ids, check=False, timeout=120)
        for node in reversed(running):
            node.docker("swarm", "leave", "--force", check=False, timeout=30)
        for node in self.nodes:
            problems += self._stop_engine(node)
        if self.registry_process is not None:
            problems += _stop(self.registry_process, "registry")
        for node in self.nodes:
            created = f"netns:{node.namespace}" in self._created
            if created and run(["ip", "netns", "delete", node.namespace], check=False).returncode != 0:
                problems.append(f"netns {node.namespace}")
        if "bridge" in self._created and run(["ip", "link", "delete", self.bridge], check=False).returncode != 0:
            problems.append(f"bridge {self.bridge}")
        if "forward" in self._created and run(["iptables", "-D", *self._forward_rule], check=False).returncode != 0:
            problems.append(f"iptables rule {' '.join(self._forward_rule)}")
        for node in self.nodes:
            problems += _unmount_below(node.root) + _unmount_below(node.exec_root)
            shutil.rmtree(node.exec_root, ignore_errors=True)
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.workdir.exists():
            problems.append(f"folder {self.workdir}")
        return problems

    def _stop_engine(self, node: Node) -> list[str]:
        if node.process is None:
            return []
        pid_file = node.root / "docker.pid"
        # dockerd writes its pid file itself; nsenter exec's into dockerd, so both are the same process.
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        return _stop(node.process, f"dockerd {node.namespace}")


def _stop(process: subprocess.Popen, what: str) -> list[str]:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                return [f"{what} (pid {process.pid}) did not stop"]
    return []


def _unmount_below(folder: Path) -> list[str]:
    """A killed engine can leave overlay and namespace mounts under its roots; rmtree needs them gone."""
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    below = sorted((m for m in mounts if m == str(folder) or m.startswith(f"{folder}/")), key=len, reverse=True)
    left = []
    for mount in below:
        if run(["umount", "-l", mount], check=False).returncode != 0:
            left.append(f"mount {mount}")
    return left
