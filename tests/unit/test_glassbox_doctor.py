"""The doctor on the history a glass-box run records: without label smoothing its training loss
falls to 1e-8, where doubling between epochs is noise, not an optimisation blowing up."""
from neuroclass.evaluation.doctor import diagnose

METRICS = {"accuracy": 0.98, "per_class": {str(k): {} for k in range(10)}}


def history(losses: list[float]) -> list[dict]:
    return [{"epoch": i + 1, "loss": loss, "accuracy": 0.99, "val_loss": 0.08, "val_accuracy": 0.98}
            for i, loss in enumerate(losses)]


def rules(losses: list[float]) -> set[str]:
    return {f["rule"] for f in diagnose(history(losses), METRICS, {"optim": {"lr": 1e-3}})}


def test_a_tiny_training_loss_that_doubles_is_not_blowing_up():
    healthy = [2.2, 0.5, 0.1, 0.01, 1e-4, 1e-6, 4.5e-9, 6e-9, 1.3e-8, 5e-9]  # 4.5e-9 -> 1.3e-8: noise
    assert "loss_exploding" not in rules(healthy)


def test_a_loss_that_climbs_back_up_is_still_blowing_up():
    assert "loss_exploding" in rules([2.2, 0.5, 0.3, 0.9, 1.8])
