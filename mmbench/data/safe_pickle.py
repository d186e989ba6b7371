"""Restricted unpickling for untrusted feature files.

A pickle can name any importable callable and have the loader call it, so a feature file found on a
drive or in a repository could run code the moment it is opened. Every pickle mmbench reads goes through
:func:`safe_load`, whose :class:`RestrictedUnpickler` resolves only the globals needed to rebuild numpy
arrays, numpy dtypes and scalars, and plain containers; any other global is refused before it is
imported, with an error naming the file and the global.

The allow-list covers the module paths of numpy 1.x (``numpy.core.*``) and numpy 2.x (``numpy._core.*``),
so files written under either load under either, and the Python-2 names (``__builtin__``,
``copy_reg``) of protocol-2 pickles, which need ``encoding="latin1"`` to rebuild their numpy arrays.
"""
from __future__ import annotations

import codecs
import collections
import copyreg
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

try:  # numpy >= 2 keeps the implementation in numpy._core; numpy.core is a deprecated shim there
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]


class DataFormatError(ValueError):
    """A data file is unreadable or malformed; the message names the file, the split and the field.

    Re-exported as :class:`mmbench.data.formats.DataFormatError`; defined here, the lowest layer, so that
    unpickling errors are of the same type as the readers' errors.
    """


class UnsafePickleError(DataFormatError):
    """A pickle asked for a global outside the allow-list; nothing it names was imported or called.

    Attributes:
        file: the pickle's path (or ``"<stream>"``).
        global_name: the refused global as ``module.name``.
    """

    def __init__(self, file: str, global_name: str) -> None:
        self.file = file
        self.global_name = global_name
        super().__init__(
            f"{file}: refused to load global {global_name!r}: feature pickles may only hold numpy arrays, "
            f"numpy dtypes and scalars, and plain containers (this file may have been crafted to run code)"
        )


_LATIN1_NAMES = frozenset({"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "l1"})


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` limited to latin-1: how protocols 0-2 store ``bytes`` in Python 3."""
    if encoding.lower() not in _LATIN1_NAMES:
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return codecs.encode(text, encoding, errors)


#: (module, name) -> object. Exact names only: dotted names (``ndarray.__new__``) are refused too.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytes"): bytes,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "complex"): complex,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
    # Rebuilds instances of classes that pickled with protocol < 2; its class arguments must
    # themselves pass this table, so it can only make numpy/builtin containers.
    ("copyreg", "_reconstructor"): copyreg._reconstructor,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_module, "_reconstruct")] = _multiarray._reconstruct  # ndarray.__reduce__
    _ALLOWED[(_module, "scalar")] = _multiarray.scalar  # numpy scalars (np.float32(1.0), ...)
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_module, "_frombuffer")] = _numeric._frombuffer  # ndarray.__reduce_ex__(5)

#: Python-2 module names, mapped as pickle's own fix_imports would (find_class sees the raw names).
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allow-listed globals (numpy arrays/dtypes/scalars, containers).

    Args:
        file: a binary file object positioned at the pickle.
        path: the file's name for error messages.
        encoding: how to decode Python-2 ``str`` objects; ``"latin1"`` for Python-2 numpy pickles.
    """

    def __init__(self, file: BinaryIO, *, path: str | Path = "<stream>", encoding: str = "ASCII") -> None:
        super().__init__(file, encoding=encoding)
        self.path = str(path)

    def find_class(self, module: str, name: str) -> Any:
        """The allow-listed object for ``module.name``; anything else raises :class:`UnsafePickleError`."""
        key = (_PY2_MODULES.get(module, module), name)
        if key not in _ALLOWED:
            raise UnsafePickleError(self.path, f"{module}.{name}")
        return _ALLOWED[key]

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(self.path, f"persistent id {pid!r}")


def safe_load(path: str | Path, *, encoding: str = "ASCII") -> Any:
    """Load a pickle through :class:`RestrictedUnpickler`.

    Args:
        path: the pickle file.
        encoding: decoding of Python-2 ``str`` objects; pass ``"latin1"`` for Python-2 pickles holding
            numpy arrays (numpy's advice), which is harmless for Python-3 pickles.

    Returns:
        The unpickled object (numpy arrays, scalars, dicts, lists, tuples, str, numbers).

    Raises:
        UnsafePickleError: the pickle names a global outside the allow-list.
        DataFormatError: the file is truncated or not a pickle.
        FileNotFoundError: no such file.

    Example:
        >>> import pickle, tempfile, numpy as np
        >>> with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as handle:
        ...     pickle.dump({"x": np.arange(3)}, handle)
        >>> safe_load(handle.name)["x"].tolist()
        [0, 1, 2]
    """
    path = Path(path)
    with open(path, "rb") as handle:
        return _load_stream(handle, path, encoding)


def _load_stream(handle: BinaryIO, path: Path, encoding: str) -> Any:
    try:
        return RestrictedUnpickler(handle, path=path, encoding=encoding).load()
    except UnsafePickleError:
        raise
    except EOFError as err:
        raise DataFormatError(f"{path}: the pickle is truncated (ended early: {err or 'no data'})") from err
    except UnicodeDecodeError as err:
        raise DataFormatError(
            f"{path}: a Python-2 string could not be decoded as {encoding!r} ({err.reason}); "
            f"Python-2 pickles with numpy arrays load with encoding='latin1'"
        ) from err
    except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError) as err:
        # Corrupt or truncated data surfaces as any of these from the C unpickler or numpy's setstate.
        raise DataFormatError(f"{path}: not a readable pickle (truncated or corrupt?): "
                              f"{type(err).__name__}: {err}") from err

