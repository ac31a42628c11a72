"""Generate docs/configuration.md from the settings schema.

Usage: python -m tools.gen_config_doc [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.config.doc import markdown

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the page is stale")
    args = parser.parse_args(argv)
    text = markdown()
    if args.check:
        if not DOC.exists() or DOC.read_text() != text:
            print("stale: docs/configuration.md (run `make docs`)", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
