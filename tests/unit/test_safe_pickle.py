"""The restricted unpickler: numpy and plain containers load, anything that could run code is refused."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from mmbench.data.safe_pickle import DataFormatError, RestrictedUnpickler, UnsafePickleError, safe_load

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
PY2_AUDIO_PICKLE = (SHARED_DATA / "mosi" / "declare-lab_contextual-utterance-level-multimodal-sentiment-analysis"
                    / "input" / "audio.pickle")


def _write(tmp_path: Path, content: bytes, name: str = "file.pkl") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _sample_content() -> dict:
    return {
        "features": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        "big": np.linspace(0, 1, 5000),  # large enough for numpy's no-copy setstate path
        "ids": np.array(["a$_$1", "b$_$2"], dtype=object),
        "unicode": np.array(["x", "yz"]),
        "scalar": np.float32(1.5),
        "int_scalar": np.int64(7),
        "dtype": np.dtype("float32"),
        "containers": [(1, 2.0, "three", b"four", None, True), {5, 6}, frozenset({7}), 1 + 2j],
    }


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_arrays_scalars_and_containers_load_under_every_protocol(tmp_path, protocol):
    content = _sample_content()
    loaded = safe_load(_write(tmp_path, pickle.dumps(content, protocol=protocol)))
    assert loaded.keys() == content.keys()
    for key in ("features", "big", "ids", "unicode"):
        np.testing.assert_array_equal(loaded[key], content[key])
        assert loaded[key].dtype == content[key].dtype
    assert loaded["scalar"] == np.float32(1.5) and isinstance(loaded["scalar"], np.float32)
    assert loaded["int_scalar"] == 7 and loaded["dtype"] == np.dtype("float32")
    assert loaded["containers"] == content["containers"]


class _CreatesFile:
    """Unpickling this would call open(target, "w") and so create the file."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


class _RunsCommand:
    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_a_pickle_that_would_create_a_file_is_refused_and_creates_nothing(tmp_path, protocol):
    target = tmp_path / "pwned.txt"
    path = _write(tmp_path, pickle.dumps({"train": [np.zeros(3), _CreatesFile(target)]}, protocol=protocol))
    with pytest.raises(UnsafePickleError) as caught:
        safe_load(path)
    assert not target.exists()
    assert caught.value.file == str(path)
    assert caught.value.global_name == "io.open"  # where builtins.open lives
    assert str(path) in str(caught.value) and "io.open" in str(caught.value)


def test_a_pickle_that_would_run_a_shell_command_is_refused(tmp_path):
    target = tmp_path / "pwned-by-shell.txt"
    path = _write(tmp_path, pickle.dumps(_RunsCommand(target), protocol=2))
    with pytest.raises(UnsafePickleError) as caught:
        safe_load(path)
    assert not target.exists()
    assert caught.value.global_name.endswith(".system")


@pytest.mark.parametrize("module, name", [
    ("numpy", "load"),  # a numpy global outside the allow-list
    ("numpy", "ndarray.__reduce__"),  # dotted attribute walk (protocol 4 allows it in plain pickle)
    ("__builtin__", "eval"),  # Python-2 name of builtins
    ("builtins", "getattr"),
    ("copyreg", "__newobj__"),
])
def test_other_globals_are_refused_by_name(tmp_path, module, name):
    crafted = b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n)R."
    with pytest.raises(UnsafePickleError) as caught:
        safe_load(_write(tmp_path, crafted))
    assert caught.value.global_name == f"{module}.{name}"
    assert isinstance(caught.value, DataFormatError) and isinstance(caught.value, ValueError)


def test_python2_builtin_module_name_is_mapped(tmp_path):
    crafted = b"\x80\x02c__builtin__\nset\n]q\x00(K\x01K\x02e\x85R."
    assert safe_load(_write(tmp_path, crafted)) == {1, 2}


def test_codecs_encode_is_limited_to_latin1(tmp_path):
    allowed = pickle.dumps(b"\xffbytes", protocol=2)  # protocol 2 stores bytes via _codecs.encode(.., latin1)
    assert b"_codecs" in allowed
    assert safe_load(_write(tmp_path, allowed, "ok.pkl")) == b"\xffbytes"
    crafted = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(DataFormatError, match="rot13"):
        safe_load(_write(tmp_path, crafted, "bad.pkl"))


def _renamed_in_protocol5(content: bytes) -> bytes:
    """Protocol 5 names _frombuffer with a length-prefixed string inside a length-prefixed frame:
    rename numpy._core.numeric to numpy 1's numpy.core.numeric and fix both lengths."""
    assert content[2:3] == b"\x95", "expected one frame after the protocol header"
    body = content[11:]
    old, new = b"\x8c\x13numpy._core.numeric", b"\x8c\x12numpy.core.numeric"
    assert old in body
    frame_length = int.from_bytes(content[3:11], "little") - (len(old) - len(new))
    return content[:3] + frame_length.to_bytes(8, "little") + body.replace(old, new)


def test_numpy1_and_numpy2_module_paths_both_load(tmp_path):
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    proto2 = pickle.dumps({"a": array, "s": np.float32(2.0)}, protocol=2)
    variants = [proto2.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"),
                proto2.replace(b"numpy.core.multiarray", b"numpy._core.multiarray")]
    variants.append(_renamed_in_protocol5(pickle.dumps(array, protocol=5)))
    assert b"numpy.core.multiarray" in variants[0] and b"numpy.core.numeric" in variants[2]
    for index, content in enumerate(variants):
        loaded = safe_load(_write(tmp_path, content, f"v{index}.pkl"))
        np.testing.assert_array_equal(loaded["a"] if isinstance(loaded, dict) else loaded, array)


def test_python2_protocol2_pickle_from_the_real_data_loads_with_latin1():
    assert PY2_AUDIO_PICKLE.is_file(), f"real data file missing: {PY2_AUDIO_PICKLE}"
    train_x, train_y, test_x, test_y, max_len, train_lengths, test_lengths = safe_load(
        PY2_AUDIO_PICKLE, encoding="latin1")
    assert train_x.shape == (62, 63, 73) and train_x.dtype == np.float64
    assert test_x.shape == (31, 63, 73) and train_y.shape == (62, 63) and test_y.shape == (31, 63)
    assert max_len == 63
    assert sum(train_lengths) == 1447 and sum(test_lengths) == 752
    assert np.isfinite(train_x).all()


def test_python2_pickle_without_latin1_gives_a_clear_error():
    with pytest.raises(DataFormatError, match="latin1") as caught:
        safe_load(PY2_AUDIO_PICKLE)
    assert str(PY2_AUDIO_PICKLE) in str(caught.value)


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.9])
def test_truncated_pickle_is_a_data_format_error_naming_the_file(tmp_path, keep):
    content = pickle.dumps(_sample_content(), protocol=4)
    path = _write(tmp_path, content[: int(len(content) * keep)])
    with pytest.raises(DataFormatError, match="truncated") as caught:
        safe_load(path)
    assert str(path) in str(caught.value)


def test_not_a_pickle_is_a_data_format_error(tmp_path):
    path = _write(tmp_path, b"this is a text file, not a pickle\n")
    with pytest.raises(DataFormatError) as caught:
        safe_load(path)
    assert str(path) in str(caught.value)


def test_unpickler_can_be_used_on_a_stream(tmp_path):
    path = _write(tmp_path, pickle.dumps([np.ones(2)], protocol=4))
    with open(path, "rb") as handle:
        loaded = RestrictedUnpickler(handle, path=path).load()
    np.testing.assert_array_equal(loaded[0], np.ones(2))
