"""Battery sources: where the gateway's knowledge of the battery comes from.

moat_nodes/ decodes the moat-bms nodes' CAN frames into the battery model and sends them
their commands; packs/ reads commercial BMSes into pack records; combined.py makes both one
source, assemble.py sums the members of the topology into the snapshot. docs/architecture.md
says how a source plugs in."""
