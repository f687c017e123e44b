"""The deploy rehearsal: the unmodified program against the real Docker engine.

One stack is walked through fresh up -> update (zero downtime, with the runbook's way as the
anchor) -> bad update -> rollback with restore -> destroy -> re-up. Each scenario prints one
summary line: name, seconds, result.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import docker.errors
import pytest
from docker_harness import DockerScope, _parse_docker_time, wait_healthy
from images import tags
from providers_docker import HEALTHY_STATE_ERROR
from rehearsal_engine import DeploymentFailed, Rehearsal
from rehearsal_stack import ClientLoop, LoopStats, Stack, say


def _container_started(container) -> float:
    return _parse_docker_time(container.attrs["Created"]).timestamp()


def _dump_ok(stack: Stack, dump: Path) -> None:
    """The dump matches its sidecar checksum and pg_restore can read it."""
    digest = hashlib.sha256(dump.read_bytes()).hexdigest()
    assert (dump.parent / (dump.name + ".sha256")).read_text().split()[0] == digest
    pg = stack.outputs["containers"]["postgres"]
    with dump.open("rb") as handle:
        listed = subprocess.run(
            ["docker", "exec", "-i", pg, "pg_restore", "--list"], stdin=handle, capture_output=True, check=False
        )
    assert listed.returncode == 0, listed.stderr
    assert b"TABLE public items" in listed.stdout or b"TABLE DATA public items" in listed.stdout


# -- refusal: nothing that is not implemented is ever deployed ---------------------------------------

REFUSED_PROGRAM = """\
import pulumi
import pulumi_docker as docker
import pulumi_random as random

password = random.RandomPassword("harmless", length=16, special=False)
docker.Container(
    "privileged-box",
    name="{name}",
    image="{image}",
    privileged=True,
    opts=pulumi.ResourceOptions(depends_on=[password]),
)
"""

REFUSED_OPTION_PROGRAM = """\
import pulumi
import pulumi_random as random

random.RandomPassword("ignored", length=16, opts=pulumi.ResourceOptions(ignore_changes=["length"]))
"""


def test_refuses_inputs_and_options_it_does_not_implement(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    started = time.monotonic()
    with DockerScope(test_name="rehearsal-refusal") as scope:
        name = scope.name("privileged")
        program = tmp_path / "refused.py"
        program.write_text(REFUSED_PROGRAM.format(name=name, image=tags.REDIS))
        engine = Rehearsal(tmp_path / "state.json", client=scope.client, program=program)
        with pytest.raises(DeploymentFailed) as caught:
            engine.up("refusal", {})
        message = str(caught.value)
        assert "privileged-box (docker:index/container:Container)" in message
        assert "input 'privileged' is not implemented" in message
        with pytest.raises(docker.errors.NotFound):
            scope.client.containers.get(name)
        engine.destroy()

        option = tmp_path / "option.py"
        option.write_text(REFUSED_OPTION_PROGRAM)
        engine = Rehearsal(tmp_path / "state2.json", client=scope.client, program=option)
        with pytest.raises(DeploymentFailed) as caught:
            engine.up("refusal", {})
        assert "ignored (random:index/randomPassword:RandomPassword)" in str(caught.value)
        assert "resource option 'ignore_changes'" in str(caught.value)
    say(request.config, f"[rehearsal] refusal: {time.monotonic() - started:.1f}s, passed")


# -- 1. fresh up --------------------------------------------------------------------------------------


def test_1_fresh_up(stack: Stack) -> None:
    started = time.monotonic()
    stack.set_version("rehearsal-v1")
    result = stack.up()
    out = stack.outputs
    client = stack.scope.client

    names = [out["containers"][role] for role in ("postgres", "redis", "nginx")] + out["containers"]["api"]
    assert len(out["containers"]["api"]) == 2
    for name in names:
        container = client.containers.get(name)
        assert container.attrs["State"]["Health"]["Status"] == "healthy", name

    # nginx answers over TLS with the stack's own certificate (verified, hostname checked).
    status, body = stack.https("GET", "/health")
    assert status == 200 and json.loads(body)["status"] == "healthy"
    assert stack.served_version() == "rehearsal-v1"
    # The API reached PostgreSQL (and Redis).
    status, body = stack.https("GET", "/health/deep")
    deep = json.loads(body)
    assert status == 200 and deep["database"] == "ok" and deep["redis"] == "ok", deep

    # Redis answers only when authenticated.
    redis = client.containers.get(out["containers"]["redis"])
    authed = redis.exec_run(["redis-cli", "--no-auth-warning", "ping"], environment={"REDISCLI_AUTH": ""})
    assert b"NOAUTH" in authed.output
    authed = redis.exec_run(
        ["redis-cli", "--no-auth-warning", "ping"], environment={"REDISCLI_AUTH": out["redisPassword"]}
    )
    assert authed.output.strip() == b"PONG"

    # The backup hook left a verified dump (of the still empty database: the table exists).
    dump = Path(out["lastBackup"]["file"])
    assert dump.is_file() and out["lastBackup"]["sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
    digest = hashlib.sha256(dump.read_bytes()).hexdigest()
    assert (dump.parent / (dump.name + ".sha256")).read_text().split()[0] == digest

    # The health output says every check passed.
    health = out["health"]
    assert health["status"] == "healthy"
    assert set(health["checks"]) == {"nginx", "postgres", "redis", *(f"api:{n}" for n in out["containers"]["api"])}

    stack.notes["v1_image"] = stack.api_image_id()
    (v1,) = out["apiVersions"]
    assert v1["serving"] and stack.api_images()[v1["tag"]] == stack.notes["v1_image"]
    stack.notes["v1_tag"] = v1["tag"]
    stack.results["1"] = True
    stack.summary("1 fresh up", time.monotonic() - started, f"passed ({len(result.actions('create'))} creates)")


# -- 1b. a second `pulumi up` with nothing changed changes nothing -----------------------------------


def test_1b_no_op_up(stack: Stack) -> None:
    stack.require("1")
    started = time.monotonic()
    result = stack.up()
    changes = result.changes()
    say(stack.pytest_config, f"[rehearsal] no-op up: {len(changes)} changes")
    # A spurious rebuild (e.g. __pycache__ in a build context) or an input that does not round-trip
    # would show here as an update or a replacement.
    assert changes == [], [(e.action, e.name, e.detail) for e in changes]
    stack.results["1b"] = True
    stack.summary("1b no-op up", time.monotonic() - started, f"passed ({len(result.actions('same'))} unchanged)")


# -- 1c. network segmentation (issue 10 outcome 7) --------------------------------------------------


def _tcp_connects(container, address: str, port: int) -> tuple[bool, str]:
    """Whether `container` can open a TCP connection to address:port (bash's /dev/tcp, 3 s)."""
    result = container.exec_run(["timeout", "3", "bash", "-c", f"exec 3<>/dev/tcp/{address}/{port}"])
    return result.exit_code == 0, result.output.decode(errors="replace").strip()


def test_1c_nginx_cannot_reach_postgres_or_redis(stack: Stack) -> None:
    stack.require("1")
    started = time.monotonic()
    out = stack.outputs
    client = stack.scope.client
    back = out["networks"]["back"]
    nginx = client.containers.get(out["containers"]["nginx"])
    api = client.containers.get(out["containers"]["api"][0])
    assert set(nginx.attrs["NetworkSettings"]["Networks"]) == {out["networks"]["front"]}
    checked = []
    for role, port in (("postgres", 5432), ("redis", 6379)):
        target = client.containers.get(out["containers"][role])
        address = target.attrs["NetworkSettings"]["Networks"][back]["IPAddress"]
        # The control: the API (on both networks) reaches it, so the address and port are right.
        reached, detail = _tcp_connects(api, address, port)
        assert reached, (role, detail)
        # nginx (front only) cannot open a connection, not even by address; nor resolve the name.
        reached, detail = _tcp_connects(nginx, address, port)
        assert not reached, f"nginx opened a TCP connection to {role} at {address}:{port}"
        reached, detail = _tcp_connects(nginx, role, port)
        assert not reached, f"nginx reached {role} by name"
        checked.append(f"{role} {address}:{port}")
    stack.summary("1c segmentation", time.monotonic() - started, "nginx reaches neither " + ", ".join(checked))


# -- 2. update with a new API image (the loop of scenario 3 runs through it) ----------------------------


def test_2_update_new_api_image(stack: Stack) -> None:
    stack.require("1")
    started = time.monotonic()
    client = stack.scope.client
    stack.add_item("before-update")
    old = {c.name: c for c in stack.api_containers()}
    old_dump = stack.outputs["lastBackup"]["file"]

    stack.set_version("rehearsal-v2")
    with ClientLoop(stack, pause=0.03) as loop:
        result = stack.up()
        # The loop is paced under nginx's per-client limit, so an update faster than ~10 s sends
        # fewer than test 3's 150 requests: keep asking the new version until it has them.
        loop.run_until(sent=150, timeout=20)
    stack.notes["update_loop"] = loop.stats

    new_image = stack.api_image_id()
    assert new_image != stack.notes["v1_image"], "the new build must have a different image ID"
    # Both versions stay on the engine, the new one serving.
    assert [v["serving"] for v in stack.outputs["apiVersions"]] == [True, False]
    assert stack.outputs["apiVersions"][1]["tag"] == stack.notes["v1_tag"]
    stack.notes["v2_tag"] = stack.outputs["apiVersions"][0]["tag"]
    new_names = stack.outputs["containers"]["api"]
    assert not set(new_names) & set(old), "every API container is replaced"
    for name in old:
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(name)
    assert stack.served_version() == "rehearsal-v2"
    assert stack.items() == ["before-update"]

    # The backup finished before the first new API container was created, and before any old one went.
    dump = Path(stack.outputs["lastBackup"]["file"])
    assert str(dump) != old_dump
    _dump_ok(stack, dump)
    backup_done = dump.stat().st_mtime
    first_new = min(_container_started(client.containers.get(n)) for n in new_names)
    # API containers only ("db-roles-api-role", the role hook, is replaced on every rollout too).
    deletes = [
        e.at for e in result.events if e.action == "delete" and "-api-" in e.name and "container:Container" in e.urn
    ]
    assert len(deletes) == 2
    assert backup_done < first_new < min(deletes), (backup_done, first_new, deletes)
    # Create-before-delete: the health check ran against the new containers before the old ones went.
    verify = next(e.at for e in result.events if e.action == "create" and e.name == "health-verify")
    assert verify < min(deletes)
    # Traffic moved (proxy-config: nginx switched by a reload) only once both new containers were
    # healthy, and before the old ones went; nginx itself was not touched.
    created = [e.at for e in result.events if e.action == "create" and "-api-" in e.name]
    switch = next(e.at for e in result.events if e.name == "proxy-config" and e.action == "update")
    assert max(created) < switch < min(deletes)
    assert "proxy-container" in result.actions("same")
    stack.notes["pre_update_dump"] = str(dump)
    stack.results["2"] = True
    stack.summary(
        "2 update (new API image)",
        time.monotonic() - started,
        f"passed (backup {time.strftime('%H:%M:%S', time.localtime(backup_done))} < first new API container "
        f"{time.strftime('%H:%M:%S', time.localtime(first_new))} < old removed)",
    )


# -- 3. zero downtime, with the runbook's stop + run as the anchor --------------------------------------


def _runbook_replace(stack: Stack, env_file: Path) -> None:
    """What `docker compose up -d --no-deps api` does: stop and remove the API, then run a new one."""
    client = stack.scope.client
    current = [client.containers.get(n) for n in stack.outputs["containers"]["api"]]
    template = current[0].attrs
    subprocess.run(["docker", "stop", *[c.name for c in current]], check=True, capture_output=True)
    labels = [f"--label={k}={v}" for k, v in stack.scope.labels.items()]
    # The same aliases as the stack's containers, the version alias nginx routes to included.
    network = stack.outputs["network"]
    aliases = [a for a in template["NetworkSettings"]["Networks"][network]["Aliases"] if a.startswith("api")]
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            f"{stack.prefix}-runbook-api",
            "--network",
            stack.outputs["network"],
            *[f"--network-alias={alias}" for alias in aliases],
            "--env-file",
            str(env_file),
            "--memory",
            "256m",
            *labels,
            template["Image"],
        ],
        check=True,
        capture_output=True,
    )


def test_3_zero_downtime(stack: Stack) -> None:
    stack.require("2")
    started = time.monotonic()
    stats = stack.notes["update_loop"]
    line = f"pulumi-style update: {stats.line()}"

    # The anchor, in the same run: the runbook's way against the same stack.
    client = stack.scope.client
    env = client.containers.get(stack.outputs["containers"]["api"][0]).attrs["Config"]["Env"]
    with tempfile.NamedTemporaryFile("w", dir=stack.root, delete=False, suffix=".env") as handle:
        os.chmod(handle.name, 0o600)
        handle.write("\n".join(env) + "\n")
    env_file = Path(handle.name)
    stopped = list(stack.outputs["containers"]["api"])
    try:
        with ClientLoop(stack) as anchor:
            _runbook_replace(stack, env_file)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if stack.https("GET", "/health", timeout=3)[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            time.sleep(1)
    finally:
        env_file.unlink(missing_ok=True)
        # Back to the declared state: the stack's own containers, not the hand-run one.
        for name in stopped:
            client.containers.get(name).start()
        for name in stopped:
            wait_healthy(client.containers.get(name), timeout=60)
        with_runbook = client.containers.get(f"{stack.prefix}-runbook-api")
        with_runbook.remove(force=True)
    anchor_line = f"runbook stop + run: {anchor.stats.line()}"

    # At least 150 requests (issue 8), from before the update until after it (test 2 keeps the loop,
    # paced under nginx's per-client /health rate, running past the switch). Both versions answered.
    assert stats.sent >= 150, f"the loop must have run through the update: {stats.line()}"
    assert len(stats.versions) == 2, f"the loop must have seen the switch: {stats.line()}"
    assert stats.failed == 0, f"requests failed during the update: {stats.errors}"
    assert stats.longest_gap < 1.0, f"a gap without a good answer: {stats.line()}"
    assert anchor.stats.failed > 0, "the anchor must show the downtime the loop is able to see"
    stack.results["3"] = True
    stack.summary(
        "3 zero downtime",
        time.monotonic() - started,
        f"passed ({line}; {anchor_line})",
    )


# -- 3b. rollback to a kept version: no build, traffic switched by a reload ---------------------------


def _timed_up(stack: Stack) -> tuple[float, LoopStats]:
    with ClientLoop(stack, pause=0.05) as loop:
        started = time.monotonic()
        stack.up()
        seconds = time.monotonic() - started
    return seconds, loop.stats


def test_3b_rollback_without_rebuild(stack: Stack) -> None:
    stack.require("3")
    started = time.monotonic()
    client = stack.scope.client
    kept = stack.api_images()
    assert set(kept) == {stack.notes["v1_tag"], stack.notes["v2_tag"]}

    # Back to v1, still on the engine: the same image, no build, a reload of nginx.
    stack.set_version("rehearsal-v1")
    seconds, stats = _timed_up(stack)
    assert stack.served_version() == "rehearsal-v1"
    assert stack.api_image_id() == stack.notes["v1_image"] and stack.api_images() == kept  # nothing built
    assert stats.failed == 0, stats.line()
    assert seconds < 15, seconds

    # The anchor in the same run: the same rollback once v1's image is gone, i.e. with a rebuild.
    stack.set_version("rehearsal-v2")
    stack.up()
    client.images.remove(f"{stack.prefix}-api:{stack.notes['v1_tag']}")
    stack.set_version("rehearsal-v1")
    rebuild_seconds, rebuild_stats = _timed_up(stack)
    assert stack.served_version() == "rehearsal-v1" and rebuild_stats.failed == 0, rebuild_stats.line()
    stack.notes["v1_image"] = stack.api_image_id()

    # Forward again to v2 (kept: no build) for the scenarios that follow.
    stack.set_version("rehearsal-v2")
    stack.up()
    assert stack.served_version() == "rehearsal-v2"
    stack.results["3b"] = True
    say(
        stack.pytest_config,
        f"[rehearsal] rollback without rebuild: {seconds:.1f}s (rebuild rollback {rebuild_seconds:.1f}s, same run), "
        f"requests={stats.sent} failed={stats.failed}",
    )
    stack.summary("3b rollback without rebuild", time.monotonic() - started, "passed")


# -- 4. bad update: the broken image never becomes healthy --------------------------------------------


def test_4_bad_update(stack: Stack) -> None:
    stack.require("2")
    started = time.monotonic()
    client = stack.scope.client
    stack.add_item("written-on-v2")
    serving = list(stack.outputs["containers"]["api"])
    stack.overrides["api"].update({"source": None, "image": tags.API_BROKEN})

    # A client through nginx for the whole failed run and 10 s after it.
    with ClientLoop(stack, pause=0.05) as loop:
        with pytest.raises(DeploymentFailed) as caught:
            stack.up()
        time.sleep(10)
    message = str(caught.value)
    # The provider's own message, after waiting the whole waitTimeout; the run reports every failed
    # wait (both replicas), each naming its resource.
    api_failures = [f for f in caught.value.failures if f.endswith(HEALTHY_STATE_ERROR)]
    assert len(api_failures) == 2, message
    assert all("-api-" in f and "(docker:index/container:Container)" in f for f in api_failures), message

    # The old API containers were never touched and still serve through nginx.
    for name in serving:
        container = client.containers.get(name)
        assert container.status == "running" and container.attrs["State"]["Health"]["Status"] == "healthy"
        probe = container.exec_run(["wget", "-q", "-O", "-", "http://localhost:8080/health"])
        assert json.loads(probe.output)["version"] == "rehearsal-v2"
    for _ in range(10):
        assert stack.items() == ["before-update", "written-on-v2"]
    # The failed containers stay (created, with an init error, as the provider leaves them) and hold the `api` alias
    # until the next update replaces them: count how much of /health through nginx they answer.
    broken = [c.name for c in stack.api_containers() if c.name not in serving]
    assert len(broken) == 2, broken
    # They are recorded with their init error (the old ones wait as pending deletes).
    recorded = [e for e in stack.rehearsal.load_state()["resources"].values() if e.get("init_errors")]
    assert sorted(e["outputs"]["name"] for e in recorded) == sorted(broken)
    stack.notes["broken_api"] = broken
    # nginx was never switched to the failed version: not one request reached it.
    stats = loop.stats
    from_failed = stats.versions["broken"]
    assert stats.sent >= 100, stats.line()
    assert stats.failed == 0 and from_failed == 0, (stats.line(), dict(stats.versions))
    first = message.splitlines()[1].strip()[:120]
    stack.results["4"] = True
    stack.summary(
        "4 bad update",
        time.monotonic() - started,
        f"passed (failed as expected: {first}) requests={stats.sent} failed={stats.failed} "
        f"from_failed_version={from_failed}",
    )


# -- 5. rollback: the previous image and the pre-update dump ------------------------------------------


def test_5_rollback_with_restore(stack: Stack) -> None:
    stack.require("2", "4")
    started = time.monotonic()
    client = stack.scope.client
    stack.overrides["api"].update({"source": str(stack.checkout), "image": None})
    stack.set_version("rehearsal-v1")
    stack.plain["restoreFrom"] = stack.notes["pre_update_dump"]
    result = stack.up()

    assert stack.served_version() == "rehearsal-v1"
    assert stack.api_image_id() == stack.notes["v1_image"]
    # The data is exactly what the dump holds: the item written on v2 is gone.
    assert stack.items() == ["before-update"]
    assert stack.outputs["lastRestore"]["restored"] == stack.notes["pre_update_dump"]
    # The containers that failed their wait in scenario 4 were replaced (their init error is a
    # replace key: the program's replace_on_changes covers "#initerror"), and the old ones deleted.
    replaced = [
        e
        for e in result.events
        if e.action == "create" and "-api-" in e.name and "replacement" in e.detail and "container:Container" in e.urn
    ]
    assert len(replaced) == 2 and all("#initerror" in e.detail for e in replaced), replaced
    for name in stack.notes["broken_api"]:
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(name)
    assert sorted(c.name for c in stack.api_containers()) == sorted(stack.outputs["containers"]["api"])
    assert not any(e.get("init_errors") for e in stack.rehearsal.load_state()["resources"].values())
    assert stack.outputs["health"]["status"] == "healthy"
    restored_in = time.monotonic() - started

    # Clearing restoreFrom deletes the restore Command and does nothing to the data.
    stack.plain["restoreFrom"] = None
    cleared = stack.up()
    assert "restore-pg-restore" in cleared.actions("delete")
    assert stack.items() == ["before-update"]
    assert "lastRestore" not in stack.outputs
    stack.results["5"] = True
    stack.summary(
        "5 rollback",
        time.monotonic() - started,
        f"passed (v1 + restore in {restored_in:.1f}s, {len(result.actions('create'))} creates; "
        "restoreFrom cleared: restore Command deleted, data unchanged)",
    )


# -- 5b. certificate renewal: a reload, never a new nginx -----------------------------------------------


def test_5b_certificate_renewal(stack: Stack) -> None:
    stack.require("5")
    started = time.monotonic()
    client = stack.scope.client
    nginx_id = client.containers.get(stack.outputs["containers"]["nginx"]).id
    old_cert = stack.outputs["tlsCertificate"]
    # Bring the certificate into its early-renewal window, as time would: pulumi-tls then replaces
    # it (ready_for_renewal), and the proxy hook applies the new one by a reload.
    state = stack.rehearsal.load_state()
    (cert,) = [e for e in state["resources"].values() if e["type"] == "tls:index/selfSignedCert:SelfSignedCert"]
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    cert["outputs"]["validityEndTime"] = soon.strftime("%Y-%m-%dT%H:%M:%SZ")
    stack.rehearsal.state_path.write_text(json.dumps(state))
    # The loop cannot know the new certificate in advance: it checks availability, not identity.
    unverified = ssl.create_default_context()
    unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
    with ClientLoop(stack, pause=0.05, context=unverified) as loop:
        stack.up()
    stats = loop.stats
    assert stack.outputs["tlsCertificate"] != old_cert
    # The new certificate is what nginx serves (verified against the new output).
    assert stack.https("GET", "/health")[0] == 200
    replaced = client.containers.get(stack.outputs["containers"]["nginx"]).id != nginx_id
    assert not replaced and stats.failed == 0, stats.line()
    stack.results["5b"] = True
    say(
        stack.pytest_config,
        f"[rehearsal] certificate renewal: requests={stats.sent} failed={stats.failed} "
        f"proxy_replaced={'yes' if replaced else 'no'}",
    )
    stack.summary("5b certificate renewal", time.monotonic() - started, "passed")


# -- 5c. the maintenance page ------------------------------------------------------------------------------


def test_5c_maintenance(stack: Stack) -> None:
    stack.require("5")
    started = time.monotonic()
    stack.plain["maintenance"] = "true"
    stack.up()
    status, headers, body = stack.https_headers("/api/v1/items")
    health = stack.https("GET", "/health")[0]
    assert status == 503 and headers.get("retry-after") == "120" and b"maintenance" in body.lower()
    assert health == 200
    say(
        stack.pytest_config,
        f"[rehearsal] maintenance: status={status} retry_after={headers['retry-after']} health={health}",
    )
    stack.plain["maintenance"] = None
    stack.up()
    assert stack.items() == ["before-update"]
    stack.results["5c"] = True
    stack.summary("5c maintenance", time.monotonic() - started, "passed")


# -- 6. destroy keeps the protected volumes; a re-up reattaches them -------------------------------------


def test_6_destroy_and_reup(stack: Stack) -> None:
    stack.require("5")
    started = time.monotonic()
    client = stack.scope.client
    assert sorted(n.name for n in stack.networks()) == [f"{stack.prefix}-back", f"{stack.prefix}-front"]
    destroyed = stack.rehearsal.destroy()
    kept = sorted(v for v in destroyed.kept_protected if v.startswith(stack.prefix))
    assert kept == sorted([f"{stack.prefix}-postgres-data", f"{stack.prefix}-redis-data"])
    # The generated database password is pinned to the data volume, so it is kept with it.
    assert "secrets-postgresPassword" in destroyed.kept_protected
    say(stack.pytest_config, f"[rehearsal] destroy kept protected: {', '.join(sorted(destroyed.kept_protected))}")
    assert client.containers.list(all=True, filters={"label": f"catalogizer.stack={stack.prefix}"}) == []
    assert stack.networks() == []
    left = sorted(v.name for v in client.volumes.list() if v.name.startswith(stack.prefix + "-"))
    assert left == kept

    reup = stack.up()
    assert "volumes-postgres-data" in reup.actions("same")
    assert stack.items() == ["before-update"]
    assert stack.outputs["health"]["status"] == "healthy"
    stack.results["6"] = True
    stack.summary(
        "6 destroy + re-up",
        time.monotonic() - started,
        f"passed (kept {', '.join(kept)}; re-up reattached them, data intact)",
    )
