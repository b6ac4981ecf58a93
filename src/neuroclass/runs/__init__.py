"""Run folders: the atomic writing and the reading of every file a training run leaves."""
from neuroclass.runs.environment import environment_record
from neuroclass.runs.folder import RunData, RunFolder, history_csv
from neuroclass.runs.model_file import FORMAT_VERSION, load_model, model_metadata, read_metadata, read_weights, save_model
from neuroclass.runs.names import data_slug, run_name

__all__ = ["FORMAT_VERSION", "RunData", "RunFolder", "data_slug", "environment_record", "history_csv", "load_model", "model_metadata",
           "read_metadata", "read_weights", "run_name", "save_model"]
