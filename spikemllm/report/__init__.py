"""Reports: measured settings, the recipe's cached calibration, tables, plots and the HTML page of a run."""
from .html import Section, Table, write_report
from .measure import Setting, SettingResult, cost_summary, run_setting

__all__ = ["Section", "Setting", "SettingResult", "Table", "cost_summary", "run_setting", "write_report"]
