"""Real-engine smoke test: the rehearsal's core scenarios through Pulumi's Automation API.

Run it with `./test.sh smoke` on a machine that has the Pulumi CLI and Docker. It is not part of
the suite (`./test.sh`), which runs without the CLI; `tests/unit/test_smoke.py` tests its
plumbing against a fake `pulumi` executable.
"""
