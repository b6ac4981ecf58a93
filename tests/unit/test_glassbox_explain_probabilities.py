"""The probabilities the glass-box explain page shows are those of the run's inference path
(GlassboxModule's exact log-probabilities, then the calibration temperature), also for classes
whose probabilities underflow float32: nothing is floored. A one-layer network with chosen weights,
no training."""
import numpy as np
import pytest
import torch

from neuroclass.evaluation.explain_glassbox import output_of, probabilities_of
from neuroclass.evaluation.explain_steps import softmax
from neuroclass.glassbox import Network, glassbox_options
from neuroclass.runs.glassbox_module import GlassboxModule

LOGITS = [0.0, -100.0, -200.0]  # classes 2 and 3: probabilities below 1e-43, under float32's reach
TEMPERATURE = 100.0  # a temperature above 1 brings the far classes back into view


def far_apart(output: str, loss: str) -> tuple[Network, np.ndarray]:
    """A softmax regression (no hidden layer) whose logits for the input row (1,) are LOGITS."""
    network = Network(glassbox_options({"hidden": [], "output": output, "loss": loss}), n_inputs=1, n_classes=3)
    network.layers[0].weight[...] = np.array([LOGITS], np.float32)  # (1, 3)
    network.layers[0].bias[...] = 0.0
    return network, np.ones(1, np.float32)


def inference_path(network: Network, row: np.ndarray) -> np.ndarray:
    """What predict reports: the module's log-probabilities, softmax with the temperature."""
    log_p = GlassboxModule(network)(torch.from_numpy(row[None])).numpy()[0]
    return softmax(log_p, TEMPERATURE)


@pytest.mark.parametrize("output, loss", [("softmax", "cross_entropy"), ("sigmoid", "mse")])
def test_the_page_shows_the_inference_paths_probabilities_for_far_apart_classes(output, loss):
    network, row = far_apart(output, loss)
    expected = inference_path(network, row)
    assert expected[2] > 0.05  # the temperature made the smallest class visible
    np.testing.assert_allclose(probabilities_of(network, row, TEMPERATURE), expected, rtol=1e-6)
    shown = output_of(network, row, network.trace(row)[-1], None, TEMPERATURE, None)
    np.testing.assert_allclose(shown.probabilities, expected, rtol=1e-6)
    assert shown.predicted == 0 and shown.calibrated_loss is None


def test_a_softmax_networks_page_probabilities_are_softmax_of_the_logits_over_the_temperature():
    network, row = far_apart("softmax", "cross_entropy")
    np.testing.assert_allclose(probabilities_of(network, row, TEMPERATURE),
                               softmax(np.array(LOGITS), TEMPERATURE), rtol=1e-6)
