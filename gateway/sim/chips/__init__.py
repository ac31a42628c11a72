"""Register-level models of the node's measurement chips, written from their datasheets.

Each fake answers the bus transactions of the real chip (machine.I2C / machine.SPI methods
with caller-provided buffers), computes the chip's CRC or PEC itself and can inject the
faults a real board sees: a NACK, a corrupted checksum, a conversion that stops, an open
sense wire or thermistor. They serve the driver tests (tests/firmware/test_chip_*.py, on
CPython and on MicroPython) and the system simulator, which feeds them the simulated pack's
cells so that a node runs through a real driver (gateway.sim.system, SimSetup.chip).

The modules import nothing from the gateway and use no CPython-only feature, so the
MicroPython suite (tests/mpy/run.mjs) loads them as they are; the transaction paths do not
allocate, so that the suite can measure what a driver allocates per reading.
"""
