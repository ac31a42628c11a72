"""The moat-bms nodes on the battery CAN bus (dbc/moat_bms.dbc): frames in (ingest -> model),
commands out (heartbeat, relay, balancing), and the bus load they cause."""
