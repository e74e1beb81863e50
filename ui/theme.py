"""The app's theme: Gradio's default look with system font stacks only.

Gradio's built-in themes load their fonts (Source Sans Pro, IBM Plex Mono) from Google Fonts; an
offline machine (a lab, an air-gapped GPU box) then falls back glyph by glyph. System stacks need
no network and look native everywhere.
"""

from __future__ import annotations

import gradio as gr

SANS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "DejaVu Sans Mono", "monospace"]

OFFLINE_THEME = gr.themes.Default(font=SANS, font_mono=MONO)
