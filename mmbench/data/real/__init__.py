"""Real datasets built from public source files (``mosi-bclstm``, ``mosi-text``, ``mosei-text``, ``sims2-synth``).

``fetch`` puts a dataset's pinned source files under the cache (downloaded, or copied with ``--from``),
``fetched_root`` finds them (or says which command to run), ``build_real`` turns them into a
:class:`~mmbench.data.types.DatasetBundle`. ``REAL_SOURCES`` lists each dataset's files.
"""
from mmbench.data.real.datasets import build_real
from mmbench.data.real.fetch import ChecksumError, DownloadError, NotFetchedError, fetch, fetched_root
from mmbench.data.real.sources import REAL_SOURCES, SOURCE_FILES, SourceFile

__all__ = ["REAL_SOURCES", "SOURCE_FILES", "ChecksumError", "DownloadError", "NotFetchedError", "SourceFile",
           "build_real", "fetch", "fetched_root"]
