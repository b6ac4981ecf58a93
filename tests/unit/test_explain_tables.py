"""explain on tiny table runs: inputs named by their columns (one-hot inputs "column=category",
codes "column=category (code i)"), a run with learned embeddings (data.encoding=embedding) shown
as an embedding lookup and a dense layer and attributed per column on its vectors (checked against
integrated gradients computed by hand on the first dense layer's input), and a table FILE's rows
picked with --row."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from explain_formulas import check_formulas

from neuroclass.cli import main
from neuroclass.config import load_config
from neuroclass.evaluation.explain import explain_run, write_explanation
from neuroclass.inference import Predictor
from neuroclass.pipeline import train

QUICK = ["train.epochs=3", "train.quiet=true", "train.batch_size=32", "train.threads=1", "train.tta=none",
         "data.label_column=label", "model.options.hidden=[8]"]
SIZES = ("large", "medium", "small")  # the file's categories, sorted: codes 0, 1, 2


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory):
    """A number that matters, one that does not, and a category that matters."""
    tmp = tmp_path_factory.mktemp("explain-tables")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"signal": rng.normal(size=300), "noise": rng.normal(size=300),
                          "size": rng.choice(["small", "medium", "large"], size=300)})
    frame["label"] = np.where(frame["signal"] + 1.5 * (frame["size"] == "large") > 0.5, "yes", "no")
    frame.to_csv(tmp / "rows.csv", index=False)
    return tmp / "rows.csv"


def run_of(csv, *extra):
    cfg = load_config(overrides=[f"data.source={csv}", "model.name=mlp", f"out={csv.parent / 'runs'}", *QUICK, *extra])
    return train(cfg, report=False).path


@pytest.fixture(scope="module")
def embedded_run(table_csv):
    return run_of(table_csv, "data.encoding=embedding", "model.options.embedding_dim=3")


@pytest.fixture(scope="module")
def onehot_run(table_csv):
    return run_of(table_csv)


def _by_hand(model, found, target: int, steps: int = 400) -> np.ndarray:
    """Integrated gradients over the first dense layer's input (the numbers, then the vector of
    the size column), from the numbers' baseline and the zero vector, summed per column: midpoint
    rule with many steps, in torch."""
    layout = found.layout
    x = torch.from_numpy(found.dense[0].step.x).float()[None]  # (1, 2 + 3)
    base = torch.zeros_like(x)
    base[0, :layout.numeric] = model.standardize(torch.zeros(1, len(found.seen)))[0, :layout.numeric]
    alphas = ((torch.arange(steps) + 0.5) / steps)[:, None]
    path = (base + alphas * (x - base)).requires_grad_(True)
    rest = model.net.layers[1:]  # everything after the Flatten: the first Linear takes the concatenation
    rest.eval()
    rest(path)[:, target].sum().backward()
    shares = ((x - base) * path.grad.mean(0))[0].detach().double().numpy()
    return np.array([shares[b].sum() for b in layout.blocks()])


def test_an_embedding_run_names_its_inputs_by_column_and_category(embedded_run, tmp_path):
    found = explain_run(embedded_run, index=2, device="cpu")
    layout = found.layout
    assert [(c.name, c.categories, c.width) for c in layout.codes] == [("size", SIZES, 3)]
    code = int(found.seen[-1])
    assert found.input_names == ["signal", "noise", f"size={SIZES[code]} (code {code})"]
    first = found.dense[0].step
    model = Predictor.from_run(embedded_run, device="cpu").model.eval()
    assert first.inputs == 2 + 3 == layout.dense_width
    vector = model.net.embeddings[0].weight[code].detach().double().numpy()
    np.testing.assert_allclose(first.x[2:], vector, rtol=1e-6)  # the lookup's vector is what the layer took
    document = write_explanation(found, tmp_path / "page.html").read_text()
    assert "embedding lookup + dense" in document and f"size={SIZES[code]}: vector[2]" in document
    assert "one-hot" not in document
    names = layout.dense_input_names(found.seen)  # the first layer's inputs in its terms, not "unit i"
    assert all(f"<td>{names[t.index]}</td>" in document for t in first.neurons[0].terms)
    record = json.loads((tmp_path / "page.json").read_text())
    assert record["encoding"] == "embedding" and record["input_names"] == found.input_names
    check_formulas(found, document)


def test_an_embedding_run_attributes_its_categorical_columns_on_their_vectors(embedded_run):
    found = explain_run(embedded_run, index=2, device="cpu")
    model = Predictor.from_run(embedded_run, device="cpu").model.eval()
    (ig,) = [a for a in found.attributions if a.role == "predicted"]
    assert ig.method == "integrated gradients" and ig.values.shape == (3,) and ig.values[2] != 0
    np.testing.assert_allclose(ig.values, _by_hand(model, found, ig.target), atol=0.02)
    # completeness: the columns' shares add up to the logit's change from numbers at 0 and no category
    with torch.no_grad():
        base = model.standardize(torch.zeros(1, 3))
        base[0, 2] = -1.0  # a category the training file did not hold: the zero vector
        change = (model.net(torch.from_numpy(found.seen)[None]) - model.net(base))[0, ig.target]
    assert ig.values.sum() == pytest.approx(change.item(), abs=0.02)
    saliency = explain_run(embedded_run, index=2, attribution="saliency", device="cpu")
    (s,) = [a for a in saliency.attributions if a.role == "predicted"]
    assert s.values.shape == (3,) and (s.values >= 0).all() and s.values[2] > 0


def test_an_unseen_category_is_named_and_shares_nothing(embedded_run, table_csv, tmp_path):
    frame = pd.read_csv(table_csv).head(2)
    frame.loc[1, "size"] = "huge"  # not a category of the training file
    frame.to_csv(tmp_path / "two.csv", index=False)
    with pytest.warns(UserWarning, match="not seen in training"):
        found = explain_run(embedded_run, tmp_path / "two.csv", row=1, label="yes", device="cpu")
    assert found.input_names[-1] == "size=(a category the training file did not hold) (code -1)"
    (ig,) = [a for a in found.attributions if a.role == "predicted"]
    assert ig.values[2] == pytest.approx(0.0, abs=1e-6)  # its vector is the baseline's, zero
    assert np.all(found.dense[0].step.x[2:] == 0)


def test_a_one_hot_run_names_its_inputs_column_equals_category(onehot_run, tmp_path):
    found = explain_run(onehot_run, index=0, device="cpu")
    assert found.input_names == ["signal", "noise", "size=large", "size=medium", "size=small"]
    assert found.layout is not None and found.layout.codes == ()
    document = write_explanation(found, tmp_path).read_text()
    assert "one 0/1 input per category" in document and "(code " not in document
    first = found.dense[0].step  # its inputs are the row's, named as the row's
    assert all(f"<td>{found.input_names[t.index]}</td>" in document for t in first.neurons[0].terms)
    check_formulas(found, document)


def test_row_picks_a_data_row_of_a_table_file(onehot_run, table_csv, tmp_path, capsys):
    pd.read_csv(table_csv).head(3).to_csv(tmp_path / "three.csv", index=False)
    predictor = Predictor.from_run(onehot_run, device="cpu")
    expected = predictor.predict_files([tmp_path / "three.csv"], top_k=1)
    for row in range(3):
        found = explain_run(onehot_run, tmp_path / "three.csv", row=row, device="cpu")
        assert found.row == row and found.slug == f"three-row{row}"
        assert found.source == f"row {row} of three.csv (counted from 0; the file has 3 data rows)"
        assert found.classes[found.output.predicted] == expected[row].label
        assert found.output.probabilities[found.output.predicted] == pytest.approx(expected[row].probability, rel=1e-5)
    assert main(["explain", str(onehot_run), str(tmp_path / "three.csv"), "--row", "2", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("explained row 2 of three.csv (counted from 0")
    page = (tmp_path / "explain-three-row2.html").read_text()
    assert "Data row 2 of the file (counted from 0)" in page and "row 2 of three.csv" in page
    assert json.loads((tmp_path / "explain-three-row2.json").read_text())["row"] == 2
    one = explain_run(onehot_run, tmp_path / "three.csv", device="cpu")  # default: row 0
    assert one.row == 0 and one.source.startswith("row 0 of three.csv")


@pytest.mark.parametrize("argv, words", [
    (["{file}", "--row", "3"], "--row 3: FILE '{file}' has 3 data rows; pass a row from 0 to 2"),
    (["{file}", "--row", "-1"], "--row -1: FILE '{file}' has 3 data rows"),
    (["--row", "1"], "--row: picks a data row of a table FILE"),
    (["--index", "0", "--row", "1"], "--row: picks a data row of a table FILE"),
])
def test_a_row_out_of_range_or_without_a_file_is_one_error_line(argv, words, onehot_run, table_csv, tmp_path, capsys):
    file = tmp_path / "three.csv"
    pd.read_csv(table_csv).head(3).to_csv(file, index=False)
    assert main(["explain", str(onehot_run), *[a.format(file=file) for a in argv]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words.format(file=file) in err[0], err
