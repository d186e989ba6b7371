"""The two references every table shows: ``fusion`` (the lower bound) and ``mean`` (the floor).

``fusion`` is a small late-fusion model: a temporal encoder per modality, concatenation with the
availability flags, an MLP regressor. Missing modalities are zeros (as the data layer serves them)
and, under the ``complete`` training setting, training uses modality dropout, so the model has seen
incomplete inputs. Under ``same`` and ``incomplete`` it trains on the benchmark's masks as given
(no dropout on top). Any recovery method that does not beat it has recovered nothing useful.
Neither reference reads complete training features in any setting.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from mmbench.constants import MODALITIES
from mmbench.layers import FeatureStandardizer, TemporalEncoder, modality_dropout, modality_inputs
from mmbench.method import DataInfo, MMBenchMethod


class Fusion(MMBenchMethod):
    """Late fusion with zero-filled missing modalities and modality-dropout training.

    Args:
        data: data facts (dims), filled by the runner.
        hidden_dim: width of each modality embedding.
        dropout: dropout in encoders and regressor.
        modality_dropout: probability of dropping each available modality in a training batch
            (``complete`` setting only: elsewhere the benchmark's masks are the training missingness).
        **fit: ``lr``, ``weight_decay``, ``lr_patience``, ``batch_size`` (the benchmark's defaults).
    """

    def __init__(self, data: DataInfo, hidden_dim: int = 64, dropout: float = 0.1,
                 modality_dropout: float = 0.3, **fit):
        super().__init__(data, **fit)
        self.save_hyperparameters(ignore=["data"])
        self.standardizers = nn.ModuleList(FeatureStandardizer(*data.feature_stats[m]) for m in MODALITIES)
        self.encoders = nn.ModuleList(TemporalEncoder(data.dims[m], hidden_dim, dropout) for m in MODALITIES)
        self.regressor = nn.Sequential(
            nn.Linear(hidden_dim * len(MODALITIES) + len(MODALITIES), hidden_dim), nn.GELU(),
            nn.Dropout(dropout), nn.Linear(hidden_dim, 1))
        # Start at the training mean so early epochs are not spent learning the offset.
        nn.init.constant_(self.regressor[-1].bias, data.train_label_mean)

    def forward(self, batch: dict) -> Tensor:
        return self.predict_from(batch, batch["available"])

    def predict_from(self, batch: dict, available: Tensor) -> Tensor:
        embeddings = []
        inputs = zip(self.standardizers, self.encoders, modality_inputs(batch))
        for position, (standardize, encoder, (features, step_mask)) in enumerate(inputs):
            step_mask = step_mask & available[:, position].unsqueeze(1)
            embedding = encoder(standardize(features, step_mask), step_mask)  # (B, H)
            is_available = available[:, position]
            embeddings.append(embedding * is_available.unsqueeze(1))
        fused = torch.cat([*embeddings, available.float()], dim=1)
        return self.regressor(fused).squeeze(-1)  # (B,)

    method_version = "2"  # 2: no modality dropout on top of the masks under same / incomplete

    def modality_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {m: list(encoder.parameters()) for m, encoder in zip(MODALITIES, self.encoders)}

    def training_loss(self, batch: dict) -> Tensor:
        available = batch["available"]
        if self.data_info.train_setting == "complete":
            available = modality_dropout(available, self.hparams.modality_dropout)
        return nn.functional.l1_loss(self.predict_from(batch, available), batch["label"])


class MeanPredictor(MMBenchMethod):
    """Predicts the training split's mean label for every sample: the floor every table shows.

    Args:
        data: data facts; ``data.train_label_mean`` is the prediction.
    """

    trainable = False

    def __init__(self, data: DataInfo):
        super().__init__(data)
        self.save_hyperparameters(ignore=["data"])
        self.register_buffer("train_mean", torch.tensor(float(data.train_label_mean)))

    def forward(self, batch: dict) -> Tensor:
        return self.train_mean.expand(len(batch["label"])).clone()
