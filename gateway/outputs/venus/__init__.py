"""Venus OS (Victron GX): the battery as a com.victronenergy.battery D-Bus service.

paths.py maps a BatteryView to the D-Bus paths a GX and VRM read (pure); changes.py decides
which changed paths are signalled (pure, at most once a second per path); history.py keeps
the /History counters; service.py serves them with dbus-fast the way Venus OS's own services
do and is the Output (gateway/outputs/seam.py). docs/venus.md lists every path.

Nothing is imported here: the configuration imports settings.py without loading dbus-fast.
"""
