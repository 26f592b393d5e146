"""Reports: measured settings, plots and the HTML page of a run."""
from .html import write_report
from .measure import Setting, SettingResult, cost_summary, run_setting

__all__ = ["Setting", "SettingResult", "cost_summary", "run_setting", "write_report"]
