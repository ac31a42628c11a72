"""The I/O edge: the service around the core (buses, tick loop, state file, outputs' tasks)."""
