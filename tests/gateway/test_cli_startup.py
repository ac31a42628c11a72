"""`moat-bms run` starts quickly (docs/performance.md, footprint): it imports only its own
subcommand, not the simulator's, and the web stack only once the gateway runs."""

from __future__ import annotations

import subprocess
import sys

from gateway.cli import SUBCOMMANDS, _command, build_parser
from tests.common import ROOT

# What registering every subcommand would import, and `run` does not need.
NOT_FOR_RUN = ("gateway.sim.scenarios", "gateway.sim.system", "rich", "gateway.web.server")


def test_run_registers_and_imports_only_its_own_subcommand() -> None:
    code = (
        "import sys\n"
        "from gateway.cli import build_parser\n"
        "args = build_parser('run').parse_args(['run', '--no-web'])\n"
        "print(args.func.__module__)\n"
        f"print(sorted(m for m in {NOT_FOR_RUN!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.split("\n")[:2] == ["gateway.cli.run", "[]"]


def test_help_lists_every_subcommand_and_the_command_is_found_after_options() -> None:
    help_text = build_parser().format_help()
    assert all(name in help_text for name in SUBCOMMANDS)
    assert _command(["-v", "run", "--config", "x.yaml"]) == "run"
    assert _command(["--version"]) is None
    assert _command(["no-such-command"]) is None  # argparse then lists the choices
