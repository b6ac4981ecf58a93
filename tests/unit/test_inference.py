"""The one inference path: InferencePolicy and Predictor give probabilities that sum to 1 and keep
the model's decision for every family (capsnet's capsule lengths included), with test-time views
and a temperature, and the policy chosen on validation is calibrated on logits, not raw outputs."""
import numpy as np
import pytest
import torch

from neuroclass.errors import NeuroclassError
from neuroclass.inference import InferencePolicy, Predictor, choose_policy, predict_logits
from neuroclass.inference.logits import predict_outputs
from neuroclass.models import MODELS
from neuroclass.models.transfer import find_head
from test_model_contracts import CASES, IDS, build, images

CPU = torch.device("cpu")


def decisive(name, options):
    """A freshly built model whose head has random weights of a visible size: some families start
    with a zero or tiny head, whose logits tie in float32 and leave no decision to keep."""
    model = build(name, options).eval()
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for param in find_head(model).params:
            tensor = model.get_parameter(param)
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.5)
    return model


def meta_for(name):
    return {"family": name, "kind": "image", "input_shape": [1, 28, 28],
            "classes": [f"c{i}" for i in range(7)], "preprocessing": {}}


@pytest.mark.parametrize("name, options, width", CASES, ids=IDS)
@pytest.mark.parametrize("policy", [InferencePolicy(), InferencePolicy("flip", 1, 2.5),
                                    InferencePolicy("flip+shift", 2, 0.5)], ids=["plain", "flip-T2.5", "views-T0.5"])
def test_predictor_probabilities_sum_to_one_and_keep_the_decision(name, options, width, policy):
    model = decisive(name, options)
    predictor = Predictor(model, meta_for(name), policy, device=CPU)
    x = images()
    proba = predictor.predict_proba_tensor(x)
    assert proba.shape == (len(x), 7) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    logits = predictor.predict_logits_tensor(x)
    # the temperature never changes the decision; the views' average decides as its logits do
    assert (proba.argmax(1) == logits.argmax(1).numpy()).all()
    if policy.tta == "none":
        raw = predict_outputs(model, x, CPU)  # logits, or capsnet's lengths: argmax is the decision
        assert (torch.from_numpy(proba).double().argmax(1) == raw.double().argmax(1)).all()


def test_capsnet_probabilities_are_its_normalised_lengths():
    name, options, _ = next(c for c in CASES if c[0] == "capsnet")
    model = build(name, options).eval()
    x = images()
    lengths = predict_outputs(model, x, CPU)
    proba = Predictor(model, meta_for(name), InferencePolicy(), device=CPU).predict_proba_tensor(x)
    expected = (lengths.clamp_min(1e-6) / lengths.clamp_min(1e-6).sum(1, keepdim=True)).numpy()
    np.testing.assert_allclose(proba, expected, rtol=1e-4, atol=1e-6)


def test_capsnet_temperature_is_fitted_on_logits():
    """The temperature is fitted on log-lengths, whose softmax is the normalised lengths, and the
    guarded fit is kept where it improves the validation log loss."""
    name, options, _ = next(c for c in CASES if c[0] == "capsnet")
    model = decisive(name, options)
    x = torch.randint(0, 256, (200, 1, 28, 28), dtype=torch.uint8,
                                    generator=torch.Generator().manual_seed(3))
    lengths = predict_outputs(model, x, CPU)
    y = lengths.argmax(1)
    y[::4] = (y[::4] + 1) % 7  # a quarter wrong: the log loss has a finite minimum
    policy, record, logits = choose_policy(model, x, y, CPU, tta="none")
    assert torch.allclose(logits, predict_logits(model, x, CPU))
    assert torch.allclose(logits, lengths.clamp_min(1e-6).log(), atol=1e-5)
    fit = record["temperature"]
    assert fit["decision"] == "accepted" and policy.temperature == pytest.approx(fit["temperature"])
    assert 0.05 < policy.temperature < 20
    assert fit["val_log_loss_candidate"] < fit["val_log_loss_uncalibrated"]


def test_every_family_has_a_case():
    assert {n.split(":")[0] for n, _, _ in CASES} == set(MODELS.names())


@pytest.mark.parametrize("values, field", [({"tta": "mirror"}, "tta"), ({"tta_shift": 0}, "tta_shift"),
                                           ({"tta_shift": True}, "tta_shift"), ({"temperature": -1}, "temperature"),
                                           ({"temperature": float("nan")}, "temperature"),
                                           ({"colour": 1}, "unknown")])
def test_bad_policies_are_refused_with_the_field_named(values, field):
    with pytest.raises(NeuroclassError, match=field):
        InferencePolicy.from_dict(values, "model.json")


def test_policy_round_trips_and_is_frozen():
    policy = InferencePolicy("shift", 3, 1.25)
    assert InferencePolicy.from_dict(policy.as_dict()) == policy
    with pytest.raises(AttributeError):
        policy.temperature = 2.0
    assert InferencePolicy.from_dict({}) == InferencePolicy()  # a file before policies: one view, T = 1


def test_predictor_refuses_inputs_of_another_shape():
    name, options, _ = CASES[0]
    predictor = Predictor(build(name, options), meta_for(name), InferencePolicy(), device=CPU)
    with pytest.raises(NeuroclassError, match=r"shape \(1, 16, 16\).*expects \(1, 28, 28\)"):
        predictor.predict_proba_tensor(torch.zeros(2, 1, 16, 16, dtype=torch.uint8))
