"""The modality equity and learning indices on constructed inputs with a known answer."""
import math

import lightning as L
import pandas as pd
import pytest
import torch

from mmbench.metrics.balance import balance_score, equity_index, modality_contributions
from mmbench.metrics.learning import ModalityGradientNorms
from mmbench.reports.equity import equity_rows


def test_balance_is_one_when_equal_zero_when_one_modality_holds_everything():
    assert balance_score({"L": 2.0, "V": 2.0, "A": 2.0}) == pytest.approx(1.0)
    assert balance_score({"L": 5.0, "V": 0.0, "A": 0.0}) == pytest.approx(0.0)
    # shares 1/2, 1/2, 0: TV distance 1/3 of a maximum 2/3
    assert balance_score({"L": 1.0, "V": 1.0, "A": 0.0}) == pytest.approx(0.5)
    assert balance_score({"L": 1.0, "V": -3.0, "A": 0.0}) == pytest.approx(0.0)  # a harmful modality adds nothing
    assert math.isnan(balance_score({"L": 0.0, "V": 0.0, "A": 0.0}))


def additive(weights: dict[str, float]) -> dict[str, float]:
    """A model whose accuracy is 0.5 plus the weights of the modalities it sees."""
    patterns = ["L", "V", "A", "LV", "LA", "VA", "LVA"]
    return {p: 0.5 + sum(weights[m] for m in p) for p in patterns}


def test_contributions_recover_an_additive_models_weights():
    contributions = modality_contributions(additive({"L": 0.2, "V": 0.05, "A": 0.05}))
    assert contributions == pytest.approx({"L": 0.2, "V": 0.05, "A": 0.05})
    assert equity_index(additive({"L": 0.1, "V": 0.1, "A": 0.1})) == pytest.approx(1.0)
    assert equity_index(additive({"L": 0.3, "V": 0.0, "A": 0.0})) == pytest.approx(0.0)


def test_a_lower_is_better_metric_counts_a_drop_as_a_contribution():
    mae = {p: 1.0 - v + 0.5 for p, v in additive({"L": 0.2, "V": 0.1, "A": 0.0}).items()}
    assert modality_contributions(mae, higher_is_better=False) == pytest.approx({"L": 0.2, "V": 0.1, "A": 0.0})


def test_equity_rows_give_one_value_per_fixed_run_with_all_seven_patterns():
    rows = []
    for run_id, weights in (("r1", {"L": 0.1, "V": 0.1, "A": 0.1}), ("r2", {"L": 0.3, "V": 0.0, "A": 0.0})):
        for pattern, value in additive(weights).items():
            rows.append({"run_id": run_id, "protocol": "fixed", "condition": pattern, "train_condition": pattern,
                         "metric": "acc2_non0", "value": value, "achieved_rate": None})
    rows.append({"run_id": "r3", "protocol": "fixed", "condition": "L", "train_condition": "L",
                 "metric": "acc2_non0", "value": 0.7, "achieved_rate": None})  # incomplete: no MEI
    mei = equity_rows(pd.DataFrame(rows)).set_index("run_id")
    assert list(mei.index) == ["r1", "r2"] and set(mei["condition"]) == {"all"}
    assert mei.loc["r1", "value"] == pytest.approx(1.0) and mei.loc["r2", "value"] == pytest.approx(0.0)


class TwoTowers(L.LightningModule):
    """L's tower gets a gradient `scale` times V's; A's tower none."""

    def __init__(self, scale: float):
        super().__init__()
        self.towers = torch.nn.ModuleDict({m: torch.nn.Linear(1, 1, bias=False) for m in "LVA"})
        for tower in self.towers.values():
            torch.nn.init.ones_(tower.weight)
        self.scale = scale

    def modality_parameters(self):
        return {m: list(t.parameters()) for m, t in self.towers.items()}

    def training_step(self, batch, batch_idx):
        x = batch[0]
        return (self.scale * self.towers["L"](x) + self.towers["V"](x)).sum() + 0 * self.towers["A"](x).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def fit_and_read_index(module) -> float:
    norms = ModalityGradientNorms()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(4, 1)), batch_size=2)
    L.Trainer(max_epochs=2, callbacks=[norms], logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, accelerator="cpu").fit(module, loader)
    return norms.index


def test_learning_index_reads_each_modalitys_gradient_norms():
    # norms L : V : A = 1 : 1 : 0 -> balance 0.5; = 3 : 1 : 0 -> shares 3/4, 1/4, 0 -> TV 5/12 of 2/3
    assert fit_and_read_index(TwoTowers(1.0)) == pytest.approx(0.5)
    assert fit_and_read_index(TwoTowers(3.0)) == pytest.approx(1 - (5 / 12) / (2 / 3))


def test_a_method_that_declares_no_modality_parameters_gets_no_index():
    module = TwoTowers(1.0)
    module.modality_parameters = lambda: None
    assert math.isnan(fit_and_read_index(module))


def test_the_indices_print_as_plain_fractions_and_an_undefined_one_as_a_dash():
    from mmbench.reports.leaderboard import format_cell

    assert format_cell("mei", 0.4395, 0.0559) == "0.440 ± 0.056"
    assert format_cell("mli", float("nan"), None) == "—"
