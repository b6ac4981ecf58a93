import json

from neuroclass.cli import main


def test_bench_measures_speed_and_time_to_target(capsys):
    rc = main(["bench", "blocks:n=400,size=16", "--model", "mlp", "--set", "model.options.hidden=[32]",
               "--target", "0.9", "--max-time", "60s", "--json"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    assert r["matmul_peak_gflops"] > 0 and r["flops_per_image"] > 0
    assert r["train_images_per_second"] > 0 and r["inference_images_per_second"] > 0
    assert r["train_gflops"] > 0 and r["train_examples"] + r["test_examples"] <= 400
    assert r["seconds_to_target"] is not None and r["seconds_to_target"] > 0
    assert r["best_accuracy"] >= 0.9 and r["curve"][-1][2] == r["best_accuracy"]


def test_bench_plain_text_without_target(capsys):
    assert main(["bench", "blocks:n=200,size=16", "--model", "mlp",
                 "--set", "model.options.hidden=[8]"]) == 0
    text = capsys.readouterr().out
    assert "matmul peak" in text and "of peak" in text and "time to" not in text


def test_bench_rejects_a_target_above_one(capsys):
    assert main(["bench", "blocks:n=200", "--target", "91"]) == 2
    assert "--target must be an accuracy" in capsys.readouterr().err
