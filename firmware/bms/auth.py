"""Authentication of the commands that make the battery less safe (issue 12, finding 4).

CRC-8 and the alive counter (bms.e2e) catch corrupted, stuck and repeated frames, but anyone
on the bus can compute them. A RelayCommand that closes the relay or resets a trip therefore
also carries, in the manner of AUTOSAR SecOC (AUTOSAR_SWS_SecureOnboardCommunication):

* Freshness (24 bits): a value the gateway raises with every RelayCommand to a node (seeded
  from its wall clock in 100 ms ticks, so a restarted gateway continues above its old
  values). The node keeps the newest value it has seen and rejects a frame whose value is
  not newer (modulo 2**24, within half the range): a recorded frame replayed later is old.
* Mac (24 bits): the first three bytes of HMAC-SHA256 (RFC 2104, FIPS 180-4) under the
  installation's command key over the frame id (2 bytes, little-endian), bytes 1..4 of the
  frame (counter, request, reset, freshness) = the MAC covers everything but the CRC and
  itself.

The key (16..64 bytes, given as hex) is provisioned in the node's /bms.json (command_key)
and in the gateway's configuration; it is never sent on the bus. Commands that make the
system safer (open, heartbeat, balancing within the node's own floor) stay CRC-only: the
MAC is computed and checked only for the rare less-safe ones, so the cost (and the heap the
hash objects take) is not paid every cycle.

hmac is not part of MicroPython; HMAC is built here on hashlib.sha256, which the ports have.
"""

import hashlib

BLOCK = 64  # SHA-256 block size, bytes
MAC_BYTES = 3


def hmac_sha256(key, message):
    """HMAC-SHA256 (RFC 2104) of message under key, as 32 bytes."""
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    inner_pad = bytearray(BLOCK)
    outer_pad = bytearray(BLOCK)
    for i in range(BLOCK):
        k = key[i] if i < len(key) else 0
        inner_pad[i] = k ^ 0x36
        outer_pad[i] = k ^ 0x5C
    inner = hashlib.sha256(inner_pad)
    inner.update(message)
    outer = hashlib.sha256(outer_pad)
    outer.update(inner.digest())
    return outer.digest()


def command_mac(key, can_id, data):
    """The 24-bit Mac of a RelayCommand: over the id and bytes 1..4 of data."""
    message = bytearray(6)
    message[0] = can_id & 0xFF
    message[1] = can_id >> 8
    for i in range(1, 5):
        message[1 + i] = data[i]
    digest = hmac_sha256(key, message)
    return (digest[0] << 16) | (digest[1] << 8) | digest[2]


def newer(value, newest):
    """True when the 24-bit freshness value lies after newest (within half the range)."""
    return 0 < ((value - newest) & 0xFFFFFF) < 0x800000


def parse_key(text):
    """The command key from its hex text: bytes, or None for an empty text; ValueError if
    it is not 32..128 hex digits."""
    if not text:
        return None
    if len(text) % 2 or not 32 <= len(text) <= 128:
        raise ValueError("command_key must be 32..128 hex digits (16..64 bytes)")
    out = bytearray(len(text) // 2)
    for i in range(len(out)):
        out[i] = int(text[2 * i : 2 * i + 2], 16)
    return bytes(out)
