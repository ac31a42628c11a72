# ruff: noqa: PLW0603
"""The chip driver tests (tests/firmware/test_chip_*.py) on real MicroPython.

run.mjs copies firmware/bms, the chip fakes (gateway/sim/chips) and those test modules into
the interpreter's file system and runs this file after suite.py. Every test_* function of
each module runs; prints one PASS/FAIL line per test, then "BENCH_CHIPS <json>" with the
bytes each driver allocated per reading (0 expected) and "RESULT_CHIPS ...".
"""

import json

from tests.firmware import allocation

passed = 0
failed = 0


def run_module(name):
    global passed, failed
    module = __import__("tests.firmware." + name, None, None, ["x"])
    for attr in sorted(dir(module)):
        if not attr.startswith("test_"):
            continue
        try:
            getattr(module, attr)()
        except Exception as exc:
            failed += 1
            print("FAIL " + name + "." + attr + ": " + repr(exc))
        else:
            passed += 1
            print("PASS " + name + "." + attr)


def run_all(modules):
    for name in modules:
        try:
            run_module(name)
        except Exception as exc:  # an import error fails the module, not the suite
            global failed
            failed += 1
            print("FAIL " + name + " (import): " + repr(exc))
    print("BENCH_CHIPS " + json.dumps(allocation.FIGURES))
    print("RESULT_CHIPS " + str(passed) + " passed, " + str(failed) + " failed")
