"""What ``snakemake --report`` needs from Python (workflow/rules/report.smk registers it): a
figure directive that embeds its picture, for the report's front page
(workflow/report/workflow.rst).

Snakemake's own ``embeddedfigure`` directive leaves the file's path as the image's source (its
``run`` is Figure's: the embedding mixin's never runs), so in the self-contained HTML the
picture would be missing.
"""

from __future__ import annotations

import base64
import mimetypes

from docutils.parsers.rst import directives
from docutils.parsers.rst.directives.images import Figure

FIGURE_DIRECTIVE = "vadusa-figure"


class DataUriFigure(Figure):
    """``.. vadusa-figure:: PATH``: a figure whose image is the file itself, as a data URI
    (the path relative to the working directory, as Snakemake's report reads it)."""

    def run(self) -> list:
        path = self.arguments[0]
        mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
        with open(path, "rb") as f:
            data = base64.b64encode(f.read()).decode()
        self.options.setdefault("alt", path.rsplit("/", 1)[-1])  # not the whole data URI
        self.arguments[0] = f"data:{mime};base64,{data}"
        return super().run()


def register() -> None:
    directives.register_directive(FIGURE_DIRECTIVE, DataUriFigure)
