"""Battery sources: where the gateway's knowledge of the battery comes from.

moat_nodes/ decodes the moat-bms nodes' CAN frames into the battery model and sends them
their commands. docs/architecture.md says how a source plugs in."""
