"""The stream framer on what a serial line delivers: noise, pieces, corrupted checksums
(exercised with the JBD document's frame, whose framer has the shared logic)."""

from __future__ import annotations

from gateway.sources.packs import jbd
from tests.sources.test_jbd import DOC_BASIC, DOC_CELLS


def test_garbage_before_a_frame_is_skipped_and_counted() -> None:
    framer = jbd.JbdFramer()
    assert framer.feed(b"\x00\x01noise" + DOC_BASIC) == [DOC_BASIC]
    assert framer.skipped == 7 and framer.bad == 0 and framer.pending == 0


def test_a_frame_split_byte_by_byte_comes_out_once_whole() -> None:
    framer = jbd.JbdFramer()
    out = [f for byte in DOC_CELLS for f in framer.feed(bytes((byte,)))]
    assert out == [DOC_CELLS]


def test_a_truncated_frame_is_held_and_dropped_when_the_next_one_shows_it_wrong() -> None:
    framer = jbd.JbdFramer()
    assert framer.feed(DOC_BASIC[:20]) == []
    assert framer.pending == 20
    # The rest never came; the next answer follows. The held start fails its checksum and
    # the real frame behind it is found.
    assert framer.feed(DOC_CELLS + DOC_BASIC) == [DOC_CELLS, DOC_BASIC]
    assert framer.bad == 1


def test_a_wrong_checksum_drops_the_frame_and_is_counted() -> None:
    bad = bytearray(DOC_BASIC)
    bad[-2] ^= 0x01
    framer = jbd.JbdFramer()
    assert framer.feed(bytes(bad) + DOC_CELLS) == [DOC_CELLS]
    assert framer.bad == 1


def test_a_stray_start_byte_in_noise_does_not_swallow_the_frame() -> None:
    framer = jbd.JbdFramer()
    # 0xDD followed by what cannot be a status byte, then a real frame.
    assert framer.feed(b"\xdd\x03\x42\xff" + DOC_BASIC) == [DOC_BASIC]


def test_endless_noise_is_bounded() -> None:
    framer = jbd.JbdFramer()
    for _ in range(100):
        framer.feed(bytes(range(0x20, 0x70)) * 10)
    assert framer.pending == 0 and framer.skipped == 100 * 800
