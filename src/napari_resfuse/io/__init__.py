"""The file layer: reading and writing images, finding pairs, writing safely.

- :mod:`.images`: :func:`read_image`, :func:`write_image` (atomic), bit depths.
- :mod:`.pairs`: :func:`find_pairs`, the one pairing rule of every command.
- :mod:`.results`: :func:`write_result` and :func:`output_name`, a fusion result on disk.
- :mod:`.files`: :func:`atomic_path` (every write of the package goes through it) and
  :func:`check_not_inputs` (an output never replaces an input).
"""

from __future__ import annotations

from .files import (
    PARTIAL_MARK,
    OutputIsInputError,
    atomic_path,
    check_not_inputs,
    check_writable_folder,
    os_error_text,
    write_text_atomic,
)
from .images import (
    IMAGE_SUFFIXES,
    TIFF_SUFFIXES,
    check_output_format,
    from_unit_range,
    output_dtype,
    read_image,
    write_image,
)
from .pairs import (
    INFRARED_FOLDER_NAMES,
    VISIBLE_FOLDER_NAMES,
    Pair,
    Pairs,
    find_pairs,
    image_files,
    natural_key,
    sub_folders,
)
from .results import output_name, write_result

__all__ = [
    "IMAGE_SUFFIXES",
    "INFRARED_FOLDER_NAMES",
    "PARTIAL_MARK",
    "TIFF_SUFFIXES",
    "VISIBLE_FOLDER_NAMES",
    "OutputIsInputError",
    "Pair",
    "Pairs",
    "atomic_path",
    "check_not_inputs",
    "check_output_format",
    "check_writable_folder",
    "find_pairs",
    "from_unit_range",
    "image_files",
    "natural_key",
    "os_error_text",
    "output_dtype",
    "output_name",
    "read_image",
    "sub_folders",
    "write_image",
    "write_result",
    "write_text_atomic",
]
