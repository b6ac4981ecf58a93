"""``explain``: one prediction of a trained neural run, step by step, in the model's own numbers.

For one input (an example of the run's test split, or a file decoded as ``neuroclass predict``
decodes it): the input as a picture and as the numbers the network sees; for dense layers the
weighted sums, biases, what each input adds (w_i * x_i) and the activations (explain_steps.py, in
NumPy); the output probabilities (softmax with the run's calibration temperature); with a label,
the loss, its gradient for the last layer and the probabilities after one gradient step; what the
run's training did to its loss that these plain steps leave out (label smoothing, class weights,
a balanced sampler, ...: explain_training.py); the first layer's weights, a feature map per stage
(explain_trace.py); attribution maps over the input (explain_attribution.py, Captum). A run of
the NumPy ``glassbox`` family is explained from the network's own trace and gradients
(explain_glassbox.py). ``write_explanation`` turns it into one self-contained HTML page
(explain_page.py) with the numbers as JSON beside it.

Example::

    found = explain_run("runs/digits-mlp-20260101-120000", index=3)
    found.output.probabilities.argmax() == found.output.predicted
    # -> True
    write_explanation(found)
    # -> PosixPath('runs/digits-mlp-20260101-120000/explain-test-3.html')
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.explain_attribution import Attribution, check_method, grad_cam_maps, input_maps
from neuroclass.evaluation.explain_format import number
from neuroclass.evaluation.explain_input import (baseline_words, input_names, open_neural_run, pick_example,
                                                 pixels, seen_input)
from neuroclass.evaluation.explain_steps import (RAW_NAMES, DenseLayer, Loss, OutputStep, UpdateStep,
                                                 last_layer_update, output_step, raw_outputs)
from neuroclass.evaluation.explain_table import TableLayout, embedded_maps, no_category_baseline, table_layout
from neuroclass.evaluation.explain_training import TrainingSetup, run_training_setup, setup_lines, setup_words
from neuroclass.evaluation.explain_trace import (FirstLayer, StageMap, Trace, dense_layers, first_layer,
                                                 grad_cam_layer, head_input, stage_maps, trace_network)
from neuroclass.inference import InferencePolicy
from neuroclass.models.registry import OutputKind
from neuroclass.runs.glassbox_module import GlassboxModule


@dataclass
class Explanation:
    """One prediction, step by step. Arrays are NumPy: ``raw`` the input as given ((C, H, W)
    uint8 image or (D_raw,) float32 table row), ``seen`` what the network sees (float32, the
    model's input shape, after the run's preprocessing and standardization), ``input_names`` one
    name per entry of ``seen`` flattened; ``predictor_probabilities`` (K,) the run's Predictor's
    (with its test-time views, if any); ``update``: None without a label or a dense head.
    ``standardized``: ``seen`` is the input standardized with the run's mean and std (False: the
    pixels / 255 or the preprocessed row as they are); ``numpy_network``: the network runs in NumPy
    (glassbox), its maps computed through its own backward pass rather than Captum; ``layout``:
    a table run's inputs by column, with its categorical columns' codes and embeddings when it has
    them (data.encoding=embedding); ``training``: how the run's training loss differed from the
    plain loss the steps use (label smoothing, class weights, a balanced sampler, ...), None when
    it did not."""

    run: Path
    family: str
    kind: str  # "image" | "table"
    source: str
    slug: str
    classes: list[str]
    raw: np.ndarray
    seen: np.ndarray
    input_names: list[str]
    dense: list[DenseLayer]
    output: OutputStep
    predictor_probabilities: np.ndarray
    policy: InferencePolicy
    update: UpdateStep | None
    head: str
    first: FirstLayer | None
    stages: list[StageMap]
    attributions: list[Attribution]
    standardized: bool = True
    numpy_network: bool = False
    notes: list[str] = field(default_factory=list)
    page: Path | None = None  # the HTML page, once ``write_explanation`` has written it
    layout: TableLayout | None = None  # a table run's inputs by column (categorical columns as codes)
    row: int | None = None  # the data row of a table FILE, counted from 0
    training: TrainingSetup | None = None  # what training did to its loss that the steps leave out


def explain_run(run: str | Path, file: str | Path | None = None, index: int | None = None,
                label: str | None = None, attribution: str = "integrated_gradients",
                device: str = "auto", row: int | None = None) -> Explanation:
    """Explain the prediction of ``run`` for ``file`` (an image, or data row ``row`` of a table,
    counted from 0, default 0; ``label``: its true class name, if known) or for example ``index``
    of the run's test split (default 0). ``attribution``: "integrated_gradients" or "saliency" for
    the maps over the input (conv networks get Grad-CAM besides; a glassbox run's maps are computed
    in NumPy through its own backward pass; a table's categorical columns that an mlp embeds are
    attributed at its first dense layer's input). Raises NeuroclassError naming the field for a
    missing run, an ensemble or classical run, an index or row out of range, a label that is not
    a class.

    Example::

        explain_run("runs/shirts-cnn-20260101-120000", "shirt.png", label="Shirt").output.loss
        # -> 0.41...
    """
    check_method(attribution)
    folder, predictor = open_neural_run(run, device)
    example = pick_example(folder, predictor, file, index, label, row)
    if isinstance(predictor.model, GlassboxModule):
        from neuroclass.evaluation.explain_glassbox import explain_glassbox  # it builds on this module

        return explain_glassbox(folder, predictor, example, attribution)
    model = predictor.model
    seen, baseline = seen_input(predictor, example.x)
    trace = trace_network(model, seen)
    dense = dense_layers(model, trace)
    output = output_step(trace.logits[0].double().numpy(), predictor.policy.temperature, example.label)
    proba = predictor.predict_proba_tensor(example.x)[0]
    stages = stage_maps(trace) if seen.ndim == 4 else []
    targets = {"predicted": output.predicted}
    if example.label is not None and example.label != output.predicted:
        targets["true"] = example.label
    preprocessing = predictor.meta.get("preprocessing", {})
    layout = _layout(preprocessing, trace, model, seen) if predictor.kind == "table" else None
    maps = _input_maps(model, trace, layout, seen, baseline, targets, predictor.kind, attribution)
    cam = grad_cam_layer(trace, stages) if stages else None
    if cam is not None:
        maps += grad_cam_maps(model, seen, targets, cam)
    row_seen = seen[0].detach().cpu().numpy()
    config = folder.config()
    found = Explanation(
        run=folder.path, family=model.family.name, kind=predictor.kind, source=example.source, slug=example.slug,
        classes=list(predictor.classes), raw=pixels(example.x), seen=row_seen,
        input_names=(layout.input_names(row_seen) if layout is not None
                     else input_names(tuple(seen.shape[1:]), preprocessing)),
        dense=dense, output=output, predictor_probabilities=np.asarray(proba, dtype=np.float64),
        policy=predictor.policy, update=None, head=trace.head,
        first=first_layer(trace, dense) if seen.ndim == 4 else None, stages=stages, attributions=maps,
        layout=layout, row=example.row,
        training=run_training_setup(folder, config, model, seen, example.label, len(predictor.classes)))
    found.update = _update(found, trace, model, config.optim.lr)
    found.notes = page_notes(found, cam)
    return found


def _layout(preprocessing: dict, trace: Trace, model, seen) -> TableLayout:
    """The table's layout; its code columns only when the first dense layer takes the numbers and
    the vectors they name (else the inputs are named as they are, without the embeddings)."""
    layout = table_layout(preprocessing, int(seen.shape[1]), model.net)
    first = trace.first.module if trace.first is not None else None
    if layout.codes and not (isinstance(first, nn.Linear) and first.in_features == layout.dense_width):
        return TableLayout(layout.names)
    return layout


def _input_maps(model, trace: Trace, layout: TableLayout | None, seen, baseline, targets: dict[str, int],
                kind: str, method: str) -> list[Attribution]:
    """The maps over the input: Captum over the input the network sees, or, for a table whose
    categorical columns are codes, at the first dense layer's input (explain_table.py)."""
    if layout is not None and layout.codes:
        return embedded_maps(model, trace.first.name, layout, seen, targets, no_category_baseline(baseline, layout),
                             baseline_words(kind, embedded=True), method)
    return input_maps(model, seen, targets, baseline, baseline_words(kind), method)


def _update(found: Explanation, trace, model, lr: float) -> UpdateStep | None:
    """One step on the head for the example's label: None without a label, or when the head is
    not a dense layer whose outputs are logits."""
    a_prev = head_input(trace)
    if found.output.label is None or a_prev is None or model.family.output is not OutputKind.LOGITS:
        return None
    head = model.net.get_submodule(trace.head)
    bias = None if head.bias is None else head.bias.detach().double().cpu().numpy()
    return last_layer_update(head.weight.detach().double().cpu().numpy(), bias, a_prev,
                             found.output.label, lr, found.output.temperature)


def page_notes(found: Explanation, cam: str | None) -> list[str]:
    """What the page should say about what it could not show, or showed approximately."""
    notes = []
    if found.policy.tta != "none":
        notes.append(f"the run averages test-time views ({found.policy.tta}) when it predicts; the steps "
                     "follow the input as it is, so their probabilities differ a little from the "
                     "Predictor's, shown beside them")
    if found.output.label is None:
        notes.append("no true label: give --label CLASS with FILE to see the loss, its gradient and one "
                     "update")
    elif found.update is None:
        notes.append(f"the {found.family} family's head ({found.head}) is not a dense layer giving logits: "
                     "no gradient step is shown for it")
    if any(layer.matches is False for layer in found.dense):
        notes.append("a dense layer's activations were computed from its weights but differ from what the "
                     "next layer received (a module between them that these steps do not model)")
    if found.kind == "image" and cam is None:
        notes.append("no Grad-CAM: it reads convolutional feature maps, which this network does not keep past "
                     "its first layer")
    return notes + setup_lines(found.training, found.classes)


def explain_path(run: str | Path, slug: str, out: str | Path | None = None) -> Path:
    """Where the page goes: ``out`` (a file, or a folder: when it is one, ends with a slash or has
    no suffix), else the run folder; the default name is explain-<slug>.html.

    >>> explain_path("runs/x", "test-3"), explain_path("runs/x", "test-3", "pages/")
    (PosixPath('runs/x/explain-test-3.html'), PosixPath('pages/explain-test-3.html'))
    """
    name = f"explain-{slug}.html"
    if out is None:
        return Path(run) / name
    folder = Path(out).is_dir() or str(out).endswith(("/", "\\")) or not Path(out).suffix
    return Path(out) / name if folder else Path(out)


def write_explanation(found: Explanation, out: str | Path | None = None) -> Path:
    """Write the page of ``found`` (see ``explain_path``) and its numbers as JSON beside it, each
    atomically; returns the HTML path, also kept in ``found.page``. Raises NeuroclassError naming
    the path when it cannot be written."""
    from neuroclass.evaluation.explain_page import explanation_record, render_page
    from neuroclass.evaluation.report.html import save_page

    path = explain_path(found.run, found.slug, out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NeuroclassError(f"--out '{out}': cannot create folder {path.parent} ({exc.strerror or exc}); "
                              "pass a folder you can write to") from None
    found.page = save_page(path, explanation_record(found), render_page(found, path.with_suffix(".json").name))
    return found.page


def loss_formula(out: OutputStep) -> str:
    """The training loss of ``out`` as a formula (without the calibration temperature: what the
    gradient step differentiates), for the page and the terminal.

    >>> loss_formula(output_step(np.zeros(2), 1.0, 1))
    '-log softmax(z)[true]'
    """
    if out.loss_kind is Loss.SQUARED_ERROR:
        low, high = out.targets
        return f"1/2 sum_k (sigmoid(z_k) - target_k)^2, targets {high:g} (true) and {low:g}"
    return "-log softmax(z)[true]"


CALIBRATED_LOSS = "-log p_T[true]"  # the cross-entropy of the probabilities the run reports


def probability_words(out: OutputStep) -> str:
    """How ``out``'s probabilities p_T are made from its logits, in a few words."""
    calibrated = out.temperature != 1.0
    t = number(out.temperature)
    if out.output == "sigmoid":
        scaled = (f"; softmax of their log divided by T = {t}, the run's calibration" if calibrated
                  else "; no calibration temperature, T = 1")
        return "sigmoid of each logit, divided by their sum" + scaled
    return (f"softmax of the logits divided by T = {t}, the run's calibration" if calibrated
            else "softmax of the logits; no calibration temperature, T = 1")


def summary_lines(found: Explanation) -> list[str]:
    """A few lines for the terminal: the input, the prediction, the loss and the update, the
    most active unit of each dense layer, the attribution methods, the page once written."""
    out, classes = found.output, found.classes
    lines = [f"explained {found.source} with {found.family} from {found.run}",
             f"prediction: {classes[out.predicted]} p_T = {number(out.probabilities[out.predicted])} "
             f"({probability_words(out)})"]
    if out.label is not None:
        name = classes[out.label]
        formula = loss_formula(out).replace("[true]", f"[{name}]")
        lines.append(f"true label: {name}; training loss {formula} = {number(out.loss)}; "
                     f"{CALIBRATED_LOSS.replace('[true]', f'[{name}]')} = {number(out.calibrated_loss)}")
    lines += _training_lines(found)
    if found.update is not None:
        lines.append(_update_line(found))
    for layer in found.dense[:-1]:
        top = layer.step.neurons[0]
        norm = "" if top.normalised is None else f", batch norm -> {number(top.normalised, 3)}"
        lines.append(f"layer {layer.step.name}: most active unit {top.index}: z = w.x + b = {number(top.z, 3)}{norm}, "
                     f"{layer.step.activation} -> {number(top.a, 3)}")
    methods = sorted({a.method for a in found.attributions})
    lines.append(f"attribution: {', '.join(methods)}")
    if found.page is not None:
        lines += [f"numbers: {found.page.with_suffix('.json')}", f"page: {found.page}"]
    return lines


def own_loss_words(found: Explanation) -> str:
    """What ``found.training.example_loss`` is, in words, for the page and the terminal."""
    return f"the run's own training loss for this example alone ({setup_words(found.training, example=True)})"


def _training_lines(found: Explanation) -> list[str]:
    """The run's own loss for the example (where it is not the plain one), then its training
    settings that the steps leave out, one line each."""
    setup = found.training
    own = [] if setup is None or setup.example_loss is None else [
        f"{own_loss_words(found)} = {number(setup.example_loss)}; the loss above and the step leave those out"]
    return own + [f"training: {line}" for line in setup_lines(setup, found.classes)]


def _update_line(found: Explanation) -> str:
    """The step in one line: the training loss and the true class's output it reads (T = 1), then
    the true class's probability p_T, before -> after."""
    out, u, y = found.output, found.update, found.output.label
    name = found.classes[y]
    step = (f"one {u.optimizer} step on every layer" if u.every_layer
            else f"one step W -= lr * dL/dW on {found.head}")
    raw = RAW_NAMES[out.output]
    return (f"{step} (lr {u.lr:g}): training loss {number(u.loss)} -> {number(u.new_loss)}, "
            f"{raw}[{name}] {number(out.raw[y])} -> {number(raw_outputs(out.output, u.new_logits)[y])}; "
            f"p_T[{name}] {number(out.probabilities[y])} -> {number(u.new_probabilities[y])}")
