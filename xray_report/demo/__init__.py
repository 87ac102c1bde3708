"""Gradio dashboard of the report model (optional ``demo`` extra): ``python -m xray_report.demo.app --model DIR``."""
