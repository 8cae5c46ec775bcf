"""The method's command-line flags, generated from :class:`~napari_resfuse.FusionOptions`.

Every field of ``FusionOptions`` is one flag, ``--field-name``, whose choices, help and default
come from the field (its ``metadata``: ``help``, ``choices``, ``type``, ``metavar`` for a pair,
``separator`` for a list), so the command line cannot drift from the API.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ..options import FusionOptions

__all__ = ["add_fusion_options", "options_from_args"]


def _flag(field: dataclasses.Field) -> str:
    return "--" + field.name.replace("_", "-")


def add_fusion_options(parser: argparse.ArgumentParser) -> None:
    """The FusionOptions fields as command-line flags (shared by sub-commands that fuse)."""
    group = parser.add_argument_group("method options (defaults: METHOD.md, the paper)")
    for field in dataclasses.fields(FusionOptions):
        meta = field.metadata
        kwargs: dict[str, Any] = {"default": field.default, "dest": field.name}
        help_text = meta["help"]
        if "choices" in meta:
            kwargs["choices"] = meta["choices"]
        if "metavar" in meta:  # a pair of numbers
            kwargs.update(nargs=len(meta["metavar"]), metavar=meta["metavar"])
        if "type" in meta:
            kwargs["type"] = meta["type"]
        elif field.type in ("int", int):
            kwargs["type"] = int
        if field.default is not None and "(default" not in help_text:
            help_text += " (default: %(default)s)"
        kwargs["help"] = help_text
        group.add_argument(_flag(field), **kwargs)


def options_from_args(args: argparse.Namespace) -> FusionOptions:
    """The :class:`FusionOptions` of parsed flags (see :func:`add_fusion_options`)."""
    values = {}
    for field in dataclasses.fields(FusionOptions):
        value = getattr(args, field.name)
        separator = field.metadata.get("separator")
        if value is not None and separator is not None:
            value = tuple(part.strip() for part in value.split(separator) if part.strip()) or None
        elif isinstance(value, list):
            value = tuple(value)
        values[field.name] = value
    return FusionOptions(**values)
