"""Run folders: the atomic writing and the reading of every file a training run leaves."""
from neuroclass.runs.folder import RunData, RunFolder, data_slug, history_csv, run_name
from neuroclass.runs.model_file import FORMAT_VERSION, load_model, model_metadata, read_metadata, read_weights, save_model

__all__ = ["FORMAT_VERSION", "RunData", "RunFolder", "data_slug", "history_csv", "load_model", "model_metadata",
           "read_metadata", "read_weights", "run_name", "save_model"]
