"""Run folders: the one module that names, finds, claims, reads and migrates them.

Everything that opens a run folder goes through here: the trainer, reports, landscapes,
surfaces, trajectories, smoothness probes, searches and studies. A folder `zoo.train` writes:

    config.json           every resolved setting, the data's shape, versions (`CONFIG_FORMAT`)
    history.csv           a row per finished epoch, counted from 1
    steps.csv             a row per step (per call into the backend above one step per call)
    best.keras            the best epoch's model
    metrics.json          written last: train / val / test of the best weights, why it stopped
    confusion_matrix.csv  the best weights on test
    backup/epoch-N/       the state after epoch N, while the run can still continue
    epochs/, tensorboard/ with `keep_epochs` and `tensorboard`

Identity: two configs are the same run when they train the same thing (`same_run`). Where the
data is read from (`data_dir`, `stream`) and logging (`tensorboard`) are not identity, so the
same run is found however its data is given; every other setting is. A folder's name carries a
digest of the identity; a folder named under an older rule is found by the settings it holds.
"""

from zoo.runs.finding import (
    candidates,
    claim,
    find,
    find_runs,
    finished_in,
    first_folder,
    folders_in,
    locked,
)
from zoo.runs.identity import digest, folder_name, identity, same_run
from zoo.runs.layout import (
    BACKUP,
    BACKUP_WEIGHTS,
    BEST,
    CONFIG,
    CONFIG_FORMAT,
    CONFUSION,
    HISTORY,
    KEPT,
    METRICS,
    STEPS,
    TENSORBOARD,
    migrate,
    read_config,
    read_record,
    write_record,
)
from zoo.runs.state import (
    Run,
    best_model,
    continues,
    data,
    has_epochs,
    has_weights,
    is_finished,
    kept_epochs,
    latest_backup,
    read_confusion,
    read_history,
    read_metrics,
    read_steps,
    rebuild,
    reopen,
)

__all__ = [
    "BACKUP", "BACKUP_WEIGHTS", "BEST", "CONFIG", "CONFIG_FORMAT", "CONFUSION", "HISTORY", "KEPT",
    "METRICS", "STEPS", "TENSORBOARD", "Run", "best_model", "candidates", "claim", "continues",
    "data", "digest", "find", "find_runs", "finished_in", "first_folder", "folder_name",
    "folders_in", "has_epochs", "has_weights", "identity", "is_finished", "kept_epochs",
    "latest_backup", "locked", "migrate", "read_config", "read_confusion", "read_history",
    "read_metrics", "read_record", "read_steps", "rebuild", "reopen", "same_run", "write_record",
]  # fmt: skip
