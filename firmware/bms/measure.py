"""One pass over the hardware readings: extremes, sums and which readings are usable.

Protection and the CAN reports both read the Summary, so each cycle looks at every cell
and sensor once. A reading is usable when it is available and inside its sensor's
physical range, and for a cell, when the monitor found no open sense wire; anything else is
a sensor problem (broken sense wire, open or shorted thermistor), not a battery state.
"""

from bms.compat import const
from bms.hw import NOT_AVAILABLE

# Physical ranges of the sensors (not battery limits).
CELL_MV_MIN = const(100)
CELL_MV_MAX = const(5500)
TEMP_DC_MIN = const(-550)
TEMP_DC_MAX = const(1500)


class Summary:
    """Extremes of one sample. Cell and sensor numbers are 1-based, 0 = none usable."""

    def __init__(self):
        self.cell_min_mv = 0
        self.cell_min_no = 0
        self.cell_max_mv = 0
        self.cell_max_no = 0
        self.cell_mean_mv = 0
        self.cell_sum_mv = 0
        self.cells_bad = 0  # cells without a usable reading
        self.temp_min_dc = 0
        self.temp_min_no = 0
        self.temp_max_dc = 0
        self.temp_max_no = 0
        self.temps_bad = 0
        self.pack_ok = False
        self.current_ok = False
        self.balancer_ok = False

    def update(self, hw):
        """Summarise the readings of hw (see bms.hw)."""
        cells = hw.cell_mv
        n = hw.cells
        open_wire = hw.open_wire
        # Usually every cell is usable: then the built-ins find the extremes and the sum
        # without a bytecode per cell (index() gives the first cell of an extreme, as the
        # loop below does). They iterate a list without allocating.
        if n and not open_wire and len(cells) == n:
            lo = min(cells)
            hi = max(cells)
            usable = lo >= CELL_MV_MIN and hi <= CELL_MV_MAX
        else:
            usable = False
        if usable:
            lo_no = cells.index(lo) + 1
            hi_no = cells.index(hi) + 1
            total = sum(cells)
            bad = 0
        else:
            lo_no = hi_no = 0
            # Start beyond the range, so the first usable cell sets both extremes.
            lo = CELL_MV_MAX + 1
            hi = CELL_MV_MIN - 1
            total = 0
            bad = 0
            for i in range(n):
                mv = cells[i]
                if mv < CELL_MV_MIN or mv > CELL_MV_MAX or (open_wire and (open_wire >> i) & 1):
                    bad += 1  # no usable reading: an open sense wire reads a plausible lie
                    continue
                total += mv
                if mv < lo:
                    lo = mv
                    lo_no = i + 1
                if mv > hi:
                    hi = mv
                    hi_no = i + 1
            if lo_no == 0:
                lo = hi = 0
        self.cell_min_mv = lo
        self.cell_min_no = lo_no
        self.cell_max_mv = hi
        self.cell_max_no = hi_no
        self.cell_sum_mv = total
        self.cells_bad = bad
        good = n - bad
        self.cell_mean_mv = total // good if good else 0

        temps = hw.temp_dc
        n = hw.temps
        if n and len(temps) == n:
            lo = min(temps)
            hi = max(temps)
            usable = lo >= TEMP_DC_MIN and hi <= TEMP_DC_MAX
        else:
            usable = False
        if usable:  # as for the cells
            lo_no = temps.index(lo) + 1
            hi_no = temps.index(hi) + 1
            bad = 0
        else:
            lo_no = hi_no = 0
            lo = hi = 0
            bad = 0
            for i in range(n):
                dc = temps[i]
                if not TEMP_DC_MIN <= dc <= TEMP_DC_MAX:
                    bad += 1
                    continue
                if lo_no == 0 or dc < lo:
                    lo = dc
                    lo_no = i + 1
                if hi_no == 0 or dc > hi:
                    hi = dc
                    hi_no = i + 1
        self.temp_min_dc = lo
        self.temp_min_no = lo_no
        self.temp_max_dc = hi
        self.temp_max_no = hi_no
        self.temps_bad = bad

        self.pack_ok = hw.pack_mv != NOT_AVAILABLE and hw.pack_mv >= 0
        self.current_ok = hw.current_ma != NOT_AVAILABLE
        self.balancer_ok = TEMP_DC_MIN <= hw.balancer_temp_dc <= TEMP_DC_MAX
