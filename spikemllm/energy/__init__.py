"""Energy accounting: tables of pJ per operation and per byte (with sources), counts per layer and modality from
a real run (``spikemllm.collect_stats``) or from shapes, and a report of FP16 against spiking energy with and
without memory traffic."""
from .counting import LayerCount, ModalityCount, count_linear, counts_from_stats, counts_from_workload
from .report import EnergyOptions, EnergyReport, EnergyRow, energy_report
from ..costs import HOROWITZ_45NM, TABLE_28NM, TABLES, EnergyTable, get_table, int_add_pj, scale_table

__all__ = ["LayerCount", "ModalityCount", "count_linear", "counts_from_stats", "counts_from_workload",
           "EnergyOptions", "EnergyReport", "EnergyRow", "energy_report", "HOROWITZ_45NM", "TABLE_28NM", "TABLES",
           "EnergyTable", "get_table", "int_add_pj", "scale_table"]
