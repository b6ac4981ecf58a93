"""Run folders: the atomic writing and the reading of every file a training run leaves."""
from neuroclass.runs.ensemble_file import (METHODS, EnsembleMember, EnsembleRecord, OutOfFold, is_ensemble_folder,
                                           read_ensemble, read_oof, write_ensemble, write_oof)
from neuroclass.runs.environment import environment_record
from neuroclass.runs.folder import RunFolder, history_csv
from neuroclass.runs.run_data import RunData
from neuroclass.runs.model_file import FORMAT_VERSION, load_model, model_metadata, read_metadata, read_weights, save_model
from neuroclass.runs.names import data_slug, run_name

__all__ = ["FORMAT_VERSION", "METHODS", "EnsembleMember", "EnsembleRecord", "OutOfFold", "RunData", "RunFolder",
           "data_slug", "environment_record", "history_csv", "is_ensemble_folder", "load_model", "model_metadata",
           "read_ensemble", "read_metadata", "read_oof", "read_weights", "run_name", "save_model",
           "write_ensemble", "write_oof"]
