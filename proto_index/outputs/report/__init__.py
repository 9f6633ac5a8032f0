"""The review report: a static HTML folder (summary, rows with audio and spectrograms, review mode)."""
from proto_index.outputs.report.build import DEFAULT_PER_LABEL, ReportOptions, ReportResult, build_report

__all__ = ["DEFAULT_PER_LABEL", "ReportOptions", "ReportResult", "build_report"]
