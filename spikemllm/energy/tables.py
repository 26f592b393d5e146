"""The energy tables, where ``spikemllm.energy.tables`` has always been: they live in :mod:`spikemllm.costs`
(shared with the hardware model, so neither package imports the other)."""
from ..costs import HOROWITZ_45NM, TABLE_28NM, TABLES, EnergyTable, get_table, int_add_pj, scale_table

__all__ = ["EnergyTable", "HOROWITZ_45NM", "TABLE_28NM", "scale_table", "int_add_pj", "get_table", "TABLES"]
