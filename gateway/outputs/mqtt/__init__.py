"""The MQTT output: the battery on a broker, with Home Assistant discovery (docs/mqtt.md).

topics.py and payloads.py are pure (a BatteryView in, topic/payload pairs out); discovery.py
builds Home Assistant's discovery configs; publisher.py decides what is due after a tick;
client.py is the I/O (aiomqtt); commands.py the few commands accepted over MQTT.
Importing this package does not import aiomqtt (the configuration only needs settings.py).
"""
