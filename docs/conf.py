"""Sphinx configuration of the zoo's documentation site: the Markdown pages of docs/ through
MyST. Built with warnings as errors, so a link to a missing page or heading fails the build."""

project = "zoo"
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
# Headings up to ### get anchors, so links such as training.md#precision are checked.
myst_heading_anchors = 3
html_theme = "furo"
html_title = "zoo"
