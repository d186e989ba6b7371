"""Loading the generated datasets: a pickle made by another generator version is never reused."""
from __future__ import annotations

import mmbench.data.synthetic as synthetic
from mmbench.data.loading import load_dataset


def test_a_new_generator_version_regenerates_the_synthetic_pickle(tmp_path, monkeypatch):
    """The generated pickle is cached on disk: a stale one would carry the old data and data hash on."""
    calls = []
    generate = synthetic.generate_bundle

    def counting(*args, **kwargs):
        calls.append(synthetic.GENERATOR_VERSION)
        return generate(*args, **kwargs)

    monkeypatch.setattr(synthetic, "generate_bundle", counting)
    first = load_dataset("mosi-synth", data_dir=tmp_path)
    assert first.provenance == "synthetic" and first.quality == {}  # generated data need no repair
    assert load_dataset("mosi-synth", data_dir=tmp_path).source_sha256 == first.source_sha256
    assert calls == [synthetic.GENERATOR_VERSION]  # the second load reused the file

    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + 1)
    load_dataset("mosi-synth", data_dir=tmp_path)
    assert calls == [synthetic.GENERATOR_VERSION - 1, synthetic.GENERATOR_VERSION]
