"""Messages that name a family or a type put "a" or "an" before it by its sound (errors.with_article),
or are worded so that no article depends on it."""
import numpy as np
import pytest
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from neuroclass.classical.families import SKOPS
from neuroclass.classical.persist import load_fitted
from neuroclass.data.split import _carve
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.explain_input import not_neural_error
from neuroclass.runs.preprocess_file import load_preprocess, save_preprocess


@pytest.mark.parametrize("family, article", [("xgboost", "an"), ("lightgbm", "a"), ("svm", "an"), ("mlp", "an"),
                                             ("inception", "an"), ("logreg", "a")])
def test_explain_refuses_a_run_naming_its_family_with_the_right_article(family, article):
    message = str(not_neural_error("runs/r", family))
    assert message.startswith(f"RUN 'runs/r': {article} {family} run; explain covers neural families")
    assert f"for what drives {article} {family} model see the permutation importance" in message
    assert "\n" not in message


@pytest.mark.parametrize("family, article", [("svm", "an"), ("knn", "a"), ("logreg", "a"), ("hist_gb", "a")])
def test_a_model_file_that_is_no_skops_file_names_its_family_with_the_right_article(family, article):
    with pytest.raises(NeuroclassError, match=f"^model file: not a skops file of {article} {family} model "):
        load_fitted(b"not a zip archive", SKOPS, family)


@pytest.mark.parametrize("encoder", [OneHotEncoder, OrdinalEncoder])
def test_a_preprocessing_file_of_another_type_names_the_type_without_an_article(encoder, tmp_path):
    save_preprocess(tmp_path, encoder().fit(np.array([["x"], ["y"]])))
    with pytest.raises(NeuroclassError, match=f"holds an object of type {encoder.__name__}, not a preprocessing "):
        load_preprocess(tmp_path)


@pytest.mark.parametrize("n, fraction, words", [(2, 0.8, "a split of 80%"), (1, 0.11, "a split of 11%")])
def test_a_split_too_large_for_the_data_is_named_without_an_article_before_the_number(n, fraction, words):
    with pytest.raises(NeuroclassError, match=f"too few to carve {words}; lower data.val_fraction"):
        _carve(np.arange(n), np.arange(n), fraction, 0)
