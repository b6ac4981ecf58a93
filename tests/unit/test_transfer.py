"""Transfer learning: heads, --weights, --pretrained (offline), --from RUN, freezing, discriminative rates.

Never touches the network: torch's hub cache points at a temp folder and the download is replaced.
"""
import urllib.error
import warnings

import pytest
import torch
from safetensors.torch import save_file

from neuroclass.cli import main
from neuroclass.config import AugmentConfig, ModelConfig, OptimConfig, TrainConfig, load_config
from neuroclass.data.blocks import make_blocks
from neuroclass.errors import NeuroclassError
from neuroclass.models import create
from neuroclass.models.transfer import (find_head, load_pretrained, load_weights_file, pretrained_location, split_backbone_head)
from neuroclass.training.callbacks import Callback
from neuroclass.training.finetune import FineTune, load_from_run, model_from_run, layer_lr_scales, transfer_source
from neuroclass.training.optim import make_optimizer, set_lr
from neuroclass.training.trainer import Trainer

TINY = {"mlp": {"hidden": [16]}, "cnn": {"channels": [4, 8], "hidden": 16},
        "resnet": {"width": 4}, "inception": {"width": 4, "blocks": [1, 1]},
        "vit": {"dim": 16, "depth": 1, "heads": 2}, "capsnet": {"conv_channels": 8, "primary_maps": 2},
        "tv:squeezenet1_1": {}, "tv:mobilenet_v3_small": {}}


def build(name, shape=(1, 28, 28), classes=5, **options):
    c = shape[0]
    cfg = ModelConfig(name=name, options={**TINY.get(name, {}), **options})
    return create(cfg, shape, classes, torch.zeros(1, c, 1, 1), torch.ones(1, c, 1, 1))


def snapshot(model, names=None):
    state = model.state_dict()
    return {k: v.clone() for k, v in state.items() if names is None or k in names}


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """torch's hub cache in an empty temp folder, and a download that fails as if offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, dst, hash_prefix=None, progress=True):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.mark.parametrize("name", list(TINY))
def test_every_family_has_a_head_for_its_classes_and_the_rest_is_backbone(name):
    model = build(name)
    backbone, head = split_backbone_head(model)
    assert head and backbone and not set(head) & set(backbone)
    assert set(head) | set(backbone) == {n for n, _ in model.named_parameters()}
    params = dict(model.named_parameters())
    out_dims = {params[n].shape[0] if n != "net.transform" else params[n].shape[1] for n in head}
    assert out_dims == {5}  # the head's outputs are the classes
    scales = layer_lr_scales(model, 0.5)
    assert all(scales[n] == 1.0 for n in head)
    order = [scales[n] for n in backbone]
    assert order == sorted(order) and order[0] < order[-1] < 1.0  # earlier layers learn slower


def test_weights_file_loads_what_matches_and_reports_the_rest(tmp_path):
    source, target = build("cnn", classes=3), build("cnn", classes=5)
    head = set(find_head(target).params)
    before = snapshot(target)
    # a safetensors file of our own Classifier keys ("net." prefix) plus one stray tensor
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    save_file({**state, "extra.weight": torch.zeros(2)}, str(tmp_path / "w.safetensors"))
    with pytest.warns(UserWarning, match=r"2 shape-mismatched .*1 unexpected \(ignored\): extra.weight"):
        assert load_weights_file(target, tmp_path / "w.safetensors") is True  # a new head
    for name, tensor in target.state_dict().items():
        expected = before[name] if name in head or name.startswith("standardize") else state[name]
        assert torch.equal(tensor, expected), name
    # a plain torch.save state dict of the bare network (no "net." prefix) with the same classes
    bare = build("cnn", classes=5)
    torch.save(bare.net.state_dict(), tmp_path / "w.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # everything matches: nothing to report
        assert load_weights_file(target, tmp_path / "w.pt") is False
    pairs = zip(target.net.state_dict().values(), bare.net.state_dict().values())
    assert all(torch.equal(a, b) for a, b in pairs)


class NotATensor:
    pass


def test_weights_file_errors_name_the_file_and_the_fix(tmp_path):
    model = build("mlp")
    with pytest.raises(NeuroclassError, match="weights file .*nope.pt' not found"):
        load_weights_file(model, tmp_path / "nope.pt")
    torch.save({"a.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(NeuroclassError, match="none of its 1 tensors match"):
        load_weights_file(model, tmp_path / "other.pt")
    torch.save({"w": torch.zeros(1), "obj": NotATensor()}, tmp_path / "code.pt")
    with pytest.raises(NeuroclassError, match="not a readable state dict"):  # weights_only refuses
        load_weights_file(model, tmp_path / "code.pt")


def test_pretrained_offline_fails_with_one_line_naming_the_file_and_folder(hub, tmp_path, capsys):
    url, path = pretrained_location("squeezenet1_1")
    assert path.parent == hub and path.name == url.rsplit("/", 1)[1]
    model = build("tv:squeezenet1_1")
    with pytest.raises(NeuroclassError) as err:
        load_pretrained(model, "squeezenet1_1")
    message = str(err.value)
    assert path.name in message and str(hub) in message and "\n" not in message
    out = tmp_path / "runs"
    code = main(["train", "blocks:n=64,size=32", "--model", "tv:squeezenet1_1", "--pretrained",
                 "--epochs", "1", "--quiet", "--out", str(out)])
    stderr = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(stderr) == 1 and path.name in stderr[0] and str(hub) in stderr[0]
    assert not out.exists() or list(out.iterdir()) == []  # no half-written run folder


@pytest.mark.parametrize("arch", ["squeezenet1_1", "mobilenet_v3_small"])
def test_pretrained_weights_in_the_hub_cache_are_loaded_with_a_grey_stem(hub, arch):
    import torchvision

    _, path = pretrained_location(arch)
    path.parent.mkdir(parents=True)
    imagenet = torchvision.models.get_model(arch, weights=None)  # random, stands in for the real file
    torch.save(imagenet.state_dict(), path)
    source = imagenet.state_dict()
    model = build(f"tv:{arch}", shape=(1, 28, 28), classes=4)
    head = set(find_head(model).params)
    before = snapshot(model, head)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every backbone tensor matched, nothing to report
        load_pretrained(model, arch)
    mine = {k.removeprefix("net.model."): v for k, v in model.state_dict().items()}
    stem = next(k for k, v in source.items() if v.ndim == 4)
    assert torch.equal(mine[stem], source[stem].sum(1, keepdim=True))  # RGB kernels summed for grey
    loaded = [k for k in source if k != stem and f"net.model.{k}" not in head]
    assert loaded and all(torch.equal(mine[k], source[k]) for k in loaded)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())  # head: ours


def test_from_run_keeps_the_head_for_the_same_classes_and_replaces_it_otherwise(trained_run):
    run = trained_run.path
    options = {"channels": [8, 16], "convs_per_stage": 1, "hidden": 32}
    source = build("cnn", (3, 16, 16), 4, **options)
    load_from_run(source, run, (3, 16, 16), ["red", "green", "blue", "yellow"])  # same classes
    fresh = build("cnn", (3, 16, 16), 4, **options)
    head = set(find_head(fresh).params)
    before = snapshot(fresh, head)
    assert load_from_run(fresh, run, (3, 16, 16), ["square", "disc", "cross", "stripe"]) is True
    for name, tensor in fresh.state_dict().items():
        if name in head:
            assert torch.equal(tensor, before[name])
        elif not name.startswith("standardize"):
            assert torch.equal(tensor, source.state_dict()[name]), name
    with pytest.raises(NeuroclassError, match=r"inputs of shape \(3, 16, 16\), the data has \(3, 12, 12\)"):
        load_from_run(build("cnn", (3, 12, 12), 4, **options), run, (3, 12, 12), ["a", "b"])


def test_from_run_builds_the_runs_model_and_refuses_another(trained_run):
    cfg = model_from_run(load_config(overrides=[f"model.from_run={trained_run.path}"]))
    assert cfg.model.name == "cnn" and cfg.model.options["channels"] == [8, 16]
    with pytest.raises(NeuroclassError, match="the run's model is cnn .* asks for mlp"):
        model_from_run(load_config(overrides=[f"model.from_run={trained_run.path}", "model.name=mlp"]))


def test_transfer_options_need_one_starting_point():
    with pytest.raises(NeuroclassError, match="are both set"):
        transfer_source(load_config(overrides=["model.weights=a.pt", "model.from_run=runs/x"]))
    with pytest.raises(NeuroclassError, match=r"train.freeze \(--freeze\) needs a trained backbone"):
        transfer_source(load_config(overrides=["train.freeze=true"]))
    with pytest.raises(NeuroclassError, match="--pretrained needs a torchvision model"):
        transfer_source(load_config(overrides=["model.pretrained=true", "model.name=cnn"]))
    tv = load_config(overrides=["model.pretrained=true", "model.name=tv:resnet18"])
    assert transfer_source(tv) == "pretrained"


class Snapshots(Callback):
    def on_fit_start(self, state, model):
        self.epochs = [snapshot(model)]

    def on_epoch_end(self, state, model):
        self.epochs.append(snapshot(model))


def fine_tune(model, head_epochs, freeze, epochs):
    ds = make_blocks(n=96, size=16, seed=2)
    backbone, _ = split_backbone_head(model)
    shots = Snapshots()
    trainer = Trainer(TrainConfig(epochs=epochs, batch_size=16, quiet=True), OptimConfig(), AugmentConfig(),
                      torch.device("cpu"), callbacks=[FineTune(backbone, head_epochs, freeze), shots],
                      lr_scales=layer_lr_scales(model, 0.7))
    trainer.fit(model, ds, None)
    return shots.epochs, set(backbone)


def test_head_epochs_keep_the_backbone_and_its_batchnorm_stats_then_it_trains():
    model = build("cnn", (3, 16, 16), 4)
    epochs, backbone = fine_tune(model, head_epochs=1, freeze=False, epochs=2)
    head = set(find_head(model).params)
    stats = [k for k in epochs[0] if "running_" in k]
    assert stats and not any(k in head for k in stats)
    fixed = backbone | set(stats)
    assert all(torch.equal(epochs[1][k], epochs[0][k]) for k in fixed)  # epoch 1: head only
    assert not all(torch.equal(epochs[1][k], epochs[0][k]) for k in head)
    assert not all(torch.equal(epochs[2][k], epochs[1][k]) for k in fixed)  # epoch 2: everything
    assert all(p.requires_grad for p in model.parameters())  # an ordinary model afterwards


def test_freeze_keeps_the_backbone_fixed_throughout():
    model = build("resnet", (3, 16, 16), 4)
    epochs, backbone = fine_tune(model, head_epochs=0, freeze=True, epochs=2)
    fixed = [k for k in epochs[0] if k in backbone or "running_" in k or "num_batches" in k]
    assert all(torch.equal(epochs[-1][k], epochs[0][k]) for k in fixed)
    assert not all(torch.equal(epochs[-1][k], epochs[0][k]) for k in find_head(model).params)


def test_discriminative_groups_keep_their_scale_under_the_schedule():
    model = build("resnet", (3, 16, 16), 4, blocks=[1, 1, 1])
    scales = layer_lr_scales(model, 0.5)
    assert scales["net.stem.0.weight"] == 0.5 ** 4 and scales["net.head.2.weight"] == 1.0
    optimizer = make_optimizer(model, OptimConfig(lr=0.1), scales)
    set_lr(optimizer, 0.02)
    by_param = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    for name, param in model.named_parameters():
        assert by_param[id(param)] == pytest.approx(0.02 * scales[name])


def test_cli_from_run_with_freeze_and_weights(trained_run, tmp_path, capsys):
    source = trained_run.path
    args = ["blocks:n=96,size=16,task=shape,seed=3", "--epochs", "1", "--quiet",
            "--set", "train.batch_size=32"]
    assert main(["train", *args, "--from", str(source), "--freeze", "--out", str(tmp_path / "a")]) == 0
    from neuroclass.runs import load_model

    run = next((tmp_path / "a").iterdir())
    new, meta = load_model(run)
    old, _ = load_model(source)
    assert meta["classes"] == ["square", "disc", "cross", "stripe"]
    backbone, _ = split_backbone_head(new)
    assert all(torch.equal(new.state_dict()[k], old.state_dict()[k]) for k in backbone)
    capsys.readouterr()
    # a narrower fully connected layer: it and the head do not fit, the convolutions do
    assert main(["train", *args, "--weights", str(source / "model.safetensors"), "--model", "cnn",
                 "--set", "model.options.channels=[8,16]", "--set", "model.options.hidden=16",
                 "--out", str(tmp_path / "b")]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "model.safetensors" in line]
    assert len(err) == 1 and err[0].startswith("neuroclass: warning: ")  # one line says it all
    assert "3 shape-mismatched" in err[0] and "head.2.weight (32, 256) vs (16, 256)" in err[0]
    assert err[0].endswith("head.5.weight (4, 32) vs (4, 16); the head starts from scratch")
