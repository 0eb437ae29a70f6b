"""The model's parts, printed before training."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities.model_summary import get_human_readable_count

from lightning_gans.nets.blocks import Squeeze


class ParameterSummary(ModelSummary):
    """Lightning's model summary as one short table: name, type and parameters of each part of
    the model. A part that only wraps a net (the critic's ``Squeeze`` to one score) shows the
    net's type. Lightning's FLOPs column is dropped: it reads 0 unless a model defines
    ``example_input_array``, which a generator and a critic with different inputs cannot share."""

    def __init__(self, max_depth: int = 1, **kwargs) -> None:
        super().__init__(max_depth=max_depth, **kwargs)
        self.depth = max_depth

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.depth or not trainer.is_global_zero:
            return
        from rich import get_console
        from rich.table import Table

        table = Table(header_style="bold")
        for name in ("Name", "Type", "Params"):
            table.add_column(name, justify="right" if name == "Params" else "left")
        for name, part in pl_module.named_children():
            shown = part.net if isinstance(part, Squeeze) else part
            n = sum(p.numel() for p in part.parameters())
            table.add_row(name, type(shown).__name__, get_human_readable_count(n))
        total = sum(p.numel() for p in pl_module.parameters())
        table.add_row("total", "", get_human_readable_count(total), style="bold")
        get_console().print(table)
