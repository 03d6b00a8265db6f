"""What the Training tab shows each account, read from the store when the page
loads or the tab opens: the RFT exports and the registered judge models (for
everyone, read-only), the datasets and exports its forms offer, and whether
the forms are shown at all (to accounts that may train). The server's file
paths (an export's folder, where a judge model is loaded from) are shown to
admins only (`shows_server_paths`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from core.store.accounts import Account, Action
from core.store.browse import dataset_names
from core.training import list_exports, list_judge_models
from webapp.studio import Studio

MODEL_COLUMNS = ["id", "name", "backend", "trained", "parent", "export", "metrics", "source"]
EXPORT_COLUMNS = ["id", "export", "dataset", "train", "validation", "hinted", "sha256", "path"]
READ_ONLY_NOTE = ("Building exports and training judges is for admins: here are the exports "
                  "and the registered judge models.")
PATH_COLUMNS = frozenset({"path", "source"})  # server file paths (and model URLs): admins only
# each column's share of the models table's width, so no header is squeezed upright
MODEL_WIDTHS = {"id": 4, "name": 15, "backend": 11, "trained": 11, "parent": 13, "export": 9,
                "metrics": 23, "source": 14}


def shows_server_paths(account: Account | None) -> bool:
    """Whether `account` is shown the server's file paths (exports, model
    directories): admins only."""
    return account is not None and account.role == "admin"


def column_widths(table: pd.DataFrame, shares: dict[str, int]) -> list[str | int]:
    """Percent widths of the columns `table` has (`shares` of them), filling the width."""
    total = sum(shares[c] for c in table.columns)
    return [f"{shares[c] * 100 / total:.1f}%" for c in table.columns]


def _for(account: Account | None, table: pd.DataFrame) -> pd.DataFrame:
    """`table` without its path columns unless `account` sees server paths."""
    if shows_server_paths(account):
        return table
    return table.drop(columns=[c for c in table.columns if c in PATH_COLUMNS])


def exports_table(studio: Studio, account: Account | None) -> pd.DataFrame:
    """The RFT exports, newest first; the path column for admins only."""
    return _for(account, pd.DataFrame(
        [[r["id"], f"{r['name']}:v{r['version']}", r["dataset"], r["counts"].get("records_train", 0),
          r["counts"].get("records_validation", 0), r["counts"].get("records_hinted", 0),
          r["content_sha256"][:12], r["path"]] for r in reversed(list_exports(studio.engine))],
        columns=EXPORT_COLUMNS,
    ))


def export_choices(studio: Studio) -> list[str]:
    return [f"{r['name']}:v{r['version']}" for r in reversed(list_exports(studio.engine))]


def _metric(name: str, value: object) -> str:
    """One metric in a few words: a number, or how many entries a nested one has."""
    if isinstance(value, float):
        return f"{name} {value:.3g}"
    if isinstance(value, dict | list):
        return f"{name} ({len(value)} entries)"
    return f"{name} {value}"


def models_table(studio: Studio, account: Account | None) -> pd.DataFrame:
    """The registered judge models; where each is loaded from (a server path or
    URL) for admins only."""
    rows = []
    for m in list_judge_models(studio.engine):
        metrics = ", ".join(_metric(k, v) for k, v in (m.metrics or {}).items())
        rows.append([m.id, m.name, m.backend, m.method or "", m.parent or "", m.export or "",
                     metrics, m.source])
    return _for(account, pd.DataFrame(rows, columns=MODEL_COLUMNS))


@dataclass(frozen=True)
class TrainingPage:
    """The Training tab as one account sees it now."""

    may_train: bool  # the export, training and meta RM forms are shown
    datasets: list[str]  # the store's datasets, now
    exports: list[str]  # the exports to train on ("name:vN"), newest first
    exports_table: pd.DataFrame
    models_table: pd.DataFrame


def training_page(studio: Studio, account: Account | None) -> TrainingPage:
    """What the Training tab shows `account`: the forms only to one that may
    train, the tables to everyone (server paths to admins only)."""
    return TrainingPage(
        may_train=account is not None and account.may(Action.TRAIN),
        datasets=dataset_names(studio.engine), exports=export_choices(studio),
        exports_table=exports_table(studio, account), models_table=models_table(studio, account),
    )
