"""explain's one way of writing a number: no "-0.0000", no nonzero value shown as a zero, and every
page section and terminal line written with it."""
import numpy as np
import pytest

from neuroclass.evaluation.explain_format import number


@pytest.mark.parametrize("value, text", [
    (-0.0, "0"), (0.0, "0"), (np.float32(-0.0), "0"), (np.float64(0.0), "0"),
    (-3e-9, "-3.00e-09"), (4.123e-5, "4.12e-05"), (-0.00004, "-4.00e-05"),
    (0.123456, "0.1235"), (-1.5, "-1.5000"), (np.float32(0.25), "0.2500"),
    (12345, "12,345"), (np.int64(7), "7"), (None, "n/a"), (True, "yes"), (float("inf"), "inf"),
])
def test_a_number_is_written_without_a_signed_or_a_false_zero(value, text):
    assert number(value) == text


@pytest.mark.parametrize("value", [-1e-12, -4e-5, -0.00049, -0.004, 3e-7, 0.0004999])
@pytest.mark.parametrize("digits", [2, 3, 4])
def test_a_small_nonzero_value_keeps_its_sign_and_size(value, digits):
    text = number(value, digits)
    assert float(text) != 0 and (float(text) < 0) == (value < 0)
    assert float(text) == pytest.approx(value, rel=0.25)


def test_fewer_digits_for_the_grids():
    assert number(-0.004, 2) == "-4.00e-03" and number(0.5, 2) == "0.50" and number(-0.0, 2) == "0"


def test_the_explain_modules_write_numbers_with_it():
    """No explain module formats a float with a fixed-point spec of its own (which prints -0.0000)."""
    import inspect
    import re

    from neuroclass.evaluation import (explain, explain_page, explain_page_output, explain_page_table,
                                       explain_pictures, explain_table)

    fixed = re.compile(r"\{[^{}]*:[^{}]*\.\d+f\}")  # an f-string field such as {v:.4f}
    for module in (explain, explain_page, explain_page_output, explain_page_table, explain_pictures, explain_table):
        assert not fixed.findall(inspect.getsource(module)), module.__name__
