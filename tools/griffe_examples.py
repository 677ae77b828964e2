"""Griffe extension for the API reference (mkdocs.yml): read ``Example:`` as an examples section.

aejax's docstrings head their doctests with the singular ``Example:``. Griffe's Google parser only
knows the plural ``Examples:`` as a section and turns the singular into an admonition whose body is
rendered as Markdown, so ``>>>`` lines become nested block quotes and outputs such as ``[0.5, 0.34]``
are taken for reference links. This extension renames the heading in the loaded docstring text (the
source files are not touched), so the examples render as highlighted Python code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_HEADING = re.compile(r"^([ \t]*)Example:[ \t]*$", re.MULTILINE)


class ExamplesSection(griffe.Extension):
    """Rewrite a line that is exactly ``Example:`` to ``Examples:`` in every docstring."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:  # noqa: D102
        if obj.docstring is not None:
            obj.docstring.value = _HEADING.sub(r"\1Examples:", obj.docstring.value)

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:  # noqa: D102
        self.on_object(obj=pkg)  # the top-level package itself is not passed to on_object
