# Freeze the moat-bms node package into a MicroPython image:
#   make -C ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/moat-bms/firmware/manifest.py
# See docs/firmware.md.
include("$(PORT_DIR)/boards/manifest.py")
package("bms")
