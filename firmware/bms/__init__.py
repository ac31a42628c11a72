"""moat-bms battery node firmware (MicroPython; importable on CPython).

The node measures its cells, protects the battery by opening its relay on its own, balances
on the gateway's request and talks to the gateway over CAN (dbc/moat_bms.dbc). Start with
bms.node.Node; docs/firmware.md describes wiring, configuration and deployment.
"""

VERSION = (0, 1, 0)
