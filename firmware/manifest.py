# Freeze the moat-bms node package into a MicroPython image, next to everything the port's
# own manifest provides (asyncio among it):
#   make -C ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/moat-bms/firmware/manifest.py
# Frozen, the package's bytecode runs from flash instead of taking about 125 KB of RAM.
# The board then needs /bms.json, /board.py and a two-line /main.py: see docs/firmware.md.
include("$(PORT_DIR)/boards/manifest.py")
package("bms")
