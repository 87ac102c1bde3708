"""Gradio dashboard of the report model (optional ``demo`` extra): ``python -m demo.app --model DIR``."""
