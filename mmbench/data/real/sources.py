"""Where each real dataset's source files come from, and the bytes they must have.

Every file is pinned by the public repository, the commit and the path it was taken from
(``shared/data/README.md`` gives the provenance), and by its sha256, computed from the files in
``shared/data`` and checked against the git blobs at those commits. The local layout is
``<root>/<family>/<owner>_<repo>/<path>``; ``fetch`` writes the same layout under the cache.

The two ``*_std_folds.json`` files are not in any repository as JSON: the SDK ships them as Python
modules of list literals. Their URL is the module; ``fetch`` reads its literals with
``ast.literal_eval`` (no code runs) and writes ``json.dumps(folds, indent=0)`` in train, valid, test
order, which reproduces the pinned bytes exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

_RAW = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class SourceFile:
    """One pinned source file.

    Attributes:
        relpath: path in the local layout (``mosi/<owner>_<repo>/...``), '/'-separated.
        repo: ``owner/name`` on GitHub.
        commit: a commit holding the file.
        repo_path: the file's path in that repository.
        sha256: hex digest of the file's bytes in the local layout (after ``transform``).
        transform: how downloaded bytes become the local file: ``None`` (as is) or ``"py_folds"``.
    """

    relpath: str
    repo: str
    commit: str
    repo_path: str
    sha256: str
    transform: Literal["py_folds"] | None = None

    @property
    def url(self) -> str:
        """The raw GitHub URL of the file at its pinned commit."""
        return f"{_RAW}/{self.repo}/{self.commit}/{self.repo_path}"


_BCLSTM_REPO = "declare-lab/contextual-utterance-level-multimodal-sentiment-analysis"
_BCLSTM_COMMIT = "3874cf25a7fbda75df27ee65b297afa781d7f32c"
_BCLSTM_DIR = "mosi/declare-lab_contextual-utterance-level-multimodal-sentiment-analysis"
_SDK_REPO = "A2Zadeh/CMU-MultimodalSDK"
_SDK_HEAD = "fd18d71dc26b4d834480306c2ce1a903b8a8ff70"
_SDK_FOLDS = "mmsdk/mmdatasdk/dataset/standard_datasets"


def _bclstm(path: str, sha256: str) -> SourceFile:
    return SourceFile(f"{_BCLSTM_DIR}/{path}", _BCLSTM_REPO, _BCLSTM_COMMIT, path, sha256)


def _catalogue() -> list[SourceFile]:
    files = [
        _bclstm(path, sha) for path, sha in (
            ("data/transcripts.csv", "e7689e6d70720addd2a6b316419d245a68839c32b014ff426c406063ee777466"),
            ("data/text_train.csv", "73770b6302ad0f7a51f4eddcae6788efde4d0b6802e09f78249d5b538d1c1d67"),
            ("data/text_test.csv", "f3b735070bf07ceff7a6ef6c8f4c32757e988de484e35bd6d38b2aecef851a59"),
            ("data/text/text_train0.csv", "cc327045db6cc361a08b4037b97bb24de4ddb5efb381468c4835cc4a60674668"),
            ("data/text/text_test0.csv", "a343e22272919d1384c2075dbcdd5fef5aa9f9366b0552a83f7c3147b64b047a"),
            ("data/audio/audio_train0.csv", "5435398a54664e7b00304587dc59ae84a438852be033c2a2fba779588624a2a1"),
            ("data/audio/audio_test0.csv", "ddd17eeefd3d951d51d4e2ef8a0d132652d8161e1886f71eb7262b7a14bffff6"),
            ("data/video/video_train0.csv", "b6efc0413132d627efd06f67f1706830e775e90af9a75696f535c48dbc73f12f"),
            ("data/video/video_test0.csv", "cab836253d81100f59d533fa2ff65cd53c486be3ec9fd82203c5e25a7a77265f"),
            ("input/audio.pickle", "2093cef26de55e2a943600b711d388d6a1d621ce765d00e1a203ef2c52610978"),
        )
    ]
    files += [
        SourceFile("mosi/worldreboot_audio-text-sentiment-analysis/CMU_MOSI_Opinion_Labels.csd",
                   "worldreboot/audio-text-sentiment-analysis", "371b6519de021908abdd398bdcc7067b5927b49a",
                   "cmumosi/CMU_MOSI_Opinion_Labels.csd",
                   "aef5f4617cdb067cc7606bb798eb6452c3de45f0f21cb3427be33c4d8c7fe852"),
        SourceFile("mosi/Justin1904_CMU-MultimodalSDK-Tutorials/CMU_MOSI_ModifiedTimestampedWords.csd",
                   "Justin1904/CMU-MultimodalSDK-Tutorials", "78b3c16cbefdad812e9455cc29b9cc62ae1a2a49",
                   "data/CMU_MOSI_ModifiedTimestampedWords.csd",
                   "181272eb7ea3654941b7834604d0a61314368f4085668afae9f04c42a4610dee"),
        SourceFile("mosi/ASA-MOSI_Audio-Sentiment-Analysis/OpinionLevelSentiment.csv",
                   "ASA-MOSI/Audio-Sentiment-Analysis", "f929b58ccc3cbbca14a21613d7ba259f32ca30c8",
                   "OpinionLevelSentiment.csv",
                   "5af5525f6c2c70a24c2fb8bda6c67dee37183f6f588955e753f0bd4fd6f9523a"),
        SourceFile("mosi/jiangbing22_MMCPanda/label.csv",
                   "jiangbing22/MMCPanda", "3e568e4da552a9d0c61bf61761c73a06acd0eda4", "data/mosi/label.csv",
                   "74c52aba8884cca3f77962310c41f31d3d6250c4e4b50fd77fd4efe4eb75a521"),
        SourceFile("mosi/A2Zadeh_CMU-MultimodalSDK/cmu_mosi_std_folds.json", _SDK_REPO, _SDK_HEAD,
                   f"{_SDK_FOLDS}/CMU_MOSI/cmu_mosi_std_folds.py",
                   "e8cd3dff061c8054eede9c7a270a57060a6b9148932a9b611a02cf980882530f", transform="py_folds"),
        SourceFile("mosi/A2Zadeh_CMU-MultimodalSDK/CMU_MOSI_p2fa.csv", _SDK_REPO,
                   "e53dc28b2b257b2341c11799a15a5a5468cd4230", "configs/CMU_MOSI_p2fa.csv",
                   "7d7055371d4d1f0ac21cf47f5d3e86833a5d6497f2c7d58406e78466fb1d15ab"),
        SourceFile("mosei/ailiwood_mme_0621/label.csv",
                   "ailiwood/mme_0621", "0c3bbfaf149fb02e5149663f2e9b32823109869f", "data/mosei/label.csv",
                   "74a195945e28c1bbc45b6d279a99655d163f33d2c28b0c723ddba87bfbb97bfa"),
        SourceFile("mosei/A2Zadeh_CMU-MultimodalSDK/cmu_mosei_std_folds.json", _SDK_REPO, _SDK_HEAD,
                   f"{_SDK_FOLDS}/CMU_MOSEI/cmu_mosei_std_folds.py",
                   "b58e6ab8cd847c39288bcd4212c68317609d2815f3b385adf852dfe3ad3a166c", transform="py_folds"),
        SourceFile("sims/spp72kimo_chsims_v2/fusion_Video_videoMAE_with_labels.csv",
                   "spp72kimo/chsims_v2", "ffbb38953b74aecb87427970c071e35d14a03742",
                   "inference_data/fusion_Video_videoMAE_with_labels.csv",
                   "690eebaea55a5026a5bea9801625b5002d3e3d3711dc4228ed1735a44c02046c"),
    ]
    files += [
        SourceFile(f"mosi/thuiar_Cross-Modal-BERT/{split}.tsv", "thuiar/Cross-Modal-BERT",
                   "3e44dce6b00431f88f8d5de12bef9706116fa97b", f"data/text/{split}.tsv", sha)
        for split, sha in (("train", "45ed01aa7225c7864c60575938d546cb40b316fce5017d9cc2400ceb5dc423c7"),
                           ("dev", "182523735663ed435e224ab88076363765b47afe35ce78cc11c47e2e490aad4c"),
                           ("test", "20fdfec92624b7e0aaa86330296c045869dd7c473b69f263f437fa7bfb07ba5c"))
    ]
    return files


#: Every pinned real file, by its relative path in the layout.
SOURCE_FILES: dict[str, SourceFile] = {f.relpath: f for f in _catalogue()}

# The files each dataset reads (named by role, so the builders never retype a path).
BCLSTM_TRANSCRIPTS = f"{_BCLSTM_DIR}/data/transcripts.csv"
BCLSTM_TEXT = {split: f"{_BCLSTM_DIR}/data/text_{split}.csv" for split in ("train", "test")}
BCLSTM_AUDIO = {split: f"{_BCLSTM_DIR}/data/audio/audio_{split}0.csv" for split in ("train", "test")}
BCLSTM_VIDEO = {split: f"{_BCLSTM_DIR}/data/video/video_{split}0.csv" for split in ("train", "test")}
MOSI_OPINION_CSV = "mosi/ASA-MOSI_Audio-Sentiment-Analysis/OpinionLevelSentiment.csv"
MOSI_OPINION_CSD = "mosi/worldreboot_audio-text-sentiment-analysis/CMU_MOSI_Opinion_Labels.csd"
MOSI_FOLDS = "mosi/A2Zadeh_CMU-MultimodalSDK/cmu_mosi_std_folds.json"
MOSEI_LABELS = "mosei/ailiwood_mme_0621/label.csv"
MOSEI_FOLDS = "mosei/A2Zadeh_CMU-MultimodalSDK/cmu_mosei_std_folds.json"
SIMS2_TABLE = "sims/spp72kimo_chsims_v2/fusion_Video_videoMAE_with_labels.csv"

_DATASET_FILES: dict[str, tuple[str, ...]] = {
    "mosi-bclstm": (BCLSTM_TRANSCRIPTS, *BCLSTM_TEXT.values(), *BCLSTM_AUDIO.values(), *BCLSTM_VIDEO.values(),
                    MOSI_OPINION_CSV, MOSI_OPINION_CSD),
    "mosi-text": (BCLSTM_TRANSCRIPTS, MOSI_OPINION_CSV, MOSI_FOLDS),
    "mosei-text": (MOSEI_LABELS, MOSEI_FOLDS),
    "sims2-synth": (SIMS2_TABLE,),
}

#: Registered real dataset -> its source files, sorted by relative path.
REAL_SOURCES: dict[str, tuple[SourceFile, ...]] = {
    name: tuple(SOURCE_FILES[p] for p in sorted(paths)) for name, paths in _DATASET_FILES.items()
}


def sources_of(name: str) -> tuple[SourceFile, ...]:
    """The source files of the real dataset ``name``.

    Raises:
        KeyError: ``name`` is not a real dataset; the message lists those that are.
    """
    try:
        return REAL_SOURCES[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a real dataset built from source files; "
                       f"real datasets: {', '.join(REAL_SOURCES)}") from None
