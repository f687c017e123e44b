"""A stand-in for the docker CLI, so the hook scripts' own logic runs without a container.

It logs each call (its argv, and which secrets reached it through the environment) and
answers from FAKE_* variables the test sets. The real layer (tests/real) runs the same
scripts against real containers.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

PROGRAM = r"""
import json, os, sys
argv = sys.argv[1:]
if os.path.basename(sys.argv[0]) != "docker":  # called directly, as the scheduler's sidecar does
    argv = ["exec", "(direct)", os.path.basename(sys.argv[0]), *argv]
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    seen = {k: os.environ.get(k) for k in ("PGPASSWORD", "REDISCLI_AUTH")}
    log.write(json.dumps({"argv": argv, "env": seen}) + "\n")
GARBLE = b"\xff" if os.environ.get("FAKE_GARBLE") else b""  # bytes that are not UTF-8
def out(text):
    sys.stdout.buffer.write(text.encode() if isinstance(text, str) else text)
def err(text):
    if text:
        sys.stderr.buffer.write(text.encode() + GARBLE)
cmd = argv[0]
if cmd == "inspect":
    status = os.environ.get("FAKE_STATUS", "running")
    if status == "missing":
        err("Error: No such object: " + argv[-1] + " " + os.environ.get("PGPASSWORD", "") + "\n")
        sys.exit(1)
    out(status + "\n")
elif cmd == "logs":
    out("".join(f"log line {i} of {argv[-1]}\n" for i in range(int(argv[2]))).encode() + GARBLE)
elif cmd == "version":
    out(os.environ.get("FAKE_VERSION", "24.0.7") + "\n")
    err(os.environ.get("FAKE_VERSION_ERR", ""))
    sys.exit(int(os.environ.get("FAKE_VERSION_EXIT", "0")))
elif cmd == "info":
    out(os.environ.get("FAKE_DOCKER_ROOT", "") + "\n")
elif cmd == "run":
    out(os.environ.get("FAKE_DF", ""))
    err(os.environ.get("FAKE_RUN_ERR", ""))
    sys.exit(int(os.environ.get("FAKE_RUN_EXIT", "0")))
elif cmd == "ps" and "{{.Ports}}" in argv:
    out(os.environ.get("FAKE_PS_PORTS", ""))
elif cmd == "ps" and "{{.Names}}" in argv:
    port = argv[argv.index("--filter") + 1].removeprefix("publish=")
    out(os.environ.get("FAKE_PS_PUBLISH_" + port, ""))
elif cmd == "ps":
    out(os.environ.get("FAKE_PS", "") + "\n")
    err(os.environ.get("FAKE_PS_ERR", ""))
    sys.exit(int(os.environ.get("FAKE_PS_EXIT", "0")))
elif cmd == "stop":
    err(os.environ.get("FAKE_STOP_ERR", ""))
    sys.exit(int(os.environ.get("FAKE_STOP_EXIT", "0")))
elif cmd == "exec":
    rest = argv[1:]
    while rest[0] in ("-i", "-e"):
        rest = rest[2:] if rest[0] == "-e" else rest[1:]
    if rest[0] == "--":  # end of options, as the real docker CLI accepts it
        rest = rest[1:]
    tool = rest[1]
    if tool == "pg_dump":
        out(open(os.environ["FAKE_DUMP"], "rb").read() if os.environ.get("FAKE_DUMP") else b"")
        err(os.environ.get("FAKE_DUMP_ERR", ""))
        sys.exit(int(os.environ.get("FAKE_DUMP_EXIT", "0")))
    elif tool == "pg_restore" and "--list" in rest:
        data = sys.stdin.buffer.read()
        if not data.startswith(b"PGDMP"):
            err("pg_restore: error: input file does not appear to be a valid archive\n")
            sys.exit(1)
        toc = "".join(f"{i}; 0 0 TABLE public t{i} owner\n" for i in range(data.count(b"|")))
        out((";\n; Archive created\n;\n\n" + toc).encode() + GARBLE)
    elif tool == "pg_restore":
        data = sys.stdin.buffer.read()
        out(b"-- SQL of " + data)
        err(os.environ.get("FAKE_TO_SQL_ERR", ""))
        sys.exit(int(os.environ.get("FAKE_TO_SQL_EXIT", "0")))
    elif tool == "psql":
        with open(os.environ["FAKE_PSQL_INPUT"], "wb") as f:
            f.write(sys.stdin.buffer.read())
        err(os.environ.get("FAKE_PSQL_ERR", ""))
        sys.exit(int(os.environ.get("FAKE_PSQL_EXIT", "0")))
    elif tool == "wget":
        out(os.environ.get("FAKE_API_BODY", '{"status": "healthy"}').encode() + GARBLE)
        err(os.environ.get("FAKE_API_ERR", ""))
        sys.exit(int(os.environ.get("FAKE_API_EXIT", "0")))
    elif tool == "pg_isready":
        out("127.0.0.1:5432 - accepting connections\n")
        sys.exit(int(os.environ.get("FAKE_PG_READY_EXIT", "0")))
    elif tool == "redis-cli":
        good = os.environ.get("REDISCLI_AUTH") == os.environ.get("FAKE_REDIS_PASSWORD")
        out("PONG\n" if good else "NOAUTH Authentication required.\n")
    else:
        sys.exit(127)
else:
    sys.exit(125)
"""


class FakeDocker:
    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        folder.mkdir()
        self.log = folder / "calls.jsonl"
        self.log.touch()
        program = folder / "docker"
        program.write_text(f"#!{sys.executable} -S\n{PROGRAM}")  # -S: no site, a faster start
        program.chmod(0o755)
        for tool in ("pg_dump", "pg_restore", "psql"):
            (folder / tool).symlink_to(program)
        monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("FAKE_DOCKER_LOG", str(self.log))
        self.monkeypatch = monkeypatch

    def set(self, **values: str) -> None:
        for name, value in values.items():
            self.monkeypatch.setenv(f"FAKE_{name}", value)

    def calls(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def argvs(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]
