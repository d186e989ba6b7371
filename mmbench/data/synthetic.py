"""Deterministic synthetic data in the shape of MOSI, MOSEI and CH-SIMS (``mosi-synth`` ...).

The generated bundles have exactly MMSA's dims and padded lengths (``aligned_50.pkl`` for MOSI/MOSEI,
``unaligned_39.pkl`` for CH-SIMS), labels on the real label grids, ``raw_text`` and ``text_bert``, so
every reader, mask and method runs on them as on the real pickles. Everything comes from
``np.random.default_rng`` Generators seeded from ``seed`` (and the family), and no BLAS call touches the data (only
elementwise numpy), so one seed gives byte-identical arrays in any process.

Generative model (``synthesize_features``; also the feature model of the semi-synthetic datasets).
For sample i, modality m in {L, V, A} with D_m dims, padded length T_m and valid length l_i:

    s_im  = (2 S_im - (lo + hi)) / (hi - lo)                 sentiment driving m, scaled to [-1, 1]
    e_im  = s_im + tau_m * eps_im,    eps ~ N(0, 1)          how clearly m expresses it (private)
    z_i   ~ N(0, I_3)     (or the caller's shared_factor)    shared style / speaker factor
    p_im  ~ N(0, I_3)                                        private factor of m
    g_i(t) = (beta + exp(-(u_t - c_i)^2 / (2 omega^2))) / mean_t(...),   u_t = (t + 0.5) / l_i,
             c_i ~ U(0.35, 0.65), beta = 0.15, omega = 0.12  sentiment-bearing segment mid-sequence
    r_ik(t) = a_ik cos(2 pi f_k u_t + phi_ik), f = (0.5, 1, 1.5), a ~ N(0, 1)   smooth trajectory
    x_im(t) = mu_m + alpha_m (e_im g_i(t) + nu_m eta_it) w_m + gamma_m A_m z_i + rho_m B_m p_im
              + kappa_m C_m r_i(t) + sigma_m xi_it,    eta ~ N(0, 1), xi ~ N(0, I_D)
              for t < l_i, and 0 after (zero padding)

where mu_m ~ N(0, 0.5^2 I) (real features are not centred, so zero- and mean-imputation differ),
w_m, A_m, B_m, C_m have N(0, 1) entries and are drawn once per call (fixed per family and seed).
Strengths (``STRENGTHS``; tau and nu in scaled-sentiment units, the others per-dimension std):

    m   tau   alpha  gamma  rho   kappa  sigma  nu
    L   0.40  0.60   0.30   0.30  0.30   0.60   0.70    language: the clearest sentiment
    V   0.80  0.50   0.30   0.35  0.30   0.70   0.70    vision: weaker
    A   0.90  0.50   0.30   0.35  0.30   0.70   0.70    audio: weakest

A linear readout of the time-averaged features recovers e_m up to the mixing with z, p and r (which
matters only when D_m is small, e.g. MOSI audio with D = 5), so a modality alone explains about
var(s) / (var(s) + tau_m^2) of the label variance; the three together average their independent
eps, so they beat any single one; and z plus the shared sentiment make each modality partly
predictable from the other two. The per-step sentiment noise eta averages out over a whole sequence
but not over a few steps, and g is small away from c_i, so the middle steps carry most of the usable
signal and dropping frames costs information. Measured with ridge regression on time-averaged
features (small MOSI, seed 0, test R^2): L 0.62, V 0.31, A 0.23, LVA 0.70; each modality from the
other two 0.31 to 0.35. ``tests/unit/test_synthetic.py`` checks these properties with margins.

Labels (``generate_bundle``): a share of exact zeros (MOSI 6 %, MOSEI 10 %, SIMS 8 %), otherwise a
random sign times hi * Beta(a, b) (moments of the real MOSI / MOSEI / CH-SIMS v2 non-zero |labels|),
rounded to the label grid (MOSI and SIMS: multiples of 0.2; MOSEI: multiples of 1/3), never to 0.
CH-SIMS also gets unimodal labels: S_m = grid(clip(y + 0.35 eps_m)), and modality m is driven by
S_m (as the semi-synthetic CH-SIMS v2 set is by its real T/V/A labels); MOSI/MOSEI drive all three
with y. Ids are video-grouped (``synth_v0012$_$3``); videos never span two splits and the shared
factor is mostly per video. ``raw_text`` is a short English sentence whose sentiment word follows the
sign of the language latent e_iL (the same draw the L features carry) and whose intensity word follows
its magnitude (also for ``sims-synth``, although real CH-SIMS is Chinese): the transcript is the language
modality in words, so it knows no more of the label than the L features (a bag-of-words ridge on it
scores test R^2 .51 against the L features' .62 on small MOSI; it read a cleaner copy of the label up
to generator v1). ``text_bert`` holds [CLS], hashed word ids of the sentence,
random filler ids in [1000, 30000), [SEP] at length - 1; its mask marks the language length.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from mmbench.constants import MODALITIES, SPLITS
from mmbench.data.registry import get_spec
from mmbench.data.types import DatasetBundle, SplitData

#: 2: ``raw_text`` follows the language latent e_iL instead of a cleaner copy of the label.
GENERATOR_VERSION = 2
SMALL_SIZES: dict[str, int] = {"train": 600, "valid": 150, "test": 300}
#: The MMSA file whose dims and padded lengths each family copies.
FAMILY_VARIANT: dict[str, str] = {"mosi": "aligned", "mosei": "aligned", "sims": "unaligned"}

SHARED_DIM = 3
PRIVATE_DIM = 3
TRAJECTORY_FREQS = (0.5, 1.0, 1.5)
ENVELOPE_BASE = 0.15  # sentiment level away from the mid-sequence segment, before normalising
_CHUNK = 256  # samples per generation chunk: bounds the temporaries for the full MOSEI size


@dataclass(frozen=True)
class Strength:
    """Per-modality strengths of the feature model (see the module docstring)."""

    tau: float  # sentiment expression noise (latent, per sample)
    alpha: float  # sentiment loading
    gamma: float  # shared-factor loading
    rho: float  # private-factor loading
    kappa: float  # trajectory loading
    sigma: float  # per-step noise, every dimension
    nu: float  # per-step noise on the sentiment coordinate (makes the weak edge steps unreliable)


STRENGTHS: dict[str, Strength] = {
    "L": Strength(tau=0.40, alpha=0.60, gamma=0.30, rho=0.30, kappa=0.30, sigma=0.60, nu=0.70),
    "V": Strength(tau=0.80, alpha=0.50, gamma=0.30, rho=0.35, kappa=0.30, sigma=0.70, nu=0.70),
    "A": Strength(tau=0.90, alpha=0.50, gamma=0.30, rho=0.35, kappa=0.30, sigma=0.70, nu=0.70),
}


@dataclass(frozen=True)
class LabelModel:
    """Label distribution of a family: zero share, Beta shape of |y| / hi, grid 1 / grid_den."""

    zero_share: float
    beta_a: float
    beta_b: float
    grid_den: int
    segments_per_video: tuple[int, int]  # inclusive range


LABEL_MODELS: dict[str, LabelModel] = {
    "mosi": LabelModel(0.06, 1.50, 1.65, 5, (10, 36)),
    "mosei": LabelModel(0.10, 1.25, 2.20, 3, (3, 12)),
    "sims": LabelModel(0.08, 1.30, 0.70, 5, (20, 56)),
}
UNIMODAL_NOISE = 0.35  # CH-SIMS unimodal labels: corr ~0.85 with the multimodal one, as in v2
SCALED_RANGE = (-1.0, 1.0)  # the latents e_im are in scaled sentiment units


def _scaled(values: np.ndarray, label_range: tuple[float, float]) -> np.ndarray:
    low, high = label_range
    return (2.0 * np.asarray(values, dtype=np.float64) - (low + high)) / (high - low)


# ---------------------------------------------------------------- features


@dataclass(frozen=True)
class _Projection:
    """The fixed random maps of one modality: offset mu, direction w, loadings A, B, C."""

    offset: np.ndarray  # (D,)
    direction: np.ndarray  # (D,)
    shared: np.ndarray  # (K, D)
    private: np.ndarray  # (PRIVATE_DIM, D)
    trajectory: np.ndarray  # (len(TRAJECTORY_FREQS), D)


def _draw_projection(dim: int, shared_dim: int, rng: np.random.Generator) -> _Projection:
    return _Projection(offset=rng.normal(0.0, 0.5, size=dim), direction=rng.standard_normal(dim),
                       shared=rng.standard_normal((shared_dim, dim)),
                       private=rng.standard_normal((PRIVATE_DIM, dim)),
                       trajectory=rng.standard_normal((len(TRAJECTORY_FREQS), dim)))


def _draw_lengths(modalities: list[str], seq_lens: dict[str, int], n: int,
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Lengths in [ceil(T/2), T]; shared when all padded lengths agree (word-aligned files)."""
    def draw(t_max: int) -> np.ndarray:
        return rng.integers((t_max + 1) // 2, t_max + 1, size=n).astype(np.int64)

    if len({seq_lens[m] for m in modalities}) == 1:
        common = draw(seq_lens[modalities[0]])
        return {m: common for m in modalities}
    return {m: draw(seq_lens[m]) for m in modalities}


def _envelope(length: np.ndarray, centre: np.ndarray, t_max: int) -> np.ndarray:
    """(N, T) mid-sequence sentiment envelope g_i(t), mean 1 over the valid steps, 0 after."""
    steps = np.arange(t_max)[None, :]
    u = (steps + 0.5) / length[:, None]
    bump = (ENVELOPE_BASE + np.exp(-((u - centre[:, None]) ** 2) / (2 * 0.12**2))) * (steps < length[:, None])
    return bump * (length[:, None] / bump.sum(axis=1, keepdims=True))


def _modality_features(strength: Strength, proj: _Projection, t_max: int, expressed: np.ndarray,
                       shared: np.ndarray, length: np.ndarray, centre: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
    """(N, T, D) float32 x_im(t); elementwise maths only, so bitwise reproducible (no BLAS)."""
    n, dim = len(expressed), len(proj.offset)
    private = rng.standard_normal((n, PRIVATE_DIM))
    traj_amp = rng.standard_normal((n, len(TRAJECTORY_FREQS)))
    traj_phase = rng.uniform(0.0, 2 * np.pi, size=(n, len(TRAJECTORY_FREQS)))

    static = np.broadcast_to(proj.offset, (n, dim)).copy()  # (N, D): mu + gamma A z + rho B p
    for k in range(shared.shape[1]):
        static += strength.gamma * shared[:, k, None] * proj.shared[k]
    for k in range(PRIVATE_DIM):
        static += strength.rho * private[:, k, None] * proj.private[k]
    static = static.astype(np.float32)
    direction = (strength.alpha * proj.direction).astype(np.float32)
    traj_load = (strength.kappa * proj.trajectory).astype(np.float32)
    flicker = strength.nu * rng.standard_normal((n, t_max))
    sentiment_t = (expressed[:, None] * _envelope(length, centre, t_max) + flicker).astype(np.float32)  # (N, T)
    u = (np.arange(t_max)[None, :] + 0.5) / length[:, None]  # (N, T)
    padding = np.arange(t_max)[None, :] >= length[:, None]  # (N, T)

    out = np.empty((n, t_max, dim), dtype=np.float32)
    for start in range(0, n, _CHUNK):  # chunks bound the temporaries (full MOSEI L alone is 3.5 GB)
        rows = slice(start, min(start + _CHUNK, n))
        block = rng.standard_normal((rows.stop - start, t_max, dim), dtype=np.float32)  # (B, T, D)
        block *= np.float32(strength.sigma)
        block += static[rows, None, :]
        block += sentiment_t[rows, :, None] * direction
        for k, freq in enumerate(TRAJECTORY_FREQS):
            wave = traj_amp[rows, k, None] * np.cos(2 * np.pi * freq * u[rows] + traj_phase[rows, k, None])
            block += wave.astype(np.float32)[:, :, None] * traj_load[k]
        block[padding[rows]] = 0.0
        out[rows] = block
    return out


class Synthesized(NamedTuple):
    """What :func:`synthesize` draws: the features, their lengths and each modality's latent e_im."""

    features: dict[str, np.ndarray]  # letter -> (N, T_m, D_m) float32, zero-padded
    lengths: dict[str, np.ndarray]  # letter -> (N,) int64
    expressed: dict[str, np.ndarray]  # letter -> (N,) float64 e_im, scaled sentiment units


def synthesize_features(sentiment: dict[str, np.ndarray], dims: dict[str, int], seq_lens: dict[str, int],
                        *, label_range: tuple[float, float], rng: np.random.Generator,
                        shared_factor: np.ndarray | None = None,
                        lengths: dict[str, np.ndarray] | None = None,
                        ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(features, lengths)`` of :func:`synthesize` (same arguments, same draws)."""
    drawn = synthesize(sentiment, dims, seq_lens, label_range=label_range, rng=rng, shared_factor=shared_factor,
                       lengths=lengths)
    return drawn.features, drawn.lengths


def synthesize(sentiment: dict[str, np.ndarray], dims: dict[str, int], seq_lens: dict[str, int],
               *, label_range: tuple[float, float], rng: np.random.Generator,
               shared_factor: np.ndarray | None = None,
               lengths: dict[str, np.ndarray] | None = None) -> Synthesized:
    """Features of the modalities in ``sentiment`` under the model of the module docstring.

    Call it once for all splits together: the projections (mu_m, w_m, A_m, B_m, C_m) are the first
    draws from ``rng``, so two calls on one Generator give two different feature spaces (two fresh
    Generators with the same seed give the same ones, whatever N).

    Args:
        sentiment: modality letter -> (N,) sentiment driving that modality, in ``label_range``.
        dims: modality letter -> feature dim D_m.
        seq_lens: modality letter -> padded length T_m.
        label_range: (low, high) of the sentiment values, used to scale them to [-1, 1].
        rng: the Generator all draws come from.
        shared_factor: (N, K) shared style factor z (e.g. mostly per video); default N(0, I_3).
        lengths: optional modality letter -> (N,) valid lengths to use (e.g. real text lengths);
            the others are drawn in [ceil(T/2), T], shared when all padded lengths agree.

    Returns:
        ``Synthesized(features, lengths, expressed)``: letter -> (N, T_m, D_m) float32 zero-padded,
        letter -> (N,) int64, letter -> (N,) latent e_im in scaled units (what anything else derived
        from modality m, such as a transcript, must be drawn from, so it knows no more than m's features).

    Raises:
        ValueError: unknown modality, mismatched sample counts, missing dims/seq_lens, bad lengths.

    Example:
        >>> feats, lens, expressed = synthesize({"V": np.array([-3.0, 0.0, 3.0])}, {"V": 4}, {"V": 6},
        ...                                     label_range=(-3, 3), rng=np.random.default_rng(0))
        >>> feats["V"].shape, feats["V"].dtype.name, bool((lens["V"] >= 3).all()), expressed["V"].shape
        ((3, 6, 4), 'float32', True, (3,))
    """
    modalities = [m for m in MODALITIES if m in sentiment]
    if not modalities or set(sentiment) - set(MODALITIES):
        raise ValueError(f"sentiment keys must be a non-empty subset of {MODALITIES}, got {sorted(sentiment)}")
    missing = [m for m in modalities if m not in dims or m not in seq_lens]
    if missing:
        raise ValueError(f"dims and seq_lens need entries for modality/modalities {missing}")
    n = len(sentiment[modalities[0]])
    if any(len(sentiment[m]) != n for m in modalities):
        raise ValueError(f"sentiment arrays differ in length: { {m: len(sentiment[m]) for m in modalities} }")
    shared_dim = SHARED_DIM if shared_factor is None else np.asarray(shared_factor).reshape(n, -1).shape[1]

    projections = {m: _draw_projection(dims[m], shared_dim, rng) for m in modalities}
    if shared_factor is None:
        shared_factor = rng.standard_normal((n, SHARED_DIM))
    shared_factor = np.asarray(shared_factor, dtype=np.float64).reshape(n, shared_dim)
    drawn = _draw_lengths(modalities, seq_lens, n, rng)
    given = lengths or {}
    lengths = {m: np.asarray(given.get(m, drawn[m]), dtype=np.int64) for m in modalities}
    for m in modalities:
        if lengths[m].shape != (n,) or n and (lengths[m].min() < 1 or lengths[m].max() > seq_lens[m]):
            raise ValueError(f"lengths[{m!r}] must be an (N,) = ({n},) int array in [1, {seq_lens[m]}]")
    centre = rng.uniform(0.35, 0.65, size=n)  # the same sentiment moment in every modality

    features, expressed = {}, {}
    for m in modalities:
        strength = STRENGTHS[m]
        expressed[m] = _scaled(sentiment[m], label_range) + strength.tau * rng.standard_normal(n)  # e_im
        features[m] = _modality_features(strength, projections[m], seq_lens[m], expressed[m],
                                         shared_factor, lengths[m], centre, rng)
    return Synthesized(features, lengths, expressed)


# ---------------------------------------------------------------- text

_OPENERS = ("", "honestly", "i think", "well", "so", "overall", "to be fair", "i mean")
_SUBJECTS = ("the movie", "the plot", "the acting", "the ending", "the story", "the characters",
             "the dialogue", "the soundtrack", "this film", "the cast", "the script", "the pacing")
_VERBS = ("was", "felt", "seemed", "is")
# intensity bins of |score| scaled to [0, 1]: weak (<= 0.35), medium (<= 0.7), strong
_ADVERBS = (("kind of", "a little", "somewhat", "slightly"),
            ("pretty", "quite", "fairly", "rather"),
            ("really", "extremely", "incredibly", "so"))
_POSITIVE = (("okay", "decent", "fine", "pleasant"), ("good", "nice", "enjoyable", "fun"),
             ("great", "amazing", "wonderful", "brilliant"))
_NEGATIVE = (("dull", "bland", "forgettable", "slow"), ("bad", "boring", "weak", "disappointing"),
             ("terrible", "awful", "horrible", "dreadful"))
_TAILS = {1: ("and i would watch it again", "i loved it", "you should see it"),
          -1: ("and i would not recommend it", "i wanted to leave", "what a waste of time")}
_NEUTRAL = ("i saw it last weekend with a friend", "the movie is about a family in a small town",
            "it runs about two hours", "there are three main characters", "it is based on a book",
            "the story takes place in new york", "i went in not knowing much about it")
NEUTRAL_BAND = 0.12  # |score| (scaled) below this reads as neutral


def synth_sentence(score: float, label_range: tuple[float, float], rng: np.random.Generator) -> str:
    """A short lower-case English review sentence whose polarity and intensity follow ``score``.

    Args:
        score: sentiment in ``label_range``.
        label_range: (low, high); the score is scaled to [-1, 1] first.
        rng: picks the words.

    Returns:
        e.g. "honestly the plot was really great" or "the ending felt a little dull".

    Example:
        >>> rng = np.random.default_rng(0)
        >>> synth_sentence(0.0, (-3, 3), rng)
        'the story takes place in new york'
        >>> synth_sentence(2.8, (-3, 3), rng)
        'overall the dialogue felt extremely great and i would watch it again'
    """
    scaled = float(np.clip(_scaled(score, label_range), -1.0, 1.0))
    if abs(scaled) < NEUTRAL_BAND:
        return str(rng.choice(_NEUTRAL))
    level = 0 if abs(scaled) <= 0.35 else 1 if abs(scaled) <= 0.7 else 2
    adjectives = _POSITIVE if scaled > 0 else _NEGATIVE
    words = [rng.choice(_OPENERS), rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_ADVERBS[level]),
             rng.choice(adjectives[level])]
    if level == 2 and rng.random() < 0.5:
        words.append(rng.choice(_TAILS[1 if scaled > 0 else -1]))
    return " ".join(str(w) for w in words if w)


def _word_id(word: str) -> int:
    """A stable pseudo-BERT id in [1000, 30000) for a word (the same word, the same id)."""
    return 1000 + int(hashlib.sha1(word.encode()).hexdigest()[:8], 16) % 29000


def text_bert_ids(sentences: list[str], lengths: np.ndarray, t_max: int,
                  rng: np.random.Generator) -> np.ndarray:
    """(N, 3, T) int64 MMSA text_bert: ids ([CLS] words... filler [SEP]), attention mask, segment ids."""
    n = len(sentences)
    if n and (lengths.min() < 2 or lengths.max() > t_max):
        raise ValueError(f"text lengths must lie in [2, {t_max}] to hold [CLS] and [SEP], got "
                         f"[{lengths.min()}, {lengths.max()}]")
    out = np.zeros((n, 3, t_max), dtype=np.int64)
    filler = rng.integers(1000, 30000, size=(n, t_max))
    for i, (sentence, length) in enumerate(zip(sentences, lengths)):
        words = [_word_id(w) for w in sentence.split()][: length - 2]
        out[i, 0, 1:length - 1] = filler[i, 1:length - 1]
        out[i, 0, 1:1 + len(words)] = words
        out[i, 0, 0], out[i, 0, length - 1] = 101, 102  # [CLS], [SEP]
        out[i, 1, :length] = 1
    return out


# ---------------------------------------------------------------- labels, ids, bundle


def draw_labels(family: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """(N,) float32 labels on the family's grid: a share of exact 0, else sign * hi * Beta(a, b)."""
    model, (_, high) = LABEL_MODELS[family], get_spec(family).label_range
    steps_max = round(high * model.grid_den)
    magnitude = rng.beta(model.beta_a, model.beta_b, size=n) * steps_max
    steps = np.clip(np.rint(magnitude), 1, steps_max)  # non-zero labels never round to 0
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    steps = np.where(rng.random(n) < model.zero_share, 0.0, sign * steps)
    return (steps / model.grid_den).astype(np.float32)  # k / 5 rounds exactly; k * 0.2 would not


def _unimodal_labels(labels: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """CH-SIMS T/V/A labels: the multimodal label plus noise, clipped and on the 0.2 grid."""
    den = LABEL_MODELS["sims"].grid_den
    noisy = {m: np.clip(labels + UNIMODAL_NOISE * rng.standard_normal(len(labels)), -1, 1) for m in MODALITIES}
    return {m: (np.rint(value * den) / den).astype(np.float32) for m, value in noisy.items()}


def _video_ids(family: str, sizes: dict[str, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sample ids ``synth_v0012$_$3`` and the (N,) video index; no video spans two splits."""
    low, high = LABEL_MODELS[family].segments_per_video
    ids, videos, video = [], [], 0
    for split in SPLITS:
        left = sizes[split]
        while left > 0:
            count = min(left, int(rng.integers(low, high + 1)))
            ids += [f"synth_v{video:04d}$_${k}" for k in range(1, count + 1)]
            videos += [video] * count
            left, video = left - count, video + 1
    return np.array(ids, dtype=str), np.array(videos, dtype=np.int64)


def _source_sha256(family: str, size: str, seed: int, sizes: dict[str, int]) -> str:
    canonical = json.dumps({"generator": "mmbench.data.synthetic", "version": GENERATOR_VERSION,
                            "family": family, "size": size, "seed": seed, "sizes": sizes}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def generate_bundle(family: str, size: str = "small", seed: int = 0) -> DatasetBundle:
    """The synthetic dataset ``<family>-synth`` in MMSA's dims, lengths and label grid.

    Args:
        family: ``mosi`` | ``mosei`` | ``sims``.
        size: ``small`` (``SMALL_SIZES``) or ``full`` (the real split sizes of the registry).
        seed: every draw comes from ``np.random.default_rng([seed, family index])`` and the
            Generators spawned from it.

    Returns:
        A DatasetBundle with provenance ``synthetic``; ``source_sha256`` hashes the generator
        version and parameters (not the arrays), so results name the data they used.

    Raises:
        ValueError: unknown family or size.
    """
    if family not in FAMILY_VARIANT:
        raise ValueError(f"synthetic family must be one of {', '.join(FAMILY_VARIANT)}, got {family!r}")
    if size not in ("small", "full"):
        raise ValueError(f"synthetic size must be 'small' or 'full', got {size!r}")
    spec = get_spec(family)
    variant = spec.variants[FAMILY_VARIANT[family]]
    sizes = dict(SMALL_SIZES) if size == "small" else {s: spec.split_sizes[s] for s in SPLITS}
    # a stream per family, so mosi and mosei (same L dims) get different projections for one seed
    family_index = list(FAMILY_VARIANT).index(family)
    structure_rng, feature_rng, text_rng = np.random.default_rng([seed, family_index]).spawn(3)

    ids, video = _video_ids(family, sizes, structure_rng)
    n = len(ids)
    labels = draw_labels(family, n, structure_rng)
    unimodal = _unimodal_labels(labels, structure_rng) if family == "sims" else {}
    sentiment = unimodal or {m: labels for m in MODALITIES}
    per_video = structure_rng.standard_normal((int(video.max()) + 1, SHARED_DIM))
    shared = 0.8 * per_video[video] + 0.6 * structure_rng.standard_normal((n, SHARED_DIM))  # var 1
    features, lengths, expressed = synthesize(sentiment, variant.dims, variant.seq_lens,
                                              label_range=spec.label_range, rng=feature_rng, shared_factor=shared)
    # the transcript is the language modality: it reads the same draw e_iL as the L features, never the label
    raw_text = [synth_sentence(score, SCALED_RANGE, text_rng) for score in expressed["L"]]
    text_bert = text_bert_ids(raw_text, lengths["L"], variant.seq_lens["L"], text_rng)

    splits, start = {}, 0
    for split in SPLITS:
        rows = slice(start, start + sizes[split])  # contiguous: the arrays below are views
        splits[split] = SplitData(
            ids=ids[rows], features={m: features[m][rows] for m in MODALITIES},
            lengths={m: lengths[m][rows] for m in MODALITIES}, labels=labels[rows],
            raw_text=raw_text[rows], text_bert=text_bert[rows],
            unimodal_labels={m: unimodal[m][rows] for m in unimodal})
        start = rows.stop
    return DatasetBundle(
        name=f"{family}-synth", splits=splits, provenance="synthetic",
        source_sha256=_source_sha256(family, size, seed, sizes),
        source=f"synthetic generator v{GENERATOR_VERSION} (family={family}, size={size}, seed={seed})",
        label_range=spec.label_range, language="en")
