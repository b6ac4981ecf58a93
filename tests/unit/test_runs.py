"""RunFolder: the only reader and writer of a run folder. Files follow the umask, a failed run
leaves nothing, old model.json files still load, and a dataset that changed since training gets the
same clear error from every command that reads the run's data."""
import json
import os
import stat

import numpy as np
import pytest
import torch

from neuroclass.cli import main
from neuroclass.config import load_config
from neuroclass.data.blocks import make_blocks
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.embed import embed_run
from neuroclass.evaluation.evaluate import evaluate_run
from neuroclass.evaluation.report.inputs import load_inputs
from neuroclass.inference import Predictor
from neuroclass.pipeline import train
from neuroclass.runs import RunFolder


def npz_data(path, seed=0):
    ds = make_blocks(n=120, size=8, task="colour", seed=seed)
    np.savez(path, x=ds.x.numpy(), y=ds.y.numpy())
    return path


@pytest.fixture
def npz_run(tmp_path):
    data = npz_data(tmp_path / "blocks.npz")
    cfg = load_config(overrides=[f"data.source={data}", "model.name=mlp", "model.options.hidden=[8]",
                                 f"out={tmp_path / 'runs'}", "train.epochs=1", "train.quiet=true",
                                 "train.batch_size=16"])
    return train(cfg, report=False).path, data


@pytest.fixture
def umask_027():
    before = os.umask(0o027)
    yield
    os.umask(before)


def test_run_files_follow_the_umask(tmp_path, umask_027):
    data = npz_data(tmp_path / "blocks.npz")
    cfg = load_config(overrides=[f"data.source={data}", "model.name=mlp", "model.options.hidden=[8]",
                                 f"out={tmp_path / 'runs'}", "train.epochs=1", "train.quiet=true"])
    run = train(cfg).path  # report included
    assert stat.S_IMODE(os.stat(run).st_mode) == 0o750
    modes = {path.name: stat.S_IMODE(os.stat(path).st_mode) for path in run.iterdir()}
    assert {"model.safetensors", "model.json", "config.yaml", "report.html", "split.npz"} <= set(modes)
    assert set(modes.values()) == {0o640}, modes  # not the 0600 of temporary files


def test_every_file_is_read_back_through_the_run_folder(npz_run):
    run, _ = npz_run
    folder = RunFolder.open(run)
    assert folder.config().model.name == "mlp"
    assert set(folder.split_indices()) == {"train", "val", "test"}
    assert folder.metrics()["accuracy"] == json.loads((run / "metrics.json").read_text())["accuracy"]
    assert [row["epoch"] for row in folder.history()] == [1.0]
    assert folder.timing()["epochs"] == 1 and folder.environment()["data_hash"]
    assert folder.meta()["inference"]["temperature"] > 0
    assert folder.report_path("blocks:n=9").name == "report-blocks_n_9.html"


def test_timing_names_rates_per_example_and_reads_the_old_names(npz_run):
    run, _ = npz_run
    written = json.loads((run / "timing.json").read_text())
    assert written["train_examples_per_second"] > 0 and "train_images_per_second" not in written
    old = {k.replace("examples", "images") if k.endswith("examples_per_second") else k: v
           for k, v in written.items()}
    (run / "timing.json").write_text(json.dumps(old))  # a run folder from before the rename
    timing = RunFolder.open(run).timing()
    assert timing["train_examples_per_second"] == written["train_examples_per_second"]
    assert timing["inference_examples_per_second"] == written["inference_examples_per_second"]
    assert "train_images_per_second" not in timing


def test_a_failed_run_leaves_no_folder(tmp_path):
    out = tmp_path / "runs"
    folder = RunFolder.create(out, "x")
    folder.write_json("metrics.json", {})
    assert folder.path.name == ".partial-x" and folder.final == out / "x"
    folder.discard()
    assert not out.exists()  # made for the run, and empty
    taken = RunFolder.create(out, "x")
    taken.commit()
    second = RunFolder.create(out, "x")
    assert second.final == out / "x-2"


def test_missing_and_incomplete_folders_are_named(tmp_path):
    with pytest.raises(NeuroclassError, match="no such run folder"):
        RunFolder.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NeuroclassError, match="no model.json"):
        Predictor.from_run(tmp_path / "empty")


def test_a_version_1_model_json_still_loads(npz_run):
    run, _ = npz_run
    meta = json.loads((run / "model.json").read_text())
    policy = meta.pop("inference")
    meta.update(format_version=1, tta=policy["tta"], tta_shift=policy["tta_shift"], temperature=1.5)
    (run / "model.json").write_text(json.dumps(meta))
    predictor = Predictor.from_run(run)
    assert predictor.policy.temperature == 1.5 and predictor.policy.tta == policy["tta"]


def test_changed_data_gets_the_same_error_everywhere(npz_run, capsys):
    run, data = npz_run
    before = RunFolder.open(run).environment()["data_hash"]
    npz_data(data, seed=1)  # same shape and size, other pixels: the recorded splits no longer apply
    messages = []
    for read in (lambda: evaluate_run(run), lambda: embed_run(run), lambda: load_inputs(run)):
        with pytest.raises(NeuroclassError) as info:
            read()
        messages.append(str(info.value))
    assert len(set(messages)) == 1
    assert "data changed" in messages[0] and before[:16] in messages[0] and "--data" in messages[0]
    assert main(["evaluate", str(run)]) == 2
    assert "data changed" in capsys.readouterr().err
    # the data as it is now can still be evaluated explicitly
    metrics, what = evaluate_run(run, str(data))
    assert 0 <= metrics["accuracy"] <= 1 and "all" in what


def test_the_python_api_writes_the_same_run_folder_as_the_cli(tmp_path):
    import neuroclass

    common = ["--model", "mlp", "--epochs", "1", "--seed", "3", "--set", "model.options.hidden=[8]"]
    assert main(["train", "blocks:n=120,size=8", "--out", str(tmp_path / "cli"), "--quiet", *common]) == 0
    result = neuroclass.train("blocks:n=120,size=8", model="mlp", epochs=1, seed=3, quiet=True,
                              overrides=["model.options.hidden=[8]"], out=tmp_path / "api")
    cli_run = next((tmp_path / "cli").iterdir())
    names = lambda folder: sorted(p.name for p in folder.iterdir())  # noqa: E731
    assert names(result.path) == names(cli_run) and "report.html" in names(cli_run)
    assert result.report == result.path / "report.html"
    assert RunFolder.open(result.path).metrics() == RunFolder.open(cli_run).metrics()
    np.testing.assert_array_equal(RunFolder.open(result.path).split_indices()["test"],
                                  RunFolder.open(cli_run).split_indices()["test"])
    assert torch.equal(Predictor.from_run(result.path).model.state_dict()["standardize.mean"],
                       Predictor.from_run(cli_run).model.state_dict()["standardize.mean"])


def test_a_run_finds_its_data_from_any_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    npz_data(tmp_path / "mine.npz")
    assert main(["train", "mine.npz", "--model", "mlp", "--epochs", "1", "--quiet", "--no-report",
                 "--out", "runs", "--set", "model.options.hidden=[8]"]) == 0
    run = next((tmp_path / "runs").iterdir())
    assert RunFolder.open(run).config().data.source == str(tmp_path / "mine.npz")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    metrics, what = evaluate_run(run)
    assert what.startswith(str(tmp_path / "mine.npz")) and metrics["n"] > 0


def test_report_out_folders_and_unwritable_places(npz_run, tmp_path, capsys):
    run, _ = npz_run
    assert main(["report", str(run), "--out", str(tmp_path / "new" / "folder") + "/"]) == 0
    assert (tmp_path / "new" / "folder" / "report.html").is_file()
    assert (tmp_path / "new" / "folder" / "report.json").is_file()
    capsys.readouterr()
    assert main(["report", str(run), "--out", "/proc/neuroclass/r.html"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuroclass: error: --out") and "writ" in err[0]


def test_a_discarded_run_removes_the_out_folder_only_when_it_made_it_and_it_is_empty(tmp_path):
    made = RunFolder.create(tmp_path / "new", "x")
    made.discard()
    assert not (tmp_path / "new").exists()
    (tmp_path / "old").mkdir()
    RunFolder.create(tmp_path / "old", "x").discard()
    assert (tmp_path / "old").is_dir()  # there before the run
    first, second = RunFolder.create(tmp_path / "shared", "a"), RunFolder.create(tmp_path / "shared", "b")
    first.discard()
    assert second.path.is_dir()  # another run's folder is in it
    second.discard()
