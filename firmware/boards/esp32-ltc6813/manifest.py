# Freeze what the ESP32 + MCP2515 + 2x LTC6813 + INA228 board runs, and nothing else:
#   make -C ports/esp32 BOARD=ESP32_GENERIC \
#       FROZEN_MANIFEST=/path/to/moat-bms/firmware/boards/esp32-ltc6813/manifest.py
# (tests/firmware/test_boards.py checks this list against what the board's imports need.)
include("$(PORT_DIR)/boards/manifest.py")
package(
    "bms",
    files=[
        "__init__.py",
        "auth.py",
        "balance.py",
        "codec.py",
        "commands.py",
        "compat.py",
        "config.py",
        "e2e.py",
        "lifecycle.py",
        "main.py",
        "measure.py",
        "node.py",
        "plausible.py",
        "protect.py",
        "reports.py",
        "runner.py",
        "tripstore.py",
        "can/__init__.py",
        "can/mcp2515.py",
        "can/port.py",
        "can/retry.py",
        "hw/__init__.py",
        "hw/board.py",
        "hw/ina22x.py",
        "hw/ltc681x.py",
        "hw/ntc.py",
    ],
    base_path="../..",
)
