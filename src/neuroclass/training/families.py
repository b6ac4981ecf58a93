"""Every model family by name: the neural networks (models/, trained by the Trainer), the
classical estimators (classical/: scikit-learn, XGBoost, LightGBM, fitted once) and the NumPy
glass-box network (glassbox/, trained by its own loop: training/glassbox_fit.py).

``model.name`` names any kind; the registries are independent libraries, and this module is
where code above them asks which kind a name is, checks a model config against the right one and
gets a family's options as model.json records them.
"""
from __future__ import annotations

import dataclasses

from neuroclass.classical import CLASSICAL
from neuroclass.classical import family_options as classical_options
from neuroclass.config import Config, ModelConfig
from neuroclass.errors import NeuroclassError
from neuroclass.glassbox import GlassboxOptions
from neuroclass.models import MODELS, resolved_options, sized_options
from neuroclass.models.registry import AUTO, check_model_config, split_name
from neuroclass.registry import did_you_mean
from neuroclass.rules import check_rule, rule
from neuroclass.runs.glassbox_module import GLASSBOX
from neuroclass.training.glassbox_settings import model_options as glassbox_model_options

CLASSICAL_SIZES = ("auto", "default")  # model.size a classical family takes: it has no named sizes


def is_classical(name: str) -> bool:
    """True for the name of a classical family (``xgboost``, ``svm``, ...).

    >>> is_classical("xgboost"), is_classical("cnn"), is_classical("auto")
    (True, False, False)
    """
    return name in CLASSICAL


def is_glassbox(name: str) -> bool:
    """True for the NumPy glass-box network (neuroclass.glassbox), trained outside the Trainer.

    >>> is_glassbox("glassbox"), is_glassbox("mlp")
    (True, False)
    """
    return name == GLASSBOX


def family_names() -> list[str]:
    """Every family's name, neural, classical and the glass-box network, sorted."""
    return sorted(set(MODELS.names()) | set(CLASSICAL.names()) | {GLASSBOX})


def check_family_config(cfg: ModelConfig) -> None:
    """Check a config's model section before any data loads: an unknown ``name`` fails with the
    names of both kinds and a did-you-mean; a neural family as ``models.registry.check_model_config``
    checks it; a classical one and the glass-box network take model.size auto or default, no
    starting weights, and their options by their rules. Raises NeuroclassError naming the field."""
    if cfg.name == AUTO:
        return
    family = split_name(cfg.name, {})[0] if ":" in cfg.name else cfg.name
    if family not in MODELS and family not in CLASSICAL and not is_glassbox(family):
        names = family_names()
        raise NeuroclassError(f"unknown model '{cfg.name}'; choose one of: {', '.join(names)}."
                              + did_you_mean(cfg.name, names))
    if not is_classical(cfg.name) and not is_glassbox(cfg.name):
        check_model_config(cfg)
        return
    check_rule("model.size", cfg.size, rule(choices=CLASSICAL_SIZES,
                                            doc=f"auto or default ({cfg.name} has no named sizes)")["rule"])
    for field, value in (("pretrained", cfg.pretrained), ("weights", cfg.weights), ("from_run", cfg.from_run)):
        if value:
            raise NeuroclassError(f"model.{field}: {cfg.name} is fitted from scratch and takes no starting "
                                  f"weights; drop model.{field} or choose a neural family")
    if is_glassbox(cfg.name):
        glassbox_model_options(cfg.options)
    else:
        classical_options(cfg.name, cfg.options)


def options_type(name: str) -> type:
    """The options dataclass of family ``name`` (what ``model.options.*`` keys it takes)."""
    if is_glassbox(name):
        return GlassboxOptions
    return CLASSICAL.get(name).options if is_classical(name) else MODELS.get(split_name(name, {})[0]).config


def recorded_options(cfg: ModelConfig) -> dict:
    """The family's options as model.json records them: every field, the size's preset under the
    user's options for a neural family, the defaults under them for a classical one, the preset
    under them for the glass-box network (whose run records the options it trained with, config
    settings included: training/glassbox_settings.py)."""
    if is_glassbox(cfg.name):
        return dataclasses.asdict(glassbox_model_options(cfg.options))
    if is_classical(cfg.name):
        return dataclasses.asdict(classical_options(cfg.name, cfg.options))
    return resolved_options(cfg.name, sized_options(cfg))


def check_features(cfg: Config, kind: str) -> None:
    """``data.features`` (HOG/LBP rows from images) needs image data and a classical family, which
    fits on feature rows; a network learns its own features from the pixels. Raises
    NeuroclassError naming the fix.

    >>> check_features(Config(), "image")  # data.features=none: nothing to check
    """
    features = cfg.data.features
    if features == "none":
        return
    if kind == "table":
        raise NeuroclassError(f"data.features={features} turns images into feature rows, and "
                              f"{cfg.data.source} is a table of feature rows already; drop data.features")
    if not is_classical(cfg.model.name):
        raise NeuroclassError(f"data.features={features} feeds hand-made features to a classical family; "
                              f"model {cfg.model.name} learns its own from the pixels. Use e.g. --model svm "
                              "(or xgboost, logreg, ...), or drop data.features")
